"""NotificationConsumer through the project's real ASGI stack (origin check,
session auth) on the real channels-redis layer."""

import asyncio
from datetime import datetime

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from notifications import anotify, flush, messages, notify
from notifications.consumers import CLOSE_UNAUTHENTICATED
from notifications.groups import event, user_group
from notifications.models import Notification
from notifications.reads import mark_read

pytestmark = pytest.mark.django_db(transaction=True)


async def test_anonymous_socket_is_closed_with_4401(sockets):
    communicator, connected, _ = await sockets()
    assert connected
    assert await communicator.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": CLOSE_UNAUTHENTICATED,
    }


async def test_foreign_origin_is_refused(sockets, alice):
    _, connected, _ = await sockets(alice, origin=(b"origin", b"https://evil.example"))
    assert not connected


async def test_hello_reports_the_unread_count(sockets, alice):
    await sync_to_async(notify)(alice, "Earlier")
    communicator, connected, _ = await sockets(alice)
    assert connected
    hello = await communicator.receive_json_from(timeout=5)
    assert hello["type"] == "hello"
    assert hello["unread"] == 1


async def test_hello_counts_only_own_unread_and_names_own_newest_id(sockets, alice, bob):
    communicator, _, _ = await sockets(alice)
    assert await communicator.receive_json_from(timeout=5) == {
        "type": "hello",
        "unread": 0,
        "last_id": 0,
    }
    read = await sync_to_async(notify)(alice, "Seen")
    await sync_to_async(mark_read)(alice.pk, [read.pk])
    newest = await sync_to_async(notify)(alice, "Not yet seen")
    await sync_to_async(notify)(bob, "Bob's")
    communicator, _, _ = await sockets(alice)
    assert await communicator.receive_json_from(timeout=5) == {
        "type": "hello",
        "unread": 1,
        "last_id": newest.pk,
    }


async def test_notification_is_relayed_to_every_tab_of_its_user(sockets, alice):
    tabs = [(await sockets(alice))[0] for _ in range(2)]
    for tab in tabs:
        await tab.receive_json_from(timeout=5)  # hello
    n = await sync_to_async(notify)(alice, "Report ready", level="success", task_id="t-1")
    for tab in tabs:
        message = await tab.receive_json_from(timeout=5)
        assert message["type"] == "notification"
        assert (message["id"], message["title"], message["task_id"]) == (
            n.pk,
            "Report ready",
            "t-1",
        )


async def test_progress_is_relayed(sockets, alice):
    from notifications import send_progress

    communicator, _, _ = await sockets(alice)
    await communicator.receive_json_from(timeout=5)
    await sync_to_async(send_progress)(alice.pk, "t-9", 42, "Halfway")
    progress = await communicator.receive_json_from(timeout=5)
    assert datetime.fromisoformat(progress.pop("at")).tzinfo is not None
    assert progress == {
        "type": "progress",
        "task_id": "t-9",
        "percent": 42.0,
        "message": "Halfway",
        "seq": 1,
    }


async def test_user_never_receives_another_users_messages(sockets, alice, bob):
    alices, _, _ = await sockets(alice)
    bobs, _, _ = await sockets(bob)
    await alices.receive_json_from(timeout=5)
    await bobs.receive_json_from(timeout=5)
    await sync_to_async(notify)(alice, "Alice's secret")
    assert (await alices.receive_json_from(timeout=5))["title"] == "Alice's secret"
    assert await bobs.receive_nothing(timeout=0.5)


async def test_idle_socket_outlives_the_redis_socket_timeout(sockets, alice):
    communicator, _, _ = await sockets(alice)
    await communicator.receive_json_from(timeout=5)
    # Longer than redis-py's default 5 s socket timeout and the layer's 5 s
    # blocking pop: the idleness is what is under test here.
    await asyncio.sleep(7)
    await sync_to_async(notify)(alice, "Still there?")
    assert (await communicator.receive_json_from(timeout=5))["title"] == "Still there?"


