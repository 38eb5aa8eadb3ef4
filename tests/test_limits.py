"""Every message the server builds fits in one frame, and a socket survives what slips past.

The limits are enforced where input enters (notify(), the command, progress);
what was saved before them, or cannot be serialised, is handled on the way out
without closing anybody's socket.
"""

import asyncio
import base64
import os
import socket

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.management import CommandError, call_command

from notifications import flush, limits, notify, notify_many, send_progress
from notifications.groups import event, user_group
from notifications.models import Notification
from tests.sockets import Listener
from tests.stack import Browserless, wait_for
from tests.tab import Tab


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


REFUSED = {
    "a 70 KB body": {"body": "x" * 70_000},
    "70 KB of data": {"data": {"blob": "x" * 70_000}},
    "a title over 200": {"title": "t" * 201},
    "a url over 2,000": {"url": "https://example.com/" + "a" * 2_000},
    "an integer no wire holds": {"data": {"n": 2**64}},
    "an integer below int64": {"data": {"n": [-(2**63) - 1]}},
    "data nested 40 deep": {"data": nested(40)},
    "a NUL in the body": {"body": "a\x00b"},
    "a NUL in a data key": {"data": {"a\x00": 1}},
    "an unpaired surrogate": {"title": "caf\ud800"},
    "a task id over 255": {"task_id": "t" * 256},
    "a kind with spaces": {"kind": "big export"},
    "a kind over 64": {"kind": "k" * 65},
    "a collapse key over 255": {"collapse_key": "c" * 256},
    "three actions": {"actions": [{"label": "A", "url": "/a"}] * 3},
    "a javascript: action": {"actions": [{"label": "Run", "url": "javascript:alert(1)"}]},
    "a protocol-relative action": {"actions": [{"label": "Go", "url": "//evil.example/"}]},
    "a backslash action": {"actions": [{"label": "Go", "url": "/\\evil.example/"}]},
    "a data: action": {"actions": [{"label": "Go", "url": "data:text/html,hi"}]},
    "an action with no label": {"actions": [{"label": " ", "url": "/a"}]},
    "an action with more keys": {"actions": [{"label": "A", "url": "/a", "onclick": "x"}]},
    "an action url over 500": {"actions": [{"label": "A", "url": "/" + "a" * 500}]},
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fields", REFUSED.values(), ids=REFUSED.keys())
def test_notify_refuses_what_cannot_travel_and_saves_nothing(alice, fields):
    fields = {"title": "Hello", **fields}
    title = fields.pop("title")
    with pytest.raises(ValueError):
        notify(alice, title, **fields)
    with pytest.raises(ValueError):
        notify_many([alice], title, **fields)
    assert Notification.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_the_limits_themselves_are_accepted(alice):
    notify(
        alice,
        "t" * limits.TITLE_MAX,
        body="b" * limits.BODY_MAX,
        url="/" + "u" * (limits.URL_MAX - 1),
        data={"n": 2**63 - 1, "m": -(2**63), "deep": nested(30)},
        task_id="i" * limits.TASK_ID_MAX,
        kind="k" * limits.KIND_MAX,
        collapse_key="c" * limits.COLLAPSE_KEY_MAX,
        actions=[
            {"label": "l" * limits.ACTION_LABEL_MAX, "url": "https://example.com/a"},
            {"label": "Retry", "url": "/" + "r" * (limits.ACTION_URL_MAX - 1)},
        ],
    )
    assert Notification.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_command_refuses_a_body_over_the_limit_and_saves_nothing(alice):
    with pytest.raises(CommandError, match="body is 5000 characters long; the limit is 4000"):
        call_command("notify", "Hi", "--user", "alice", "--body", "x" * 5_000)
    assert Notification.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_long_progress_message_is_shortened_not_refused(alice):
    listener = Listener(alice.pk)
    send_progress(alice.pk, "task-1", 50, "m" * 5_000)
    flush()
    progress = listener.receive()
    assert len(progress["message"]) == limits.PROGRESS_MESSAGE_MAX
    assert progress["message"].endswith("…")


@pytest.mark.django_db(transaction=True)
def test_one_unserialisable_event_does_not_take_its_batch_down(alice, bob):
    alices, bobs = Listener(alice.pk), Listener(bob.pk)
    bad = event({"type": "progress", "task_id": "t", "percent": 1, "message": 2**64})
    good = event({"type": "progress", "task_id": "t", "percent": 2, "message": "fine"})
    layer = get_channel_layer()
    async_to_sync(layer.group_send_many)([(user_group(alice.pk), bad), (user_group(bob.pk), good)])
    assert bobs.receive()["message"] == "fine"
    assert alices.receives_nothing()


# --- Through a real Daphne ---------------------------------------------------


@pytest.mark.e2e
async def test_the_largest_notification_notify_accepts_reaches_a_real_daphne(stack):
    """Every field at its limit, in the character JSON escapes longest (\\u0001)."""
    await asyncio.to_thread(stack.create_users, "limits-big")
    session = await asyncio.to_thread(Browserless, stack, "limits-big")
    data_chars = (limits.DATA_MAX_BYTES - len('{"k":""}')) // 6
    async with Tab(stack, session) as tab:
        created = await asyncio.to_thread(
            stack.shell_json,
            "from django.contrib.auth.models import User\n"
            "from notifications import notify\n"
            "c = chr(1)\n"
            "user = User.objects.get(username='limits-big')\n"
            f"n = notify(user, c * 200, body=c * 4000, url='/' + chr(34) * 1999, task_id=c * 255,"
            f" data={{'k': c * {data_chars}}}, kind='k' * 64, collapse_key=c * 255,"
            " actions=[{'label': c * 40, 'url': '/' + chr(34) * 499}] * 2)\n"
            "result = n.pk",
        )
        notice = await tab.next()
        assert (notice["id"], notice["title"], len(notice["body"])) == (created, "\x01" * 200, 4000)
        await asyncio.to_thread(stack.manage, "notify", "Still open", "--user", "limits-big")
        assert (await tab.next())["title"] == "Still open"


@pytest.mark.e2e
async def test_a_row_too_big_for_a_frame_is_replayed_shortened_and_the_socket_lives(stack):
    await asyncio.to_thread(stack.create_users, "limits-legacy")
    session = await asyncio.to_thread(Browserless, stack, "limits-legacy")
    tab = Tab(stack, session)
    await tab.connect()
    await tab.close()
    # A row saved before the limits existed, or written around notify().
    legacy = await asyncio.to_thread(
        stack.shell_json,
        "from django.contrib.auth.models import User\n"
        "from notifications.models import Notification\n"
        "user = User.objects.get(username='limits-legacy')\n"
        "n = Notification.objects.create(recipient=user, title='Legacy', body='x' * 70000,"
        " data={'blob': 'y' * 70000})\n"
        "result = n.pk",
    )
    await tab.connect()  # resumes with ?after=, so the big row is replayed
    try:
        replayed = await tab.next()
        assert (replayed["id"], replayed["title"]) == (legacy, "Legacy")
        assert len(replayed["body"]) == limits.BODY_MAX
        await asyncio.to_thread(stack.manage, "notify", "Next", "--user", "limits-legacy")
        assert (await tab.next())["title"] == "Next"
    finally:
        await tab.close()


@pytest.mark.e2e
async def test_reading_all_of_15000_keeps_every_tab_open_and_every_badge_reaches_0(stack):
    await asyncio.to_thread(stack.create_users, "limits-reader")
    # 15,000 unread notifications with 7-digit ids.
    await asyncio.to_thread(
        stack.shell_json,
        "from django.contrib.auth.models import User\n"
        "from django.core.management.color import no_style\n"
        "from django.db import connection\n"
        "from notifications.models import Notification\n"
        "user = User.objects.get(username='limits-reader')\n"
        "Notification.objects.bulk_create(Notification(id=2_000_000 + i, recipient=user,"
        " title=f'n{i}') for i in range(15000))\n"
        "with connection.cursor() as cursor:\n"
        "    for sql in connection.ops.sequence_reset_sql(no_style(), [Notification]):\n"
        "        cursor.execute(sql)\n"
        "result = 0",
    )
    session = await asyncio.to_thread(Browserless, stack, "limits-reader")
    async with Tab(stack, session) as first, Tab(stack, session) as second:
        await asyncio.to_thread(lambda: session.post("/api/notifications/read-all/", {}).close())
        for tab in (first, second):
            seen: set[int] = set()
            async with asyncio.timeout(30):
                while len(seen) < 15_000:
                    message = await tab.next()
                    if message["type"] == "read":
                        assert message["unread"] == 0
                        seen |= set(message["ids"])
        await asyncio.to_thread(stack.manage, "notify", "After", "--user", "limits-reader")
        assert (await first.next())["title"] == "After"
        assert (await second.next())["title"] == "After"


def raw_websocket(stack, cookie: str) -> socket.socket:
    """A WebSocket handshake on a socket that will then never be read: a stuck client.

    Its receive buffer is tiny, so what the server sends piles up on the server.
    """
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.settimeout(10)
    client.connect(("127.0.0.1", stack.ports["daphne"]))
    key = base64.b64encode(os.urandom(16)).decode()
    client.sendall(
        (
            "GET /ws/notifications/ HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{stack.ports['daphne']}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {stack.base_url}\r\nCookie: {cookie}\r\n\r\n"
        ).encode()
    )
    assert client.recv(4096).startswith(b"HTTP/1.1 101")
    return client


def read_until_closed(client: socket.socket) -> int:
    """Read what the server sent until it closes; the byte count."""
    total = 0
    try:
        while chunk := client.recv(65536):
            total += len(chunk)
    except ConnectionResetError:
        pass
    return total


@pytest.mark.e2e
async def test_a_client_that_stops_reading_is_closed_and_catches_up_when_back(stack):
    await asyncio.to_thread(stack.create_users, "limits-stuck")
    session = await asyncio.to_thread(Browserless, stack, "limits-stuck")
    tab = Tab(stack, session)
    await tab.connect()
    await tab.close()
    stuck = await asyncio.to_thread(raw_websocket, stack, session.cookie_header)
    try:
        # 400 frames of 24 KB: ~10 MB, more than the kernel's buffers and the limit.
        newest = await asyncio.to_thread(
            stack.shell_json,
            "from django.contrib.auth.models import User\n"
            "from notifications import notify, flush\n"
            "user = User.objects.get(username='limits-stuck')\n"
            "ids = [notify(user, f'n{i}', body=chr(1) * 4000).pk for i in range(400)]\n"
            "flush()\n"
            "result = ids[-1]",
        )
        await asyncio.to_thread(
            wait_for,
            lambda: "stopped reading" in stack.log("daphne"),
            30,
            "the stuck socket closed",
        )
        received = await asyncio.to_thread(read_until_closed, stuck)
        assert received < 400 * 24_000
    finally:
        stuck.close()
    # Back, it resumes after the newest id it had and finds the rest in the database.
    await tab.connect()
    try:
        messages = await tab.until(lambda m: m["type"] == "notification" and m["id"] == newest)
        assert messages[0] == {"type": "truncated", "after": messages[0]["after"], "count": 300}
    finally:
        await tab.close()
