"""The consumer survives any input, and whatever ends a socket undoes what it joined."""

import asyncio
from urllib.parse import quote

import pytest
import redis
import websockets
from asgiref.sync import sync_to_async

from notifications import inbox, metrics
from notifications.groups import user_group
from tests.sockets import open_socket
from tests.stack import Browserless, wait_for
from tests.tab import Tab

GAUGE = "notifications_connected_sockets"


def members(redis_url: str, user_id: int) -> int:
    """How many channels are in the user's group, as the channel layer stores it."""
    client = redis.Redis.from_url(redis_url)
    try:
        return client.zcard(f"asgi:group:{user_group(user_id)}")
    finally:
        client.close()


@pytest.mark.e2e
@pytest.mark.parametrize("after", ["²", "9" * 5_000, "-5", "abc", "1e9", "", "0007", "٣"], ids=repr)
async def test_any_after_value_gives_a_working_socket(stack, after):
    user = "input-after"
    if user not in stack.user_ids:
        await asyncio.to_thread(stack.create_users, user)
    session = await asyncio.to_thread(Browserless, stack, user)
    url = f"{stack.ws_url}?after={quote(after)}"
    headers = {"Cookie": session.cookie_header, "Origin": stack.base_url}
    async with websockets.connect(url, additional_headers=headers) as ws:
        hello = await asyncio.wait_for(ws.recv(), 10)
        assert '"type":"hello"' in hello
        title = f"after={after[:10]}"
        await asyncio.to_thread(stack.manage, "notify", title, "--user", user)
        async with asyncio.timeout(10):
            while title not in await ws.recv():
                pass  # earlier notices may be replayed first (after=0007)
    await asyncio.to_thread(
        wait_for, lambda: members(stack.redis_url, stack.user_ids[user]) == 0, 10, "group left"
    )


@pytest.mark.e2e
async def test_deeply_nested_json_is_answered_with_an_error_frame(stack):
    session = await asyncio.to_thread(Browserless, stack, "bob")
    async with Tab(stack, session) as tab:
        await tab.ws.send("[" * 30_000)
        error = await tab.next()
        assert (error["type"], error["code"]) == ("error", "bad_json")
        await asyncio.to_thread(stack.manage, "notify", "Still here", "--user", "bob")
        assert (await tab.next())["title"] == "Still here"


@pytest.mark.e2e
async def test_a_daphne_shut_down_leaves_no_socket_in_any_group(stack):
    await asyncio.to_thread(stack.create_users, "input-shutdown")
    user_id = stack.user_ids["input-shutdown"]
    await asyncio.to_thread(stack.start_daphne, "doomed")
    session = await asyncio.to_thread(Browserless, stack, "input-shutdown", "doomed")
    tab = Tab(stack, session, "doomed")
    await tab.connect()
    assert members(stack.redis_url, user_id) == 1
    await asyncio.to_thread(stack.stop_process, "doomed")
    await asyncio.to_thread(wait_for, lambda: members(stack.redis_url, user_id) == 0, 10, "left")


@pytest.mark.django_db(transaction=True)
async def test_a_socket_that_fails_in_a_handler_leaves_its_group_and_the_gauge(
    alice, redis_server, monkeypatch
):
    def broken(user_id: int) -> tuple[int, int]:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(inbox, "unread_and_last_id", broken)
    before = metrics.registry.snapshot().get(GAUGE, 0)
    communicator, connected, _ = await open_socket(alice)
    assert connected
    with pytest.raises(RuntimeError):
        await communicator.receive_output(timeout=5)
    assert await sync_to_async(members)(redis_server.url, alice.pk) == 0
    assert metrics.registry.snapshot().get(GAUGE, 0) == before