async def test_replay_sends_missed_notifications_in_order_without_duplicates(sockets, alice, bob):
    first = await sync_to_async(notify)(alice, "Seen before the drop")
    missed = [await sync_to_async(notify)(alice, f"Missed {i}") for i in range(3)]
    await sync_to_async(notify)(bob, "Not Alice's")
    communicator, _, _ = await sockets(alice, path=f"/ws/notifications/?after={first.pk}")
    assert (await communicator.receive_json_from(timeout=5))["type"] == "hello"
    replayed = [await communicator.receive_json_from(timeout=5) for _ in missed]
    assert [m["id"] for m in replayed] == [n.pk for n in missed]
    live = await sync_to_async(notify)(alice, "Live")
    assert (await communicator.receive_json_from(timeout=5))["id"] == live.pk
    assert await communicator.receive_nothing(timeout=0.3)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_json"),
        ("[1, 2]", "bad_frame"),
        ('{"type": "subscribe"}', "unknown_type"),
        ('{"type": "read", "ids": "1"}', "bad_field"),
    ],
)
async def test_bad_frames_get_an_error_and_change_nothing(sockets, alice, frame, code):
    n = await sync_to_async(notify)(alice, "Unread")
    communicator, _, _ = await sockets(alice)
    await communicator.receive_json_from(timeout=5)
    await communicator.send_to(text_data=frame)
    error = await communicator.receive_json_from(timeout=5)
    assert (error["type"], error["code"]) == ("error", code)
    await sync_to_async(n.refresh_from_db)()
    assert n.read_at is None
    # The socket still serves its user.
    await sync_to_async(notify)(alice, "After the bad frame")
    assert (await communicator.receive_json_from(timeout=5))["title"] == "After the bad frame"


async def test_read_frame_marks_only_own_notifications_and_tells_every_tab(sockets, alice, bob):
    mine = await sync_to_async(notify)(alice, "Mine")
    theirs = await sync_to_async(notify)(bob, "Bob's")
    tab1, _, _ = await sockets(alice)
    tab2, _, _ = await sockets(alice)
    for tab in (tab1, tab2):
        await tab.receive_json_from(timeout=5)
    await tab1.send_json_to({"type": "read", "ids": [mine.pk, theirs.pk]})
    for tab in (tab1, tab2):
        assert await tab.receive_json_from(timeout=5) == {
            "type": "read",
            "ids": [mine.pk],
            "unread": 0,
        }
    await sync_to_async(theirs.refresh_from_db)()
    assert theirs.read_at is None


async def test_a_notice_whose_event_comes_late_is_sent_before_the_next(sockets, alice):
    communicator, _, _ = await sockets(alice)
    await communicator.receive_json_from(timeout=5)
    # Saved but not sent yet, as when another process saved it a moment
    # earlier and is still about to send it (or the channel layer dropped it).
    late = await sync_to_async(Notification.objects.create)(recipient=alice, title="Saved first")
    following = await sync_to_async(notify)(alice, "Saved second")
    first, second = [await communicator.receive_json_from(timeout=5) for _ in range(2)]
    assert [(first["id"], first["title"]), (second["id"], second["title"])] == [
        (late.pk, "Saved first"),
        (following.pk, "Saved second"),
    ]
    # The late event itself then arrives, and is not sent twice.
    await get_channel_layer().group_send(
        user_group(alice.pk),
        {"type": "push", "message": messages.notification(late), "previous": 0},
    )
    assert await communicator.receive_nothing(timeout=0.5)


async def test_a_late_event_for_a_notification_the_client_has_is_not_sent_again(sockets, alice):
    first = await sync_to_async(notify)(alice, "Seen already")
    await sync_to_async(flush)()
    communicator, _, _ = await sockets(alice, path=f"/ws/notifications/?after={first.pk}")
    assert (await communicator.receive_json_from(timeout=5))["type"] == "hello"
    # The event of `first` reaches the group only now, as from a publisher
    # whose sender thread was starved while the tab reconnected.
    late = event(messages.notification(first), previous=0)
    await get_channel_layer().group_send(user_group(alice.pk), late)
    second = await anotify(alice, "New")
    assert (await communicator.receive_json_from(timeout=5))["id"] == second.pk


@pytest.mark.parametrize("frame", ["x" * (64 * 1024 + 1), "é" * (32 * 1024 + 1)])
async def test_a_frame_over_the_limit_a_server_let_through_is_closed_with_1009(
    sockets, alice, frame
):
    # Daphne (patched) and uvicorn (ws_max_size) stop such a frame themselves;
    # plain uvicorn takes up to 16 MiB, and the consumer closes it then.
    communicator, _, _ = await sockets(alice)
    await communicator.receive_json_from(timeout=5)
    await communicator.send_to(text_data=frame)
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 1009}
