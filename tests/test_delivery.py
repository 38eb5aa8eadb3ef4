"""Delivery guarantees on the real stack: order, race-free replay, bounded replay."""

import asyncio
import contextlib
import json
import random

import pytest
from django.conf import settings

from tests.stack import Browserless, Stack
from tests.tab import Tab

pytestmark = pytest.mark.e2e

USERS = ("grace", "heidi", "ivan", "judy")


def publish(username: str, count: int, title: str) -> list[str]:
    """manage.py arguments that notify() `username` `count` times, one after another."""
    return [
        "shell",
        "--verbosity",
        "0",
        "-c",
        "from django.contrib.auth.models import User\n"
        "from notifications import notify\n"
        f"user = User.objects.get(username={username!r})\n"
        f"for i in range({count}):\n"
        f"    notify(user, f'{title} {{i}}')",
    ]


@pytest.fixture(scope="module")
def users(stack: Stack) -> None:
    stack.create_users(*USERS)


@pytest.fixture
async def tabs(stack: Stack, users):
    """Opens signed-in tabs, and closes them after the test even when it fails."""
    opened: list[Tab] = []

    async def open_(username: str) -> Tab:
        session = await asyncio.to_thread(Browserless, stack, username)
        tab = Tab(stack, session)
        opened.append(tab)
        await tab.connect()
        return tab

    yield open_
    for tab in opened:
        await tab.close()


async def test_a_users_notifications_arrive_in_the_order_they_were_created(stack, tabs):
    tab = await tabs("grace")
    await asyncio.to_thread(stack.manage, *publish("grace", 200, "Notice"))
    messages = await tab.until(lambda m: m.get("title") == "Notice 199")
    assert [m["title"] for m in messages] == [f"Notice {i}" for i in range(200)]
    ids = [m["id"] for m in messages]
    assert ids == sorted(set(ids))


async def test_notices_from_concurrent_publishers_arrive_once_and_in_id_order(stack, tabs):
    tab = await tabs("judy")
    publishers = [asyncio.to_thread(stack.manage, *publish("judy", 40, f"P{p}")) for p in range(3)]
    await asyncio.gather(*publishers)
    await tab.until(lambda m: len(tab.notification_ids) >= 120)
    # A notice saved by one process a moment before another's may be sent a
    # moment after it; the tab still gets them in the order they were saved,
    # so resuming after the newest id seen can never skip one.
    ids = tab.notification_ids
    assert ids == sorted(set(ids))
    assert len(ids) == 120
    titles = [m["title"] for m in tab.received if m["type"] == "notification"]
    for p in range(3):
        assert [t for t in titles if t.startswith(f"P{p} ")] == [f"P{p} {i}" for i in range(40)]


def inbox_ids(session: Browserless, after: int, count: int) -> list[int]:
    """The ids of `count` notifications after `after`, read from the inbox API as the
    JavaScript client does when a replay says it was truncated."""
    ids: list[int] = []
    while len(ids) < count:
        url = f"{session.base_url}/api/notifications/?after={after}&limit=100"
        with session.opener.open(url, timeout=10) as response:
            page = [n["id"] for n in json.load(response)["notifications"]]
        ids += page[: count - len(ids)]
        after = page[-1]
    return ids


async def test_reconnecting_while_notices_are_published_loses_none_and_repeats_none(stack, users):
    session = await asyncio.to_thread(Browserless, stack, "heidi")
    tab = Tab(stack, session)
    await tab.connect()
    publisher = asyncio.create_task(asyncio.to_thread(stack.manage, *publish("heidi", 1000, "N")))
    rng = random.Random(4)
    replays, fetched = 0, []
    try:
        while not publisher.done():
            # A few live messages (or none), then drop the socket and resume with
            # ?after=: each replay runs while new notices are being saved and sent.
            with contextlib.suppress(TimeoutError):
                for _ in range(rng.randint(0, 5)):
                    await tab.next(timeout=0.2)
            await tab.close()
            away_after = tab.last_id
            hello = await tab.connect()
            replays += hello["last_id"] > away_after
            # Take the whole replay. On a busy machine more than the replay limit
            # may be saved while the tab is away: then the replay starts with
            # `truncated`, and the client reads the ones left out from the inbox.
            while tab.last_id < hello["last_id"]:
                message = await tab.next()
                if message["type"] == "truncated":
                    fetched += await asyncio.to_thread(
                        inbox_ids, session, message["after"], message["count"]
                    )
        await publisher
        saved = [n["id"] for n in await asyncio.to_thread(stack.notifications, "heidi")]
        await tab.expect(lambda m: m["type"] == "notification" and m["id"] == saved[-1])
    finally:
        await tab.close()
    # Reconnections that had notices to catch up on: dozens on a quiet machine,
    # a handful when the machine is so busy that the publisher finishes first.
    assert replays >= 3
    assert tab.notification_ids == sorted(set(tab.notification_ids))  # none twice, in order
    assert sorted(tab.notification_ids + fetched) == saved  # none lost, none twice


async def test_a_long_absence_replays_the_newest_and_says_how_many_are_left_out(stack, tabs):
    limit = settings.NOTIFICATIONS_REPLAY_LIMIT  # the stack runs with the same environment
    tab = await tabs("ivan")
    away_after = tab.last_id
    await tab.close()
    await asyncio.to_thread(stack.manage, *publish("ivan", limit + 7, "Missed"))

    await tab.connect()
    assert await tab.next() == {"type": "truncated", "after": away_after, "count": 7}
    replay = [await tab.next() for _ in range(limit)]
    assert [m["title"] for m in replay] == [f"Missed {i}" for i in range(7, limit + 7)]
    ids = [m["id"] for m in replay]
    assert ids == sorted(set(ids))
