"""Celery on RabbitMQ: a dead worker's task runs again within seconds, and notifies once.

RabbitMQ acknowledges for real: when a worker's connection closes (its
process died), the server queues the tasks it held again at once, with no
visibility timeout and no heartbeat. The stack here runs its workers on a
private rabbitmq-server (tests/rabbitmq.py); the channel layer stays on the
stack's own Redis.
"""

import asyncio
import importlib.util
import time

import pytest

import config.settings
from tests.rabbitmq import CONSUMER_TIMEOUT_MS
from tests.stack import Browserless, running
from tests.tab import Tab
from tests.test_faults import running_task
from tests.test_redelivery import assert_one_notice, is_start, received, run_long_job

TASK_SECONDS = 20
# From the kill until the task's second start reaches the user's socket.
REDELIVERY_BOUND = 10


def settings_with_broker(monkeypatch, url: str):
    """A fresh copy of config/settings.py, read with CELERY_BROKER_URL=url."""
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    spec = importlib.util.spec_from_file_location("settings_copy", config.settings.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_redis_only_options_are_left_out_for_rabbitmq(monkeypatch):
    rabbit = settings_with_broker(monkeypatch, "amqp://notify:secret@rabbit.example:5672//")
    assert rabbit.CELERY_BROKER_TRANSPORT_OPTIONS == {}
    assert (rabbit.CELERY_TASK_ACKS_LATE, rabbit.CELERY_TASK_REJECT_ON_WORKER_LOST) == (True, True)
    assert rabbit.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
    redis = settings_with_broker(monkeypatch, "redis://127.0.0.1:6379/0")
    assert redis.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] == 60


@pytest.mark.e2e
@pytest.mark.slow
def test_the_private_server_lets_long_tasks_run(rabbitmq_server):
    """The node runs with our config: loopback only, and the consumer timeout raised."""
    assert rabbitmq_server.ctl("eval", "application:get_env(rabbit, consumer_timeout).") == (
        f"{{ok,{CONSUMER_TIMEOUT_MS}}}\n"
    )
    listeners = rabbitmq_server.ctl("eval", "application:get_env(rabbit, tcp_listeners).")
    assert listeners == f'{{ok,[{{"127.0.0.1",{rabbitmq_server.port}}}]}}\n'


@pytest.fixture(scope="module")
def on_rabbitmq(rabbitmq_server, tmp_path_factory):
    """Two workers whose broker is the private RabbitMQ."""
    with running(
        tmp_path_factory.mktemp("rabbitmq-stack"),
        "rabbitmq",
        env={"CELERY_BROKER_URL": rabbitmq_server.url},
    ) as stack:
        stack.start_worker("worker2")
        yield stack


@pytest.mark.e2e
@pytest.mark.slow
async def test_a_task_started_from_the_page_notifies_once(on_rabbitmq):
    stack = on_rabbitmq
    for worker in ("worker", "worker2"):  # not quietly on the stack's Redis
        assert ".> transport:   amqp://notify:**@127.0.0.1:" in stack.log(worker)
    session = await asyncio.to_thread(Browserless, stack, "alice")
    async with Tab(stack, session) as tab:
        task_id = await asyncio.to_thread(session.start_task, "quick")  # Daphne publishes it
        await tab.until(lambda m: m["type"] == "notification" and m["task_id"] == task_id)
        with pytest.raises(TimeoutError):  # nothing follows
            await tab.next(timeout=1)
    done = [m for m in tab.received if m["type"] == "notification"]
    assert [(m["level"], m["title"]) for m in done] == [("success", "Cache warm-up finished")]


@pytest.mark.e2e
@pytest.mark.slow
async def test_a_killed_workers_task_runs_again_on_the_other_within_seconds(on_rabbitmq):
    stack = on_rabbitmq
    killed: list[str] = []
    took: list[float] = []

    async def kill_its_worker(tab: Tab, task_id: str) -> None:
        name, _ = await asyncio.to_thread(running_task, stack, task_id)
        started = time.monotonic()
        stack.kill(name)  # the main process and its pool: nobody is left to give it back
        killed.append(name)
        await tab.until(is_start(task_id), timeout=REDELIVERY_BOUND)
        took.append(time.monotonic() - started)

    task_id, messages = await run_long_job(stack, "bob", TASK_SECONDS, during=kill_its_worker)
    print(f"RabbitMQ: the killed worker's task started again after {took[0]:.2f} s")
    assert len([m for m in messages if is_start(task_id)(m)]) == 2
    assert received(stack, task_id) == 2
    (survivor,) = {"worker", "worker2"} - set(killed)
    assert f"long_job[{task_id}] succeeded" in stack.log(survivor)
    await asyncio.to_thread(assert_one_notice, stack, "bob", task_id, messages)
