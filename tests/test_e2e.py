"""The whole pipeline on real processes: a browser-like client signs in over
HTTP, holds a WebSocket to Daphne, and a Celery worker's tasks reach it."""

import asyncio

import psycopg
import pytest
import websockets

from tests.stack import Browserless
from tests.tab import Tab
from tests.test_seen import send_and_settle

pytestmark = pytest.mark.e2e


async def test_long_task_reports_progress_then_success(stack):
    alice = await asyncio.to_thread(Browserless, stack, "alice")
    async with Tab(stack, alice) as socket:  # connecting checks the hello
        task_id = await asyncio.to_thread(alice.start_task, "report")
        messages = await socket.until(lambda m: m["type"] == "notification")
    progress = [m for m in messages if m["type"] == "progress"]
    assert {m["task_id"] for m in progress} == {task_id}
    assert [m["percent"] for m in progress] == sorted(m["percent"] for m in progress)
    assert progress[-1]["percent"] == 100
    done = messages[-1]
    assert (done["level"], done["task_id"]) == ("success", task_id)
    assert done["title"] == "Quarterly sales report finished"
    assert "6 regions summarised" in done["body"]


async def test_failing_task_gives_a_readable_error_notification(stack):
    bob = await asyncio.to_thread(Browserless, stack, "bob")
    async with Tab(stack, bob) as socket:
        task_id = await asyncio.to_thread(bob.start_task, "import")
        done = (await socket.until(lambda m: m["type"] == "notification"))[-1]
    assert (done["level"], done["task_id"]) == ("error", task_id)
    assert done["title"] == "Contact import failed"
    assert done["body"] == "Nothing was imported. Row 3: 'grace@' is not a valid e-mail address."
    assert "Traceback" not in done["body"]


async def test_management_command_reaches_the_connected_user_only(stack):
    carol = await asyncio.to_thread(Browserless, stack, "carol")
    dave = await asyncio.to_thread(Browserless, stack, "dave")
    async with Tab(stack, carol) as carols, Tab(stack, dave) as daves:
        result = await asyncio.to_thread(
            stack.manage,
            "notify",
            "Deploy at 18:00",
            "--user",
            "carol",
            "--level",
            "warning",
            "--body",
            "Expect a short blip.",
        )
        assert result.stdout.strip() == "Notified 1 user."
        notice = await carols.next()
        assert (notice["type"], notice["title"], notice["level"], notice["body"]) == (
            "notification",
            "Deploy at 18:00",
            "warning",
            "Expect a short blip.",
        )
        with pytest.raises(TimeoutError):
            await daves.next(timeout=0.5)


def test_unknown_user_exits_1_and_sends_nothing(stack):
    result = stack.manage("notify", "Hi", "--user", "carol", "--user", "nobody", check=False)
    assert result.returncode == 1
    assert "unknown or inactive user 'nobody'" in result.stderr
    assert result.stdout == ""


def test_unknown_group_exits_1(stack):
    result = stack.manage("notify", "Hi", "--group", "no-such-group", check=False)
    assert result.returncode == 1
    assert "group 'no-such-group'" in result.stderr


def test_bad_level_exits_non_zero_with_a_message(stack):
    result = stack.manage("notify", "Hi", "--all", "--level", "urgent", check=False)
    assert result.returncode == 2
    assert "invalid choice: 'urgent'" in result.stderr


async def test_anonymous_socket_is_told_to_log_in(stack):
    async with websockets.connect(stack.ws_url, origin=stack.base_url) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd.code == 4401


async def test_a_retried_task_ends_in_exactly_one_notification(stack):
    erin = await asyncio.to_thread(Browserless, stack, "erin")
    async with Tab(stack, erin) as socket:
        task_id = await asyncio.to_thread(erin.start_task, "flaky")
        messages = await socket.until(lambda m: m["type"] == "notification")
        attempts = [m["message"] for m in messages if m["type"] == "progress"]
        assert attempts == ["Attempt 1", "Attempt 2", "Attempt 3"]
        done = messages[-1]
        assert (done["level"], done["task_id"]) == ("success", task_id)
        assert done["body"] == "Invoices are in sync after 3 attempts."
        # Nothing else follows: no notice per failed attempt, no second final one.
        with pytest.raises(TimeoutError):
            await socket.next(timeout=1)


async def test_oversized_frame_is_refused_with_1009_and_others_keep_receiving(stack):
    frank = await asyncio.to_thread(Browserless, stack, "frank")
    async with Tab(stack, frank) as big, Tab(stack, frank) as steady:
        await big.ws.send("x" * (64 * 1024 + 1))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await big.next()
        assert closed.value.rcvd.code == 1009
        await asyncio.to_thread(stack.manage, "notify", "Still here", "--user", "frank")
        assert (await steady.next())["title"] == "Still here"


async def test_plain_daphne_gets_the_frame_limit_and_the_fixes_too(stack):
    """`daphne config.asgi:application`, as the README allows, not config.serve."""
    await asyncio.to_thread(stack.start_daphne, "plain", plain=True)
    try:
        frank = await asyncio.to_thread(Browserless, stack, "frank", "plain")
        async with Tab(stack, frank, "plain") as big, Tab(stack, frank, "plain") as steady:
            await big.ws.send("x" * (64 * 1024 + 1))  # Daphne alone would take 1 MiB
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await big.next()
            assert closed.value.rcvd.code == 1009
            await asyncio.to_thread(stack.manage, "notify", "Plain", "--user", "frank")
            assert (await steady.next())["title"] == "Plain"
    finally:
        await asyncio.to_thread(stack.stop_process, "plain")


async def test_requests_and_sockets_leave_no_database_connections_behind(stack):
    if stack.database is None:
        pytest.skip("counts PostgreSQL connections; this run is on SQLite")

    def connections() -> int:
        with psycopg.connect(stack.database.admin_url, autocommit=True) as admin:
            query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
            return admin.execute(query, [stack.database.name]).fetchone()[0]

    # One user per round, so the frames stay inside each user's frame budget.
    names = [f"pooled{n}" for n in range(20)]
    await asyncio.to_thread(stack.create_users, *names)
    for name in names:  # each sign-in is two HTTP requests, each handshake reads the session
        session = await asyncio.to_thread(Browserless, stack, name)
        async with Tab(stack, session) as tab:
            # Frames whose handlers use the database.
            for frame in ({"type": "seen", "ids": [1]}, {"type": "read", "ids": [1]}):
                await send_and_settle(tab, frame)
    # The worker and Daphne may each hold a few; one per request would be 60.
    assert await asyncio.to_thread(connections) < 12
