"""A socket lives no longer than the access it was opened with: logging out, a new
password, a deactivated account close the sockets concerned on every Daphne within
seconds, and a ticket minted before any of these is refused."""

import asyncio
import itertools
import json

import pytest
import websockets

from notifications.consumers import CLOSE_UNAUTHENTICATED, CLOSE_UNAVAILABLE
from tests.stack import Browserless, Stack, running
from tests.tab import Tab

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# How soon a socket must close once its access ended.
CLOSED_WITHIN = 5
_names = itertools.count()


@pytest.fixture
def two_daphnes(stack: Stack) -> Stack:
    if "daphne2" not in stack.processes:
        stack.start_daphne("daphne2")
    return stack


async def new_user(stack: Stack) -> str:
    """A user of this test alone: the tests change passwords and deactivate accounts."""
    name = f"sessions-{next(_names)}"
    await asyncio.to_thread(stack.create_users, name)
    return name


async def sign_in(stack: Stack, username: str) -> Browserless:
    return await asyncio.to_thread(Browserless, stack, username)


async def open_tab(stack: Stack, session: Browserless, daphne: str = "daphne") -> Tab:
    tab = Tab(stack, session, daphne)
    await tab.connect()
    return tab


async def still_receives(stack: Stack, username: str, tab: Tab) -> None:
    title = f"still here {next(_names)}"
    await asyncio.to_thread(stack.manage, "notify", title, "--user", username)
    await tab.expect(lambda m: m["type"] == "notification" and m["title"] == title, timeout=10)


async def log_out(session: Browserless) -> None:
    await asyncio.to_thread(lambda: session.post("/accounts/logout/", {}).close())


async def shell(stack: Stack, username: str, change: str) -> None:
    """Change the user through the ORM in another process, as an admin's script would."""
    code = (
        "from django.contrib.auth.models import User\n"
        f"user = User.objects.get(username={username!r})\n"
        f"{change}\n"
        "user.save()"
    )
    await asyncio.to_thread(stack.manage, "shell", "-c", code)


CHANGES = {
    "password": "user.set_password('another-long-password')",
    "deactivation": "user.is_active = False",
}


async def test_logging_out_closes_that_sessions_sockets_on_every_daphne(two_daphnes):
    stack = two_daphnes
    user, other = await new_user(stack), await new_user(stack)
    leaving, staying = await sign_in(stack, user), await sign_in(stack, user)
    closing = [await open_tab(stack, leaving), await open_tab(stack, leaving, "daphne2")]
    kept = await open_tab(stack, staying, "daphne2")
    others = await open_tab(stack, await sign_in(stack, other))

    await log_out(leaving)

    for tab in closing:
        assert await tab.wait_closed(CLOSED_WITHIN) == CLOSE_UNAUTHENTICATED
    await still_receives(stack, user, kept)
    await still_receives(stack, other, others)
    await kept.close()
    await others.close()


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
async def test_a_changed_account_closes_all_its_sockets_on_every_daphne(two_daphnes, change):
    stack = two_daphnes
    user, other = await new_user(stack), await new_user(stack)
    first, second = await sign_in(stack, user), await sign_in(stack, user)
    tabs = [await open_tab(stack, first), await open_tab(stack, second, "daphne2")]
    others = await open_tab(stack, await sign_in(stack, other), "daphne2")

    await shell(stack, user, change)

    for tab in tabs:
        assert await tab.wait_closed(CLOSED_WITHIN) == CLOSE_UNAUTHENTICATED
    await still_receives(stack, other, others)
    await others.close()


def mint(session: Browserless) -> str:
    with session.post("/api/notifications/ticket/", {}) as response:
        return json.load(response)["ticket"]


async def ticket_socket(stack: Stack, ticket: str) -> websockets.ClientConnection:
    """A socket opened with `ticket` and no cookie, as a native app opens one."""
    return await websockets.connect(f"{stack.ws_url}?ticket={ticket}")


async def greeting(socket: websockets.ClientConnection) -> str | int:
    """The type of the first message, or the close code when the socket closes instead."""
    try:
        return json.loads(await asyncio.wait_for(socket.recv(), 10))["type"]
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code


async def test_a_ticket_minted_before_logging_out_is_refused(stack):
    session = await sign_in(stack, await new_user(stack))
    ticket = await asyncio.to_thread(mint, session)
    await log_out(session)
    assert await greeting(await ticket_socket(stack, ticket)) == CLOSE_UNAUTHENTICATED


async def test_a_ticket_minted_before_a_password_change_is_refused(stack):
    user = await new_user(stack)
    session = await sign_in(stack, user)
    ticket = await asyncio.to_thread(mint, session)
    await shell(stack, user, CHANGES["password"])
    assert await greeting(await ticket_socket(stack, ticket)) == CLOSE_UNAUTHENTICATED


async def test_a_ticket_socket_ends_with_the_session_it_was_minted_from(stack):
    session = await sign_in(stack, await new_user(stack))
    socket = await ticket_socket(stack, await asyncio.to_thread(mint, session))
    assert await greeting(socket) == "hello"
    await log_out(session)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with asyncio.timeout(CLOSED_WITHIN):
            while True:
                await socket.recv()
    assert closed.value.rcvd.code == CLOSE_UNAUTHENTICATED


@pytest.fixture
def own_stack(tmp_path, request):
    with running(tmp_path / "stack", f"sessions-{request.node.name}") as started:
        yield started


async def test_a_ticket_socket_while_redis_is_down_is_closed_with_4503(own_stack):
    stack = own_stack
    ticket = await asyncio.to_thread(mint, await sign_in(stack, "alice"))
    stack.redis.process.kill()
    stack.redis.process.wait()
    assert await greeting(await ticket_socket(stack, ticket)) == CLOSE_UNAVAILABLE
