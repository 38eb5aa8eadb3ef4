"""The `seen` frame: a tab says which notifications it showed, for its own user only."""

import asyncio
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications import seen
from notifications.models import Notification
from tests.stack import Browserless, Stack
from tests.tab import Tab


def seen_ids(stack: Stack, username: str) -> dict[str, bool]:
    """Each of the user's notifications by title: has a tab reported it seen?"""
    return stack.shell_json(
        "from notifications.models import Notification\n"
        f"rows = Notification.objects.filter(recipient__username={username!r})\n"
        "result = {n.title: n.seen_at is not None for n in rows}"
    )


async def send_and_settle(tab: Tab, frame: object) -> None:
    """Send `frame`, then one the server refuses: frames are handled in order, so
    once the refusal comes back the first one has been acted on."""
    await tab.ws.send(json.dumps(frame))
    await tab.ws.send(json.dumps({"type": "settle"}))
    error = await tab.expect(lambda m: m["type"] == "error")
    tab.received.remove(error)
    assert error["code"] == "unknown_type"


async def notices(stack: Stack, user: str, *titles: str) -> list[int]:
    for title in titles:
        await asyncio.to_thread(stack.manage, "notify", title, "--user", user)
    rows = await asyncio.to_thread(stack.notifications, user)
    return [row["id"] for row in rows if row["title"] in titles]


@pytest.mark.e2e
async def test_seen_marks_only_the_sockets_own_notifications(stack):
    await asyncio.to_thread(stack.create_users, "seen-owner", "seen-stranger")
    own = await notices(stack, "seen-owner", "Mine, shown", "Mine, not shown")
    theirs = await notices(stack, "seen-stranger", "Theirs")
    session = await asyncio.to_thread(Browserless, stack, "seen-owner")
    async with Tab(stack, session) as tab:
        await send_and_settle(tab, {"type": "seen", "ids": [own[0], *theirs, 2**70]})

    assert await asyncio.to_thread(seen_ids, stack, "seen-owner") == {
        "Mine, shown": True,
        "Mine, not shown": False,
    }
    assert await asyncio.to_thread(seen_ids, stack, "seen-stranger") == {"Theirs": False}


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize(
    "ids",
    [None, [], "all", [1.5], [True], ["1"], {"1": 1}, list(range(1, 1002))],
    ids=["missing", "empty", "all", "float", "bool", "string", "object", "1001 ids"],
)
async def test_a_malformed_seen_frame_gets_an_error_and_the_socket_lives(stack, ids):
    user = "seen-malformed"
    if user not in stack.user_ids:
        await asyncio.to_thread(stack.create_users, user)
    (notice,) = await notices(stack, user, f"Unseen {ids!r:.20}")
    session = await asyncio.to_thread(Browserless, stack, user)
    async with Tab(stack, session) as tab:
        frame = {"type": "seen"} if ids is None else {"type": "seen", "ids": ids}
        await tab.ws.send(json.dumps(frame))
        error = await tab.expect(lambda m: m["type"] == "error")
        assert error["code"] == "bad_field"
        tab.received.remove(error)
        # Still open and still acting on frames.
        await send_and_settle(tab, {"type": "seen", "ids": [notice]})
    titles = await asyncio.to_thread(seen_ids, stack, user)
    assert titles[f"Unseen {ids!r:.20}"] is True


@pytest.mark.django_db
def test_a_first_sighting_is_kept_and_only_the_users_own_rows_change(alice, bob):
    earlier = timezone.now() - timedelta(hours=1)
    old = Notification.objects.create(recipient=alice, title="Seen an hour ago", seen_at=earlier)
    new = Notification.objects.create(recipient=alice, title="Just shown")
    theirs = Notification.objects.create(recipient=bob, title="Bob's")

    assert seen.mark_seen(alice.pk, [old.pk, new.pk, theirs.pk, -1, 2**70]) == 1

    old.refresh_from_db()
    new.refresh_from_db()
    theirs.refresh_from_db()
    assert old.seen_at == earlier
    assert new.seen_at is not None
    assert theirs.seen_at is None
