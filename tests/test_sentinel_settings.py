"""Redis behind Sentinel, as configured: the demo's environment variables, the app's
own Redis following the layer, and kombu's Sentinel transport keeping our patches."""

import json
import subprocess
import sys

from kombu.transport import redis as redis_transport

from notifications.celery import kombu_patches
from notifications.conf import app_settings
from tests.stack import BASE_DIR

SENTINELS = [("10.0.0.1", 26379), ("10.0.0.2", 26380)]
SHOW = """
import json
from config import settings as s
print(json.dumps({"hosts": s.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"],
    "broker": s.CELERY_BROKER_URL, "options": s.CELERY_BROKER_TRANSPORT_OPTIONS,
    "app": [s.NOTIFICATIONS_REDIS_SENTINELS, s.NOTIFICATIONS_REDIS_SENTINEL_MASTER]}))
"""


def project_settings(**env: str) -> dict:
    """What config/settings.py makes of `env`, read in a fresh interpreter."""
    base = {"DJANGO_SECRET_KEY": "x" * 50, "PATH": "/usr/bin:/bin"}
    output = subprocess.run(
        [sys.executable, "-c", SHOW], cwd=BASE_DIR, env=base | env, capture_output=True, text=True
    )
    assert output.returncode == 0, output.stderr
    return json.loads(output.stdout)


def test_the_environment_puts_layer_broker_and_app_redis_behind_the_sentinels():
    found = project_settings(
        REDIS_SENTINELS="10.0.0.1:26379, 10.0.0.2:26380", REDIS_SENTINEL_MASTER="one,two"
    )
    sentinels = [list(address) for address in SENTINELS]
    assert [(h["sentinels"], h["master_name"]) for h in found["hosts"]] == [
        (sentinels, "one"),
        (sentinels, "two"),
    ]
    assert found["hosts"][0]["socket_timeout"] is None  # as for a plain URL (PITFALLS)
    assert found["broker"] == "sentinel://10.0.0.1:26379;sentinel://10.0.0.2:26380"
    assert found["options"]["master_name"] == "one"
    assert found["options"]["visibility_timeout"] == 60  # still kombu's Redis transport
    assert found["app"] == [sentinels, "one"]


def test_the_apps_redis_follows_a_sentinel_layer_unless_given_a_url(settings):
    del settings.NOTIFICATIONS_REDIS_URL
    settings.CHANNEL_LAYERS = {
        "default": {"CONFIG": {"hosts": [{"sentinels": SENTINELS, "master_name": "cache"}]}}
    }
    assert (app_settings.REDIS_SENTINELS, app_settings.REDIS_SENTINEL_MASTER) == (
        SENTINELS,
        "cache",
    )
    settings.NOTIFICATIONS_REDIS_URL = "redis://10.0.0.9:6379/0"
    assert app_settings.REDIS_SENTINELS is None


def test_kombus_sentinel_transport_keeps_the_heartbeat_and_the_outage_fix():
    # It inherits both patched methods from the Redis transport and overrides neither.
    transport, channel = redis_transport.SentinelTransport, redis_transport.SentinelChannel
    assert transport.register_with_event_loop is kombu_patches.register_with_heartbeat
    assert channel._connparams is kombu_patches._connparams_of_a_live_transport
