"""The patch modules decide by probing the installed library, never by its version:
each change is applied where its hooks exist (and, for a bug fix, where the bug
shows), left out with one log line otherwise, and no import fails."""

import importlib.util
import logging
import types

import pytest
from channels_redis.core import RedisChannelLayer as LibraryLayer
from daphne.server import Server
from kombu.transport import redis as redis_transport
from redis.exceptions import ConnectionError as RedisConnectionError

from notifications import daphne_patches, layers
from notifications.celery import kombu_patches


def fresh_copy(module: types.ModuleType) -> types.ModuleType:
    """`module` imported again, apart from the one the project uses."""
    spec = importlib.util.spec_from_file_location(f"{module.__name__}_copy", module.__file__)
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    return copy


# --- kombu ---------------------------------------------------------------------


@pytest.fixture
def unpatched_kombu(monkeypatch):
    """kombu's own methods back in place for the test (restored afterwards)."""
    monkeypatch.setattr(
        redis_transport.Transport,
        "register_with_event_loop",
        kombu_patches._register_with_event_loop,
    )
    monkeypatch.setattr(redis_transport.Channel, "_connparams", kombu_patches._connparams)


def test_the_installed_kombu_gets_both_changes(unpatched_kombu):
    kombu_patches.install()
    assert redis_transport.Transport.register_with_event_loop is (
        kombu_patches.register_with_heartbeat
    )
    assert redis_transport.Channel._connparams is kombu_patches._connparams_of_a_live_transport


def test_a_kombu_without_the_heartbeats_hooks_keeps_its_own_and_says_so(
    unpatched_kombu, monkeypatch, caplog
):
    monkeypatch.delattr(redis_transport.Channel, "conn_or_acquire")
    kombu_patches.install()
    assert redis_transport.Transport.register_with_event_loop is (
        kombu_patches._register_with_event_loop
    )
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "heartbeat" in warning.message and "Channel.conn_or_acquire" in warning.message


def test_a_kombu_that_fails_a_closed_channel_cleanly_keeps_its_own(
    unpatched_kombu, monkeypatch, caplog
):
    def fixed(self, asynchronous=False):
        if self.connection is None:
            raise RedisConnectionError("closed")
        return kombu_patches._connparams(self, asynchronous)

    monkeypatch.setattr(redis_transport.Channel, "_connparams", fixed)
    monkeypatch.setattr(kombu_patches, "_connparams", fixed)
    caplog.set_level(logging.INFO)
    kombu_patches.install()
    assert redis_transport.Channel._connparams is fixed
    assert any("already fails a closed channel" in r.message for r in caplog.records)


def test_the_outage_fix_turns_the_crash_into_a_connection_error():
    closed = types.SimpleNamespace(connection=None)
    with pytest.raises(AttributeError):
        kombu_patches._connparams(closed)  # kombu's own: what killed the worker
    with pytest.raises(RedisConnectionError):
        kombu_patches._connparams_of_a_live_transport(closed)


# --- Daphne --------------------------------------------------------------------


@pytest.fixture
def unpatched_daphne(monkeypatch):
    import daphne.server
    from daphne.ws_protocol import WebSocketFactory

    monkeypatch.setattr(daphne.server, "WebSocketFactory", WebSocketFactory)
    monkeypatch.setattr(Server, "kill_all_applications", original_kill_all_applications)


def original_kill_all_applications(self):
    """Daphne 4.2's own, as it was when the fix was written."""
    wait_for = []
    for details in self.connections.values():
        application_instance = details["application_instance"]
        if not application_instance.done():
            application_instance.cancel()
            wait_for.append(application_instance)
    return wait_for


def test_the_installed_daphne_gets_every_change(unpatched_daphne):
    import daphne.server

    daphne_patches.install()
    assert daphne.server.WebSocketFactory is daphne_patches.NotificationsWebSocketFactory
    assert Server.kill_all_applications is daphne_patches.kill_all_applications


def test_a_daphne_that_cancels_every_socket_at_shutdown_keeps_its_own(
    unpatched_daphne, monkeypatch, caplog
):
    def fixed(self):
        return [d["application_instance"] for d in self.connections.values() if d]

    monkeypatch.setattr(Server, "kill_all_applications", fixed)
    caplog.set_level(logging.INFO)
    daphne_patches.install()
    assert Server.kill_all_applications is fixed
    assert any("already cancels every socket" in r.message for r in caplog.records)


def test_a_daphne_without_the_factory_hook_keeps_serving_and_says_so(
    unpatched_daphne, monkeypatch, caplog
):
    import daphne.server

    monkeypatch.delattr(daphne.server, "WebSocketFactory")
    daphne_patches.install()
    assert not hasattr(daphne.server, "WebSocketFactory")
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "frame limit" in warning.message and "WebSocketFactory" in warning.message
    assert Server.kill_all_applications is daphne_patches.kill_all_applications


def test_the_frame_limit_applies_whether_or_not_daphne_passes_a_size():
    limit = daphne_patches.app_settings.WS_MAX_MESSAGE_BYTES
    for options in ({}, {"maxMessagePayloadSize": 1 << 20, "maxFramePayloadSize": 0}):
        factory = daphne_patches.NotificationsWebSocketFactory(server_class=None)
        factory.setProtocolOptions(**options)
        assert (factory.maxMessagePayloadSize, factory.maxFramePayloadSize) == (limit, limit)
        assert factory.failByDrop is False


# --- channels-redis ------------------------------------------------------------


def test_the_installed_channels_redis_gets_the_whole_layer():
    assert layers.RedisChannelLayer.__mro__[1] is layers.PlainRedisChannelLayer
    assert hasattr(layers.RedisChannelLayer(), "group_send_many")


async def test_a_channels_redis_without_its_hooks_gets_the_librarys_layer(
    monkeypatch, caplog, redis_server
):
    monkeypatch.delattr(LibraryLayer, "_map_channel_keys_to_connection")
    copy = fresh_copy(layers)
    assert copy.RedisChannelLayer is copy.PlainRedisChannelLayer
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "_map_channel_keys_to_connection" in warning.message
    # The options settings give RedisChannelLayer are taken, and it works.
    layer = copy.RedisChannelLayer(hosts=[redis_server.url], receive_batch=50)
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "hello"})
    assert await layer.receive(channel) == {"type": "hello"}
    await layer.close_pools()


def test_daphnes_send_gets_no_timer_and_any_other_server_s_does():
    import functools

    from notifications import consumers

    daphne_send = functools.partial(Server.__new__(Server).handle_reply, object())
    assert consumers.bounded(daphne_send) is daphne_send  # it buffers; the protocol bounds it

    async def waits(message):  # a server with backpressure, such as uvicorn
        pass

    assert consumers.bounded(waits) is not waits
