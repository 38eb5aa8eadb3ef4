"""A bar whose worker is gone says it waits for a worker, and resumes when the task
runs again: the bookkeeping on the private Redis, the socket's `stalled` message
after hello, the progress endpoint, and a real worker killed mid-task."""

import asyncio
import json

import pytest
from django.test import Client

from notifications import progress_state, send_progress
from tests.stack import Browserless, Stack, running, wait_for
from tests.tab import Tab
from tests.test_faults import running_task

WORKER_TIMEOUT = 2  # seconds a worker counts as alive after its last heartbeat
VISIBILITY_TIMEOUT = 8  # seconds before a dead worker's task runs again: well after that


@pytest.fixture
def workers(redis_client, settings):
    settings.NOTIFICATIONS_WORKER_TIMEOUT = 60


def test_a_task_is_stalled_only_while_its_known_worker_is_gone(workers, alice):
    send_progress(alice.pk, "t-1", 30, "Working")
    send_progress(alice.pk, "t-2", 30, "Working")
    assert progress_state.stalled(alice.pk, ["t-1", "t-2"]) == set()  # no worker noted

    progress_state.runs_on(alice.pk, "t-1", "w1@host")
    progress_state.runs_on(alice.pk, "t-2", "w2@host")
    progress_state.alive("w1@host")
    assert progress_state.stalled(alice.pk, ["t-1", "t-2"]) == {"t-2"}

    progress_state.runs_on(alice.pk, "t-2", "w1@host")  # it runs again elsewhere
    assert progress_state.stalled(alice.pk, ["t-1", "t-2"]) == set()
    progress_state.gone("w1@host")
    assert progress_state.stalled(alice.pk, ["t-1", "t-2"]) == {"t-1", "t-2"}

    progress_state.forget(alice.pk, "t-1")
    assert progress_state.stalled(alice.pk, ["t-1"]) == set()
    assert progress_state.stalled(alice.pk, []) == set()


def test_a_lost_workers_tasks_are_claimed_once_unless_they_ran_again_or_ended(workers, alice, bob):
    for user, task in ((alice, "t-5"), (alice, "t-6"), (bob, "t-7"), (bob, "t-8")):
        send_progress(user.pk, task, 20, "Working")
        progress_state.runs_on(user.pk, task, "lost@host")
    progress_state.alive("lost@host")
    progress_state.alive("live@host")
    assert progress_state.claim_lost() == []  # both beat just now

    progress_state.runs_on(alice.pk, "t-6", "live@host")  # ran again elsewhere
    progress_state.forget(bob.pk, "t-8")  # ended
    progress_state.gone("lost@host")  # as if its last beat were long ago
    first, second = progress_state.claim_lost(), progress_state.claim_lost()
    assert first == sorted([(alice.pk, "t-5"), (bob.pk, "t-7")])
    assert second == []


@pytest.mark.django_db(transaction=True)
def test_the_progress_endpoint_says_whether_the_owners_task_is_stalled(workers, alice, bob):
    send_progress(alice.pk, "t-3", 50, "Working")
    progress_state.runs_on(alice.pk, "t-3", "w3@host")
    client = Client()
    client.force_login(alice)
    assert client.get("/api/notifications/progress/t-3/").json()["stalled"] is True
    progress_state.alive("w3@host")
    assert client.get("/api/notifications/progress/t-3/").json()["stalled"] is False
    client.force_login(bob)
    assert client.get("/api/notifications/progress/t-3/").status_code == 404


@pytest.mark.django_db(transaction=True)
async def test_a_socket_opened_while_the_worker_is_gone_gets_stalled_after_the_bar(
    workers, alice, sockets
):
    await asyncio.to_thread(send_progress, alice.pk, "t-4", 60, "Working")
    await asyncio.to_thread(progress_state.runs_on, alice.pk, "t-4", "w4@host")
    tab, _, _ = await sockets(alice)
    assert (await tab.receive_json_from(timeout=5))["type"] == "hello"
    progress = await tab.receive_json_from(timeout=5)
    assert (progress["type"], progress["task_id"], progress["percent"]) == ("progress", "t-4", 60)
    stalled = await tab.receive_json_from(timeout=5)
    assert (stalled["type"], stalled["task_id"]) == ("stalled", "t-4")
    assert set(stalled) == {"type", "task_id", "at"}


# --- A real worker killed mid-task ----------------------------------------------


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    env = {
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "NOTIFICATIONS_WORKER_TIMEOUT": str(WORKER_TIMEOUT),
    }
    with running(tmp_path_factory.mktemp("stalled"), "stalled", env=env) as stack:
        stack.start_worker("worker2")
        yield stack


async def first_messages(stack: Stack, session: Browserless) -> list[dict]:
    """What a tab opened now gets right after hello (a bar, maybe `stalled`)."""
    async with Tab(stack, session) as tab:
        seen = []
        await asyncio.to_thread(stack.manage, "notify", "Barrier", "--user", "alice")
        while (message := await tab.next())["type"] != "notification":
            seen.append(message)
        return seen


@pytest.mark.e2e
@pytest.mark.slow
async def test_a_killed_workers_task_waits_for_a_worker_then_resumes_elsewhere(two_workers):
    stack = two_workers
    session = await asyncio.to_thread(Browserless, stack, "alice")
    async with Tab(stack, session) as tab:
        task_id = await asyncio.to_thread(
            stack.send_task, "tasks.tasks.long_job", user_id=stack.user_ids["alice"], seconds=30
        )
        await tab.until(lambda m: m.get("task_id") == task_id and m.get("message") == "Working")
        name, _ = await asyncio.to_thread(running_task, stack, task_id)
        stack.kill(name)
        # The survivor's next beats find the lost worker and tell the open tab.
        await tab.until(lambda m: m == {**m, "type": "stalled", "task_id": task_id}, timeout=10)

        def progress_says_stalled() -> bool:
            with session.opener.open(
                f"{session.base_url}/api/notifications/progress/{task_id}/", timeout=10
            ) as response:
                return json.load(response)["stalled"]

        # Its heartbeat lapses within WORKER_TIMEOUT; its message comes back later.
        await asyncio.to_thread(wait_for, progress_says_stalled, 10, "the worker to count as gone")
        kinds = [(m["type"], m["task_id"]) for m in await first_messages(stack, session)]
        assert kinds[:2] == [("progress", task_id), ("stalled", task_id)]

        # The survivor runs it again; its reports bring the bar back, stalled no more.
        await tab.until(
            lambda m: m.get("task_id") == task_id and m.get("message") == "Starting",
            timeout=VISIBILITY_TIMEOUT + 15,
        )
        await tab.until(lambda m: m.get("task_id") == task_id and m["type"] == "progress")
        assert not await asyncio.to_thread(progress_says_stalled)
        kinds = [(m["type"], m["task_id"]) for m in await first_messages(stack, session)]
        assert kinds[0] == ("progress", task_id)  # live reports may follow before the barrier
        assert ("stalled", task_id) not in kinds
