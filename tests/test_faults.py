"""Faults on real processes: Redis dies and comes back; a Celery worker is SIGKILLed mid-task.

Each test here breaks a stack of its own, so the shared one is never disturbed.
"""

import asyncio
import json
import os
import signal
import urllib.error
import urllib.request

import pytest
import websockets
from celery import Celery

from tests.stack import Browserless, Stack, running, wait_for
from tests.tab import Tab

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Short enough that a dead worker's task comes back within the test (a live
# worker's heartbeat keeps the report, about 5 s, from coming back twice).
VISIBILITY_TIMEOUT = 10


def get(url: str) -> tuple[int, bytes]:
    """(status, body) of a GET, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def notice(title: str):
    return lambda m: m["type"] == "notification" and m["title"] == title


@pytest.fixture
def own_stack(tmp_path, request):
    with running(tmp_path / "stack", f"faults-{request.node.name}") as stack:
        yield stack


async def test_redis_outage_keeps_http_up_and_tabs_catch_up_when_it_returns(own_stack: Stack):
    stack = own_stack
    alice = await asyncio.to_thread(Browserless, stack, "alice")
    tab = Tab(stack, alice)
    await tab.connect()
    # A task is running, so unacknowledged, when Redis dies.
    report_id = await asyncio.to_thread(alice.start_task, "report")
    await tab.until(lambda m: m["type"] == "progress")

    stack.redis.process.kill()
    stack.redis.process.wait()
    await tab.wait_closed()
    # The tab keeps trying, as the browser's does, through the whole outage.
    reconnected = asyncio.create_task(tab.reconnect(attempts=60))

    status, _ = await asyncio.to_thread(get, stack.base_url + "/accounts/login/")
    assert status == 200
    status, body = await asyncio.to_thread(get, stack.base_url + "/healthz")
    assert status == 503
    assert json.loads(body)["failing"] == ["redis"]
    with pytest.raises(websockets.ConnectionClosed) as refused:
        await Tab(stack, alice).connect()
    assert refused.value.rcvd.code == 4503
    with pytest.raises(urllib.error.HTTPError) as unavailable:
        await asyncio.to_thread(alice.start_task, "quick")
    assert unavailable.value.code == 503
    result = await asyncio.to_thread(
        stack.manage, "notify", "Sent while Redis was down", "--user", "alice"
    )
    assert result.stdout.strip() == "Notified 1 user."
    saved = await asyncio.to_thread(stack.notifications, "alice")
    assert "Sent while Redis was down" in [n["title"] for n in saved]
    assert not reconnected.done()

    stack.redis.start()
    await reconnected
    # Missed while away (replayed), or finished after the reconnection (live).
    await tab.expect(notice("Sent while Redis was down"))
    await tab.expect(lambda m: m["type"] == "notification" and m["task_id"] == report_id)
    status, body = await asyncio.to_thread(get, stack.base_url + "/healthz")
    assert (status, json.loads(body)["failing"]) == (200, [])

    # New notices flow again, from each publisher: a new process, the worker
    # that lived through the outage, and Daphne itself (the read receipt).
    await asyncio.to_thread(stack.manage, "notify", "Redis is back", "--user", "alice")
    await tab.until(notice("Redis is back"))
    quick_id = await asyncio.to_thread(alice.start_task, "quick")
    await tab.until(lambda m: m["type"] == "notification" and m["task_id"] == quick_id)
    await tab.ws.send(json.dumps({"type": "read", "ids": "all"}))
    receipt = await tab.until(lambda m: m["type"] == "read")
    assert receipt[-1]["unread"] == 0
    await tab.close()

    # The same Daphne and worker processes lived through it all.
    assert stack.processes["daphne"].poll() is None
    assert stack.processes["worker"].poll() is None
    saved = await asyncio.to_thread(stack.notifications, "alice")
    # Everything saved reached the tab exactly once, across the outage.
    assert sorted(tab.notification_ids) == [n["id"] for n in saved]


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    with running(
        tmp_path_factory.mktemp("workers"),
        "faults-workers",
        env={"CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT)},
    ) as stack:
        stack.start_worker("worker2")
        yield stack


def running_task(stack: Stack, task_id: str) -> tuple[str, int]:
    """(worker name, pool process id) of the worker process running `task_id`."""
    app = Celery(broker=stack.broker_url, set_as_current=False)

    def ask() -> tuple[str, int] | None:
        for hostname, tasks in (app.control.inspect(timeout=1).active() or {}).items():
            for task in tasks:
                if task["id"] == task_id:
                    return hostname.split("@")[0], task["worker_pid"]
        return None

    try:
        return wait_for(ask, 15, f"a worker to report {task_id} as running")
    finally:
        app.close()


async def run_report_and_kill(stack: Stack, username: str, kill) -> tuple[str, list[dict]]:
    """Start the report, call `kill(worker name, pool pid)` once it has made progress,
    and return the task id with every message up to its first notification."""
    session = await asyncio.to_thread(Browserless, stack, username)
    tab = Tab(stack, session)
    await tab.connect()
    task_id = await asyncio.to_thread(session.start_task, "report")
    await tab.until(lambda m: m["type"] == "progress" and m["percent"] > 0)
    kill(*await asyncio.to_thread(running_task, stack, task_id))
    await tab.until(lambda m: m["type"] == "notification", timeout=VISIBILITY_TIMEOUT + 40)
    # Nothing follows: no second completion notice from the second run.
    with pytest.raises(TimeoutError):
        await tab.next(timeout=1)
    await tab.close()
    return task_id, tab.received


def assert_ran_twice_and_notified_once(stack: Stack, username: str, task_id: str, messages):
    starts = [m for m in messages if m["type"] == "progress" and m["message"] == "Starting"]
    assert len(starts) == 2  # it ran again from the start after the kill
    done = [m for m in messages if m["type"] == "notification"]
    assert [(m["task_id"], m["level"], m["title"]) for m in done] == [
        (task_id, "success", "Quarterly sales report finished")
    ]
    rows = [n for n in stack.notifications(username) if n["task_id"] == task_id]
    assert [n["id"] for n in rows] == [done[0]["id"]]


async def test_task_whose_pool_process_is_killed_runs_again_and_notifies_once(two_workers):
    stack = two_workers
    task_id, messages = await run_report_and_kill(
        stack, "bob", lambda worker, pid: os.kill(pid, signal.SIGKILL)
    )
    await asyncio.to_thread(assert_ran_twice_and_notified_once, stack, "bob", task_id, messages)


async def test_task_of_a_killed_worker_runs_on_the_other_and_notifies_once(two_workers):
    stack = two_workers
    killed = []

    def kill_worker(worker: str, pid: int) -> None:
        stack.kill(worker)  # the main process and its pool: nothing is left to requeue it
        killed.append(worker)

    task_id, messages = await run_report_and_kill(stack, "carol", kill_worker)
    await asyncio.to_thread(assert_ran_twice_and_notified_once, stack, "carol", task_id, messages)
    (survivor,) = {"worker", "worker2"} - set(killed)
    assert f"generate_report[{task_id}] succeeded" in stack.log(survivor)
