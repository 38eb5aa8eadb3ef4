"""Cancelling a running task: one `warning` notice, the worker process stopped, owners only."""

import asyncio
import http.cookiejar
import json
import time
import urllib.error
import urllib.request

import pytest

from tests.stack import Browserless, Stack
from tests.tab import Tab
from tests.test_redelivery import is_start

pytestmark = pytest.mark.e2e

SECONDS = 60  # long_job's length: far longer than any test waits for it
QUIET = 3  # seconds a tab is watched after the notice; long_job reports every second


def cancel_path(task_id: str) -> str:
    return f"/api/tasks/{task_id}/cancel/"


def post_cancel(session: Browserless, task_id: str) -> int:
    try:
        with session.post(cancel_path(task_id), {}) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def for_task(task_id: str, kind: str | None = None):
    return lambda m: m.get("task_id") == task_id and (kind is None or m["type"] == kind)


async def start_long_job(stack: Stack, tab: Tab, username: str) -> str:
    task_id = await asyncio.to_thread(
        stack.send_task, "tasks.tasks.long_job", user_id=stack.user_ids[username], seconds=SECONDS
    )
    await tab.until(is_start(task_id))
    return task_id


async def quiet_period(tab: Tab) -> list[dict]:
    """Every message in the next QUIET seconds."""
    seen = []
    deadline = time.monotonic() + QUIET
    while (left := deadline - time.monotonic()) > 0:
        try:
            seen.append(await tab.next(timeout=left))
        except TimeoutError:
            break
    return seen


async def assert_cancelled_once(stack: Stack, tab: Tab, username: str, task_id: str) -> None:
    notice = await tab.expect(for_task(task_id, "notification"), timeout=5)
    assert (notice["level"], notice["title"]) == ("warning", "Long job cancelled")
    later = await quiet_period(tab)
    # A report already on its way may land just after the notice; no more follow.
    assert len([m for m in later if for_task(task_id, "progress")(m)]) <= 1
    notices = [m for m in tab.received if for_task(task_id, "notification")(m)]
    assert {m["id"] for m in notices} == {notice["id"]}
    rows = [n for n in stack.notifications(username) if n["task_id"] == task_id]
    assert [(n["id"], n["level"]) for n in rows] == [(notice["id"], "warning")]
    assert f"long_job[{task_id}] succeeded" not in stack.log("worker")


async def test_the_owner_cancels_a_running_task_and_hears_of_it_once(stack):
    session = await asyncio.to_thread(Browserless, stack, "alice")
    async with Tab(stack, session) as tab:
        task_id = await start_long_job(stack, tab, "alice")
        await tab.until(lambda m: for_task(task_id, "progress")(m) and m["message"] == "Working")
        assert await asyncio.to_thread(post_cancel, session, task_id) == 202
        await assert_cancelled_once(stack, tab, "alice", task_id)
    # The worker sent SIGTERM to the task's process, which the prefork pool replaces.
    assert f"Terminating {task_id} (15)" in stack.log("worker")


async def test_someone_elses_cancel_is_404_and_an_operator_can_cancel(stack):
    alice = await asyncio.to_thread(Browserless, stack, "alice")
    bob = await asyncio.to_thread(Browserless, stack, "bob")
    async with Tab(stack, alice) as tab:
        task_id = await start_long_job(stack, tab, "alice")
        assert await asyncio.to_thread(post_cancel, bob, task_id) == 404
        tab.received.clear()
        await tab.until(lambda m: for_task(task_id, "progress")(m) and m["message"] == "Working")
        done = await asyncio.to_thread(stack.manage, "cancel_task", task_id)
        assert done.returncode == 0, done.stderr
        await assert_cancelled_once(stack, tab, "alice", task_id)


def test_an_unknown_task_is_404_to_users_and_exit_1_to_operators(stack):
    session = Browserless(stack, "bob")
    assert post_cancel(session, "no-such-task") == 404
    result = stack.manage("cancel_task", "no-such-task", check=False)
    assert result.returncode == 1
    assert "unknown task" in result.stderr


def test_an_anonymous_cancel_is_401_json(stack):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(stack.http_url() + "/accounts/login/", timeout=10).close()  # a CSRF cookie
    token = {cookie.name: cookie.value for cookie in jar}["csrftoken"]
    request = urllib.request.Request(
        stack.http_url() + cancel_path("anything"),
        data=b"",
        headers={"X-CSRFToken": token, "Referer": stack.http_url() + "/"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        opener.open(request, timeout=10)
    assert caught.value.code == 401
    assert json.load(caught.value) == {"error": "login required"}
