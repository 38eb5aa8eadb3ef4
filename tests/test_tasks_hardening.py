"""Hardening of the task path: starting a task, and the notice that ends it.

The in-process Celery app publishes to the private Redis (conftest.py), so
the broker's queue shows whether a task was enqueued.
"""

import asyncio
import json
import logging
import math
import time
import urllib.error
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async
from celery import states
from django.test import Client

from notifications import anotify, flush, notify
from notifications.celery import signals
from notifications.celery.reporting import UserError, user_of
from notifications.limits import BODY_MAX, TITLE_MAX
from notifications.models import Notification
from tests.stack import Browserless, wait_for
from tests.tab import Tab

QUEUE = "celery"  # Celery's default queue: a Redis list of that name

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client_of_alice(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def queued(redis_client) -> list[dict]:
    """The headers of the task messages waiting in the broker."""
    return [json.loads(raw)["headers"] for raw in redis_client.lrange(QUEUE, 0, -1)]


def post_json(client: Client, body: str | bytes):
    return client.post("/tasks/start/", body, content_type="application/json")


def test_a_json_body_starts_the_task_it_names(client_of_alice, alice, redis_client):
    response = post_json(client_of_alice, json.dumps({"task": "import"}))
    assert response.status_code == 202
    assert response.json()["task"] == "import"
    (headers,) = queued(redis_client)
    assert headers["task"] == "tasks.tasks.import_contacts"
    assert headers["id"] == response.json()["task_id"]
    assert headers["kwargsrepr"] == repr({"user_id": alice.pk})


def test_the_demo_pages_form_still_starts_its_task(client_of_alice, redis_client):
    # jobs.js posts the form as FormData (multipart), always with its hidden `task` field.
    response = client_of_alice.post("/tasks/start/", {"task": "quick"})
    assert response.status_code == 202
    assert [h["task"] for h in queued(redis_client)] == ["tasks.tasks.warm_cache"]


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        b'{"task": "import"\xff}',  # not UTF-8
        "[" * 100_000,  # nesting deep enough to exhaust the parser's recursion
        '["import"]',
        '"import"',
        "null",
        "{}",
        '{"task": null}',
        '{"task": 1}',
        '{"task": ["import"]}',
        '{"task": "nope"}',
        '{"task": ""}',
    ],
)
def test_a_json_body_that_names_no_known_task_is_400_and_starts_nothing(
    client_of_alice, redis_client, body
):
    response = post_json(client_of_alice, body)
    assert response.status_code == 400
    assert isinstance(response.json()["error"], str)
    assert queued(redis_client) == []


@pytest.mark.parametrize("form", [{}, {"other": "import"}, {"task": "nope"}])
def test_a_form_that_names_no_known_task_is_400_and_starts_nothing(
    client_of_alice, redis_client, form
):
    response = client_of_alice.post("/tasks/start/", form)
    assert response.status_code == 400
    assert isinstance(response.json()["error"], str)
    assert queued(redis_client) == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", ""])
def test_another_content_type_is_415_and_starts_nothing(
    client_of_alice, redis_client, content_type
):
    response = client_of_alice.post(
        "/tasks/start/", '{"task": "import"}', content_type=content_type
    )
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]
    assert queued(redis_client) == []


# --- A per-user budget of task starts ----------------------------------------


@pytest.fixture
def budget_of_three(settings):
    settings.TASKS_START_BURST = 3
    settings.TASKS_START_RATE = 0.5


def test_starts_past_the_budget_are_429_and_enqueue_nothing(
    client_of_alice, bob, redis_client, budget_of_three
):
    answers = [post_json(client_of_alice, '{"task": "quick"}') for _ in range(5)]
    assert [a.status_code for a in answers] == [202, 202, 202, 429, 429]
    assert answers[3].json() == {"error": "too many tasks started; try again shortly"}
    assert answers[3]["Retry-After"] == "2"
    assert len(queued(redis_client)) == 3
    # Another person's budget is their own.
    client_of_bob = Client()
    client_of_bob.force_login(bob)
    assert post_json(client_of_bob, '{"task": "quick"}').status_code == 202
    assert len(queued(redis_client)) == 4


def test_the_budget_refills_with_time(client_of_alice, alice, redis_client, budget_of_three):
    for _ in range(3):
        assert post_json(client_of_alice, '{"task": "quick"}').status_code == 202
    assert post_json(client_of_alice, '{"task": "quick"}').status_code == 429
    # Two seconds pass (0.5 a second): set the bucket's clock back instead of waiting.
    from tasks.views import starts_key

    bucket = starts_key(alice.pk)
    redis_client.hset(bucket, "stamp", float(redis_client.hget(bucket, "stamp")) - 2)
    assert post_json(client_of_alice, '{"task": "quick"}').status_code == 202
    assert post_json(client_of_alice, '{"task": "quick"}').status_code == 429


