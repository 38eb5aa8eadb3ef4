"""/metrics: every process's counters, from Redis, in Prometheus text format."""

import os
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from config.asgi import application
from notifications import anotify, flush, metrics, notify
from tests.sockets import HOST, ORIGIN

pytestmark = pytest.mark.django_db(transaction=True)


def series(text: str, name: str) -> dict[str, float]:
    """{labels: value} of one metric name in Prometheus text."""
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) :].rsplit(" ", 1)
            found[labels] = float(value)
    return found


def own(values: dict[str, float]) -> float:
    """The sum of this process's series."""
    return sum(v for labels, v in values.items() if f':{os.getpid()}"' in labels)


def test_metrics_page_is_prometheus_text_with_help_and_type(client, settings, redis_client):
    settings.NOTIFICATIONS_METRICS_TOKEN = "t0ken"
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t0ken")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    body = response.content.decode()
    for name in (
        "notifications_connected_sockets",
        "notifications_published_total",
        "notifications_delivered_total",
        "notifications_publish_failures_total",
        "notifications_channel_layer_errors_total",
        "notifications_publish_to_send_seconds",
    ):
        assert f"# TYPE {name} " in body


def test_notify_counts_a_published_notification(alice, redis_client):
    name = "notifications_published_total"
    before = own(series(metrics.render(), name))
    notify(alice, "Counted")
    flush()  # the push is counted once sent
    after = series(metrics.render(), name)
    assert own(after) == before + 1
    assert any('type="notification"' in labels for labels in after)


def test_every_live_process_is_listed_with_its_own_label(redis_client):
    # Another process (say a Celery worker on another host) flushed its figures.
    key = metrics.KEY_PREFIX + "worker-host:4242"
    redis_client.hset(key, mapping={'notifications_published_total{type="notification"}': 7})
    redis_client.zadd(metrics.INDEX_KEY, {key: time.time() + 30})
    text = metrics.render()
    assert 'notifications_published_total{process="worker-host:4242",type="notification"} 7' in text


def test_a_scrape_reads_the_index_and_never_scans_the_keyspace(redis_client):
    # A shared Redis: many keys that are none of ours.
    pipe = redis_client.pipeline()
    for i in range(20_000):
        pipe.set(f"someone-else:{i}", 1)
    pipe.execute()
    metrics.inc("notifications_delivered_total", 0)
    redis_client.config_resetstat()
    text = metrics.render()
    assert f':{os.getpid()}"' in text  # this process is listed
    commands = redis_client.info("commandstats")
    assert not {"cmdstat_scan", "cmdstat_keys"} & commands.keys(), sorted(commands)


def test_a_stopped_process_leaves_the_index(redis_client):
    key = metrics.KEY_PREFIX + "gone-host:1"
    redis_client.hset(key, mapping={"notifications_connected_sockets": 3})
    redis_client.zadd(metrics.INDEX_KEY, {key: time.time() - 1})
    assert "gone-host" not in metrics.render()
    assert redis_client.zscore(metrics.INDEX_KEY, key) is None


def test_histogram_buckets_are_cumulative(redis_client):
    registry = metrics.Registry()
    registry.observe(0.003)
    registry.observe(0.04)
    registry.observe(30)
    values = registry.snapshot()
    name = "notifications_publish_to_send_seconds"
    assert values[f'{name}_bucket{{le="0.005"}}'] == 1
    assert values[f'{name}_bucket{{le="0.05"}}'] == 2
    assert values[f'{name}_bucket{{le="10.0"}}'] == 2
    assert values[f'{name}_bucket{{le="+Inf"}}'] == 3
    assert values[f"{name}_count"] == 3


def test_a_token_guards_the_page_when_set(client, settings, redis_client):
    settings.NOTIFICATIONS_METRICS_TOKEN = "s3cret-token"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert ok.status_code == 200


def test_without_debug_the_page_needs_a_token_even_when_none_is_set(client, settings, redis_client):
    settings.DEBUG = False
    settings.NOTIFICATIONS_METRICS_TOKEN = ""
    response = client.get("/metrics")
    assert response.status_code == 403
    assert b"METRICS_TOKEN" in response.content
    assert b"notifications_" not in response.content


@sync_to_async
def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def test_a_socket_counts_while_open_and_counts_what_it_delivers(alice, redis_client):
    render = sync_to_async(metrics.render)
    before = series(await render(), "notifications_connected_sockets")
    delivered = series(await render(), "notifications_delivered_total")
    headers = [HOST, ORIGIN, (b"cookie", await session_cookie(alice))]
    socket = WebsocketCommunicator(application, "/ws/notifications/", headers=headers)
    try:
        assert (await socket.connect(timeout=5))[0]
        assert (await socket.receive_json_from(timeout=5))["type"] == "hello"
        assert own(series(await render(), "notifications_connected_sockets")) == own(before) + 1
        await anotify(alice, "Measured")
        assert (await socket.receive_json_from(timeout=5))["title"] == "Measured"
        after = await render()
        assert own(series(after, "notifications_delivered_total")) == own(delivered) + 1
        assert own(series(after, "notifications_publish_to_send_seconds_count")) >= 1
    finally:
        await socket.disconnect()
    assert own(series(await render(), "notifications_connected_sockets")) == own(before)
