"""The app on channel layers other than the project's own: InMemoryChannelLayer,
as a project's own unit tests use it, and the system check that warns about
the layers that lose messages."""

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from django.core import checks

from notifications import anotify, mark_read, notify, send_progress
from notifications.checks import channel_layer
from notifications.conf import app_settings
from notifications.consumers import CLOSE_TOO_MANY_SOCKETS

IN_MEMORY = "channels.layers.InMemoryChannelLayer"


def use_layer(settings, backend: str | None) -> None:
    """Make `backend` the default channel layer (None: no layer at all)."""
    channel_layers.backends.clear()
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": backend}} if backend else {}


@pytest.fixture
def in_memory(settings):
    use_layer(settings, IN_MEMORY)
    yield
    channel_layers.backends.clear()


@pytest.mark.django_db(transaction=True)
async def test_a_socket_works_on_the_in_memory_layer(in_memory, sockets, alice):
    communicator, connected, _ = await sockets(alice)
    assert connected
    assert await communicator.receive_json_from(timeout=5) == {
        "type": "hello",
        "unread": 0,
        "last_id": 0,
    }
    n = await anotify(alice, "Report ready")
    assert (await communicator.receive_json_from(timeout=5))["id"] == n.pk
    await sync_to_async(mark_read)(alice.pk, [n.pk])
    assert await communicator.receive_json_from(timeout=5) == {
        "type": "read",
        "ids": [n.pk],
        "unread": 0,
    }


@pytest.mark.django_db(transaction=True)
async def test_a_users_events_arrive_in_call_order_on_the_in_memory_layer(
    in_memory, sockets, alice
):
    communicator, _, _ = await sockets(alice)
    await communicator.receive_json_from(timeout=5)  # hello
    sent = []
    for i in range(5):
        n = await sync_to_async(notify)(alice, f"Sync {i}")
        await sync_to_async(send_progress)(alice.pk, "t-1", i * 10)
        a = await anotify(alice, f"Async {i}")
        sent += [("notification", n.pk), ("progress", float(i * 10)), ("notification", a.pk)]
    received = [await communicator.receive_json_from(timeout=5) for _ in sent]
    assert [(m["type"], m.get("id", m.get("percent"))) for m in received] == sent


@pytest.mark.django_db(transaction=True)
async def test_socket_cap_holds_in_process_on_the_in_memory_layer(in_memory, sockets, alice):
    for _ in range(app_settings.MAX_SOCKETS_PER_USER):
        _, connected, _ = await sockets(alice)
        assert connected
    extra, _, _ = await sockets(alice)
    assert await extra.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": CLOSE_TOO_MANY_SOCKETS,
    }


@pytest.mark.parametrize(
    ("backend", "ids"),
    [
        ("notifications.layers.RedisChannelLayer", []),
        (None, ["notifications.W001"]),
        ("channels_redis.core.RedisChannelLayer", ["notifications.W002"]),
        ("channels_redis.pubsub.RedisPubSubChannelLayer", ["notifications.W003"]),
        (IN_MEMORY, ["notifications.W004"]),
    ],
)
def test_check_warns_about_layers_that_lose_messages(settings, backend, ids, db):
    # db: Django 6.1's JSONField check asks the database what it supports.
    use_layer(settings, backend)
    try:
        found = [m.id for m in checks.run_checks() if m.id.startswith("notifications.")]
    finally:
        channel_layers.backends.clear()
    assert found == ids
    assert [m.id for m in channel_layer(None)] == ids