@pytest.mark.e2e
def test_the_budget_holds_for_concurrent_starts_on_a_real_server(stack):
    """40 starts at once against Daphne: the default burst of 20 (plus what
    refilled meanwhile) start, each ends in its one notice, the rest are 429."""
    stack.create_users("starter_sam")
    sam = Browserless(stack, "starter_sam")

    def start_one(_) -> int:
        try:
            with sam.post("/tasks/start/", {"task": "quick"}) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    began = time.monotonic()
    with ThreadPoolExecutor(10) as pool:
        codes = list(pool.map(start_one, range(40)))
    refilled = math.ceil((time.monotonic() - began) * 0.5)
    started = codes.count(202)
    assert set(codes) == {202, 429}, codes
    assert 20 <= started <= 20 + refilled, codes
    notices = wait_for(
        lambda: len(stack.notifications("starter_sam")) >= started or None,
        60,
        "a notice per started task",
        interval=0.5,
    )
    assert notices and len(stack.notifications("starter_sam")) == started


def test_a_bad_body_costs_no_budget(client_of_alice, redis_client, budget_of_three):
    for _ in range(5):
        assert post_json(client_of_alice, '{"task": "nope"}').status_code == 400
    assert post_json(client_of_alice, '{"task": "quick"}').status_code == 202


def test_an_unreachable_app_redis_is_503_and_starts_nothing(
    client_of_alice, redis_client, redis_server
):
    from config.redis_server import free_port
    from tests.conftest import use_redis

    use_redis(f"redis://127.0.0.1:{free_port()}/0")
    try:
        response = post_json(client_of_alice, '{"task": "quick"}')
    finally:
        use_redis(redis_server.url)
    assert response.status_code == 503
    assert queued(redis_client) == []


# --- A dedupe hit pushes the saved notification again ------------------------


@pytest.mark.parametrize("publish", [sync_to_async(notify), anotify], ids=["notify", "anotify"])
async def test_a_dedupe_hit_pushes_the_saved_notification_again(sockets, alice, publish):
    # A worker died after saving the notice and before pushing it; its re-run
    # hits the key, and the tab must still get the notice.
    saved = await sync_to_async(Notification.objects.create)(
        recipient=alice, title="Report finished", dedupe_key="task:t-1", task_id="t-1"
    )
    tab, _, _ = await sockets(alice)
    assert (await tab.receive_json_from(timeout=5))["type"] == "hello"
    again = await publish(alice, "Report finished", task_id="t-1", dedupe_key="task:t-1")
    message = await tab.receive_json_from(timeout=5)
    assert (message["type"], message["id"], message["title"]) == (
        "notification",
        saved.pk,
        "Report finished",
    )
    assert again.pk == saved.pk
    assert await Notification.objects.filter(recipient=alice).acount() == 1


# --- Every task with a user ends in exactly one notification -----------------

LONG_URL = "https://example.com/" + "x" * 2000  # over URL_MAX


def task_like(title: str = "Export") -> SimpleNamespace:
    """What the signal handler reads of a task: its name, title and signature."""

    def run(user_id: int) -> None:
        pass

    return SimpleNamespace(name="tests.export", notify_title=title, run=run)


async def finish(user_id, retval, state=states.SUCCESS, title: str = "Export") -> None:
    """Run the completion handler as the worker does after a task, and its flush."""
    await sync_to_async(signals.notify_outcome)(
        task_id="t-1",
        task=task_like(title),
        args=(),
        kwargs={"user_id": user_id},
        retval=retval,
        state=state,
    )
    await sync_to_async(flush)()


async def only_notification(tab) -> dict:
    """The one notification the tab receives after its hello; fails on a second."""
    assert (await tab.receive_json_from(timeout=5))["type"] == "hello"
    message = await tab.receive_json_from(timeout=5)
    assert message["type"] == "notification"
    assert await tab.receive_nothing(timeout=0.3)
    return message


