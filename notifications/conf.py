"""The app's settings: every `NOTIFICATIONS_*` name, its default, and what it is for.

A project sets any of them in its Django settings module; the app reads them
only through `app_settings` (`app_settings.SEND_TIMEOUT` is
`settings.NOTIFICATIONS_SEND_TIMEOUT`, or its default), at the moment of use,
so a project that sets none gets working defaults and tests may override any.
"""

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # The Redis for ticket nonces, the per-user limits and /metrics; None means
    # the first host of the default channel layer.
    "REDIS_URL": None,
    # Or the sentinels ([(host, port), ...]) watching that Redis and the name
    # they know its primary by: it then follows a failover. None (with
    # REDIS_URL None too) means the first channel-layer host's, when it is of
    # the Sentinel form.
    "REDIS_SENTINELS": None,
    "REDIS_SENTINEL_MASTER": None,
    # Where browsers open the notification socket (notifications.routing).
    "WS_PATH": "ws/notifications/",
    # Seconds a sync notify()'s push may take before it is logged as failed;
    # flush() waits a second more; a caller waits this long once 10,000 are queued.
    "SEND_TIMEOUT": 5.0,
    # Seconds a running task's latest progress is kept after its last report, so
    # a page that loads or reconnects mid-task shows its bar (progress_state.py).
    "PROGRESS_TTL": 3600,
    # Seconds a Celery worker counts as alive after its last heartbeat (every third
    # of this); a bar whose worker is gone says it waits for a worker.
    "WORKER_TIMEOUT": 30,
    # Missed notifications a reconnecting socket replays; the rest stay in the inbox.
    "REPLAY_LIMIT": 100,
    # Read notifications older than this many days are pruned; unread never are.
    "RETENTION_DAYS": 90.0,
    # Seconds between beat's pruning runs (notifications.celery).
    "PRUNE_EVERY": 6 * 3600,
    # Ids one `read` frame may name.
    "READ_BATCH": 500,
    # Frames per second one user's sockets may send together, sustained and in a burst.
    "WS_RATE": 5.0,
    "WS_BURST": 20,
    # Sockets one user may hold open over every process; one more is closed with 4429.
    "MAX_SOCKETS_PER_USER": 20,
    # The largest message a client may send; bigger frames are refused with 1009
    # by the protocol layer before they are buffered (notifications/daphne_patches.py).
    "WS_MAX_MESSAGE_BYTES": 64 * 1024,
    # A socket whose unsent output stays above this many bytes for WS_SLOW_SECONDS
    # (or passes eight times it) is dropped; it catches up when it reconnects.
    "WS_MAX_UNSENT_BYTES": 1024 * 1024,
    "WS_SLOW_SECONDS": 10.0,
    # Socket tickets: lifetime in seconds, and the origins besides the site's own
    # that a ticket socket may come from.
    "TICKET_TTL": 30,
    "TICKET_ORIGINS": [],
    # Seconds between each process's copy of its metrics into Redis.
    "METRICS_INTERVAL": 5.0,
    # /metrics asks for "Authorization: Bearer <token>"; with DEBUG off and no
    # token it answers 403 to everyone.
    "METRICS_TOKEN": "",
    # Levels nobody can mute: push and the digest take them whatever a person's
    # channel choices and quiet hours say (only turning the digest off stops its email).
    "CRITICAL_LEVELS": ("error",),
    # Kinds the preferences panel offers even before a person chose for them
    # (("export", "import")); any other kind a person set is shown too.
    "KINDS": (),
    # The email digest: what nobody saw for this many minutes goes into the
    # next one; the interval of a person without preferences (off, hourly, daily);
    # seconds between beat's runs (0 leaves the entry out); and the site's
    # address (https://example.com), which links need: without it no digest is sent.
    "DIGEST_AFTER_MINUTES": 30,
    "DIGEST_DEFAULT": "hourly",
    "DIGEST_EVERY": 300,
    "SITE_URL": "",
    # The languages a person may choose for their digest, as (code, name) pairs;
    # the app ships catalogues for these two.
    "LANGUAGES": (("en", "English"), ("zh-hans", "简体中文")),
    # Web Push (push.py): the server's VAPID key pair, as `manage.py vapid_keys`
    # prints it, and the contact the push services see ("mailto:ops@example.com").
    # Push is off while either key is empty.
    "VAPID_PUBLIC_KEY": "",
    "VAPID_PRIVATE_KEY": "",
    "VAPID_SUBJECT": "",
    # Seconds a push service keeps a message for a device that is offline.
    "PUSH_TTL": 24 * 3600,
    # The icon a pushed notification shows (a URL or same-origin path); "" for none.
    "PUSH_ICON": "",
    # Seconds one request to a push service may take.
    "PUSH_TIMEOUT": 10.0,
    # Attempts after the first for a push the service failed (5xx, 429, no answer).
    "PUSH_MAX_RETRIES": 5,
    # Devices one user may register; one more is refused with 400.
    "PUSH_MAX_SUBSCRIPTIONS": 20,
    # The push services a subscription's endpoint may be on (a host or its
    # subdomains): the server posts to that URL, so not to any the page names.
    "PUSH_SERVICE_HOSTS": [
        "fcm.googleapis.com",  # Chrome, Edge, Opera
        "push.services.mozilla.com",  # Firefox
        "push.apple.com",  # Safari
        "notify.windows.com",  # legacy Edge
    ],
    # Accept http:// push endpoints: for a test's stand-in push service only.
    "PUSH_ALLOW_HTTP": False,
}


class AppSettings:
    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"no notifications setting {name!r}")
        value = getattr(settings, f"NOTIFICATIONS_{name}", DEFAULTS[name])
        if name == "REDIS_URL" and value is None:
            return _channel_layer_redis_url()
        if name in SENTINEL_KEYS and value is None and self._follows_the_layer():
            return _channel_layer_first_host()[SENTINEL_KEYS[name]]
        return value

    def _follows_the_layer(self) -> bool:
        """Whether the app's Redis is left to the channel layer's first host, a Sentinel one."""
        if getattr(settings, "NOTIFICATIONS_REDIS_URL", None) is not None:
            return False
        host = _channel_layer_first_host()
        return isinstance(host, dict) and "master_name" in host and "address" not in host


# App setting -> the key of channels-redis's Sentinel host form it is taken from.
SENTINEL_KEYS = {"REDIS_SENTINELS": "sentinels", "REDIS_SENTINEL_MASTER": "master_name"}


def _channel_layer_first_host() -> str | dict | tuple:
    config = getattr(settings, "CHANNEL_LAYERS", {}).get("default", {}).get("CONFIG", {})
    hosts = config.get("hosts") or ["redis://127.0.0.1:6379/0"]
    return hosts[0]


def _channel_layer_redis_url() -> str:
    """The address of the default channel layer's first Redis host, as a URL."""
    host = _channel_layer_first_host()
    if isinstance(host, dict):
        host = host.get("address", "redis://127.0.0.1:6379/0")
    if isinstance(host, (tuple, list)):
        return f"redis://{host[0]}:{host[1]}/0"
    return host


app_settings = AppSettings()
