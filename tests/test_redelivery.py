"""A dead worker's task comes back quickly; a live worker's long task never runs twice.

The visibility timeout is short (60 s by default) and each live worker keeps
the tasks it holds fresh (notifications/celery/kombu_patches.py). The end-to-end tests run a
stack of their own with the timeout scaled down to VISIBILITY_TIMEOUT.
"""

import asyncio
import time

import pytest
from kombu import Connection

from notifications.celery import kombu_patches
from tests.stack import Browserless, Stack, running
from tests.tab import Tab
from tests.test_faults import running_task

VISIBILITY_TIMEOUT = 4  # seconds; the heartbeat every second, a sweep every second
HEARTBEAT = VISIBILITY_TIMEOUT / 4
SWEEP = 1
# From a worker's death until its task runs again: its last heartbeat (at
# most one interval late) goes stale within a timeout, a sweep (or a lapsed
# sweep lock) follows within an interval each, then a second to pick it up.
REDELIVERY_BOUND = VISIBILITY_TIMEOUT + HEARTBEAT + 2 * SWEEP + 1
NOTHING_MORE = 1  # seconds a socket is watched for a second notice


def is_start(task_id: str):
    return lambda m: (
        m["type"] == "progress" and m["task_id"] == task_id and m["message"] == "Starting"
    )


def received(stack: Stack, task_id: str) -> int:
    """How many times the stack's workers received `task_id` (every delivery logs it)."""
    line = f"Task tasks.tasks.long_job[{task_id}] received"
    return sum(stack.log(name).count(line) for name in ("worker", "worker2"))


# --- Defaults --------------------------------------------------------------


def test_by_default_a_dead_workers_task_is_back_within_two_minutes():
    from config.settings import CELERY_BROKER_TRANSPORT_OPTIONS as options

    timeout = options["visibility_timeout"]
    assert timeout == 60
    assert options["unacked_heartbeat_interval"] == timeout / 4
    worst = timeout + options["unacked_restore_interval"] + options["unacked_mutex_expire"]
    assert worst < 120


# --- The heartbeat on the private Redis ---------------------------------------


@pytest.fixture
def consumer(redis_server, redis_client):
    """A channel holding one unacknowledged message, as a worker's main process does."""
    with Connection(redis_server.url) as connection:
        queue = connection.SimpleQueue("heartbeat-test")
        queue.put({"job": 1})
        message = queue.get(timeout=5)
        yield queue.channel, message
        queue.close()


def test_a_held_message_is_rescored_and_an_acked_one_is_not(consumer, redis_client):
    channel, message = consumer
    tag = message.delivery_tag
    redis_client.zadd("unacked_index", {tag: 1000.0})  # long overdue
    assert kombu_patches.refresh(channel) == 1
    assert redis_client.zscore("unacked_index", tag) > time.time() - 5
    message.ack()
    assert kombu_patches.refresh(channel) == 0
    assert redis_client.zscore("unacked_index", tag) is None


def test_a_message_another_worker_restored_is_not_revived(consumer, redis_client):
    channel, message = consumer
    redis_client.zrem("unacked_index", message.delivery_tag)  # as restore_by_tag does
    kombu_patches.refresh(channel)
    assert redis_client.zscore("unacked_index", message.delivery_tag) is None


# --- Real workers -------------------------------------------------------------


@pytest.fixture(scope="module")
def short_timeout(tmp_path_factory):
    """Two workers on a broker whose visibility timeout is VISIBILITY_TIMEOUT."""
    with running(
        tmp_path_factory.mktemp("redelivery"),
        "redelivery",
        env={"CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT)},
    ) as stack:
        stack.start_worker("worker2")
        yield stack


async def run_long_job(stack: Stack, username: str, seconds: float, during=None):
    """Run long_job for `username`; `during(tab, task_id)` runs once it has started.
    Returns the task id and every message up to its notification and just after."""
    session = await asyncio.to_thread(Browserless, stack, username)
    async with Tab(stack, session) as tab:
        user_id = stack.user_ids[username]
        task_id = await asyncio.to_thread(
            stack.send_task, "tasks.tasks.long_job", user_id=user_id, seconds=seconds
        )
        await tab.until(is_start(task_id))
        if during:
            await during(tab, task_id)
        await tab.until(lambda m: m["type"] == "notification", timeout=seconds + 20)
        with pytest.raises(TimeoutError):  # nothing follows
            await tab.next(timeout=NOTHING_MORE)
    return task_id, tab.received


def assert_one_notice(stack: Stack, username: str, task_id: str, messages: list[dict]) -> None:
    done = [m for m in messages if m["type"] == "notification"]
    assert [(m["task_id"], m["title"]) for m in done] == [(task_id, "Long job finished")]
    rows = [n for n in stack.notifications(username) if n["task_id"] == task_id]
    assert [n["id"] for n in rows] == [done[0]["id"]]


@pytest.mark.e2e
@pytest.mark.slow
async def test_a_task_five_times_the_timeout_runs_once(short_timeout):
    stack = short_timeout
    seconds = 5 * VISIBILITY_TIMEOUT  # four heartbeats must each keep it held
    task_id, messages = await run_long_job(stack, "alice", seconds)
    assert len([m for m in messages if is_start(task_id)(m)]) == 1
    assert received(stack, task_id) == 1
    await asyncio.to_thread(assert_one_notice, stack, "alice", task_id, messages)


@pytest.mark.e2e
@pytest.mark.slow
async def test_a_killed_workers_task_runs_again_on_the_live_one(short_timeout):
    stack = short_timeout
    killed: list[str] = []

    async def kill_its_worker(tab: Tab, task_id: str) -> None:
        name, _ = await asyncio.to_thread(running_task, stack, task_id)
        stack.kill(name)  # the main process and its pool, as when the machine dies
        killed.append(name)
        await tab.until(is_start(task_id), timeout=REDELIVERY_BOUND)

    # Twice the timeout, so its second run would be delivered yet again
    # if the live worker did not keep it fresh.
    task_id, messages = await run_long_job(
        stack, "bob", 2 * VISIBILITY_TIMEOUT, during=kill_its_worker
    )
    assert len([m for m in messages if is_start(task_id)(m)]) == 2
    assert received(stack, task_id) == 2
    (survivor,) = {"worker", "worker2"} - set(killed)
    assert f"long_job[{task_id}] succeeded" in stack.log(survivor)
    await asyncio.to_thread(assert_one_notice, stack, "bob", task_id, messages)