@pytest.mark.parametrize(
    ("retval", "state", "title", "expected"),
    [
        ("Done.", states.SUCCESS, "T" * 500, {"title": "T" * 190 + "… finished"}),
        (UserError("No."), states.FAILURE, "T" * 500, {"title": "T" * 192 + "… failed"}),
        ("m" * 5000, states.SUCCESS, "Export", {"body": "m" * (BODY_MAX - 1) + "…"}),
        ({"message": "m" * 5000}, states.SUCCESS, "Export", {"body": "m" * (BODY_MAX - 1) + "…"}),
        (UserError("e" * 5000), states.FAILURE, "Export", {"body": "e" * (BODY_MAX - 1) + "…"}),
        ({"message": "Here.", "url": LONG_URL}, states.SUCCESS, "Export", {"url": ""}),
        ({"message": "Here.", "url": 42}, states.SUCCESS, "Export", {"url": ""}),
        ({"message": "Here.", "url": None}, states.SUCCESS, "Export", {"url": ""}),
    ],
    ids=[
        "long title",
        "long title failed",
        "long body",
        "long message",
        "long error",
        "long url",
        "url not a string",
        "url None",
    ],
)
async def test_a_completion_over_the_limits_is_shortened_not_dropped(
    sockets, alice, retval, state, title, expected
):
    tab, _, _ = await sockets(alice)
    await finish(alice.pk, retval, state, title)
    message = await only_notification(tab)
    assert {key: message[key] for key in expected} == expected
    assert len(message["title"]) <= TITLE_MAX
    assert await Notification.objects.filter(recipient=alice).acount() == 1


async def test_a_digit_string_user_id_is_notified(sockets, alice):
    tab, _, _ = await sockets(alice)
    await finish(str(alice.pk), "Done.")
    message = await only_notification(tab)
    assert (message["title"], message["body"]) == ("Export finished", "Done.")


async def test_a_notice_notify_still_refuses_is_sent_bare(sockets, alice, monkeypatch):
    """A limit notify() adds later (e.g. on data) must not drop the notice."""

    def stricter(user_id, title, **fields):
        if fields.get("data") or fields.get("body"):
            raise ValueError("data is too large")
        return notify(user_id, title, **fields)

    monkeypatch.setattr(signals, "notify", stricter)
    tab, _, _ = await sockets(alice)
    await finish(alice.pk, "Done.")
    message = await only_notification(tab)
    assert (message["title"], message["level"], message["body"]) == (
        "Export finished",
        "success",
        "",
    )
    assert message["task_id"] == "t-1"


@pytest.mark.parametrize("user_id", ["abc", "²", "-1", "4" * 30, 0, -5, 2**64, True, 4.0, ""])
async def test_a_user_id_that_names_nobody_is_logged_and_dropped(alice, caplog, user_id):
    with caplog.at_level(logging.WARNING, logger="notifications.celery.signals"):
        await finish(user_id, "Done.")
    # Nobody to tell; the log says why, for the operator.
    assert f"task t-1: user_id {user_id!r} names no user" in caplog.text
    assert not await Notification.objects.aexists()


def test_a_digit_string_user_id_is_the_users_wherever_it_is_passed():
    task = task_like()
    assert user_of(task, (), {"user_id": "42"}) == 42
    assert user_of(task, ("42",), {}) == 42
    assert user_of(task, ("٤٢",), {}) is None  # Arabic-Indic digits: isdigit() but not an id


@pytest.mark.e2e
async def test_a_real_task_over_the_limits_ends_in_one_shortened_notice(stack):
    await asyncio.to_thread(stack.create_users, "oscar")
    oscar = await asyncio.to_thread(Browserless, stack, "oscar")
    async with Tab(stack, oscar) as tab:
        task_id = await asyncio.to_thread(
            stack.send_task,
            "tasks.tasks.long_job",
            user_id=str(stack.user_ids["oscar"]),  # as a form or JSON client may send it
            seconds=0,
            message="m" * 5000,
            url=LONG_URL,
        )
        messages = await tab.until(lambda m: m["type"] == "notification")
        with pytest.raises(TimeoutError):  # nothing follows
            await tab.next(timeout=1)
    assert [m["message"] for m in messages if m["type"] == "progress"] == ["Starting"]
    done = messages[-1]
    assert (done["task_id"], done["level"], done["title"]) == (
        task_id,
        "success",
        "Long job finished",
    )
    assert (done["body"], done["url"]) == ("m" * (BODY_MAX - 1) + "…", "")
    rows = await asyncio.to_thread(stack.notifications, "oscar")
    assert [row["id"] for row in rows] == [done["id"]]


async def test_a_task_id_longer_than_the_column_still_ends_in_one_notice(sockets, alice):
    tab, _, _ = await sockets(alice)
    long_id = "custom-" + "i" * 300
    for _ in range(2):  # delivered twice: still one notice
        await sync_to_async(signals.notify_outcome)(
            task_id=long_id,
            task=task_like(),
            args=(),
            kwargs={"user_id": alice.pk},
            retval="Done.",
            state=states.SUCCESS,
        )
    await sync_to_async(flush)()
    assert (await tab.receive_json_from(timeout=5))["type"] == "hello"
    first, again = [await tab.receive_json_from(timeout=5) for _ in range(2)]
    assert (first["title"], first["task_id"]) == ("Export finished", None)
    assert again["id"] == first["id"]  # the same notice sent again; the client drops it
    assert await Notification.objects.filter(recipient=alice).acount() == 1
