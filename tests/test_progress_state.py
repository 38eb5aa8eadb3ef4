"""A running task's latest progress is kept for its owner: sent after hello,
answered over HTTP, dropped when the task's final notice is saved."""

import logging
from datetime import datetime

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from notifications import flush, progress_state, send_progress
from notifications.celery.signals import notify_outcome
from tasks.tasks import long_job

pytestmark = pytest.mark.django_db(transaction=True)


def progress_url(task_id: str) -> str:
    return f"/api/notifications/progress/{task_id}/"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_owner_reads_their_task_state(alice, redis_client):
    send_progress(alice.pk, "t-1", 40, "Summarised North")
    response = signed_in(alice).get(progress_url("t-1"))
    assert response.status_code == 200
    state = response.json()
    assert (state["task_id"], state["percent"], state["message"]) == (
        "t-1",
        40.0,
        "Summarised North",
    )
    assert datetime.fromisoformat(state["updated_at"]).tzinfo is not None


def test_another_user_and_an_unknown_task_get_404_and_anonymous_401(
    alice, bob, client, redis_client
):
    send_progress(alice.pk, "t-2", 10, "Starting")
    assert signed_in(bob).get(progress_url("t-2")).status_code == 404
    assert signed_in(alice).get(progress_url("t-unknown")).status_code == 404
    anonymous = client.get(progress_url("t-2"))
    assert (anonymous.status_code, anonymous.json()) == (401, {"error": "login required"})


def test_each_report_refreshes_the_keys_expiry(alice, redis_client, settings):
    settings.NOTIFICATIONS_PROGRESS_TTL = 120
    send_progress(alice.pk, "t-3", 5, "")
    assert 0 < redis_client.ttl(progress_state.key(alice.pk)) <= 120


def test_the_final_notice_drops_the_tasks_state(alice, redis_client):
    send_progress(alice.pk, "t-4", 90, "Almost")
    notify_outcome(
        task_id="t-4",
        task=long_job,
        args=(),
        kwargs={"user_id": alice.pk},
        retval="Done",
        state="SUCCESS",
    )
    flush()
    assert progress_state.running(alice.pk) == {}


def test_an_unreachable_redis_does_not_fail_the_report(alice, caplog, redis_server):
    from config.redis_server import free_port
    from tests.conftest import use_redis

    use_redis(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with caplog.at_level(logging.WARNING, logger="notifications.publish"):
            send_progress(alice.pk, "t-5", 50, "Halfway")
            flush()
    finally:
        use_redis(redis_server.url)
    assert "progress of task t-5 not kept" in caplog.text


async def test_a_new_socket_gets_the_running_tasks_after_hello_and_only_its_own(
    sockets, alice, bob, redis_client
):
    await sync_to_async(send_progress)(alice.pk, "t-6", 30, "Working")
    await sync_to_async(send_progress)(bob.pk, "t-7", 60, "Bob's")
    alices, _, _ = await sockets(alice)
    assert (await alices.receive_json_from(timeout=5))["type"] == "hello"
    progress = await alices.receive_json_from(timeout=5)
    assert (progress["type"], progress["task_id"], progress["percent"]) == ("progress", "t-6", 30.0)
    assert await alices.receive_nothing(timeout=0.2)


async def test_a_report_after_the_task_ended_neither_keeps_nor_sends_a_bar(
    sockets, alice, redis_client
):
    """A cancelled task's process may report once more before SIGTERM lands."""
    await sync_to_async(send_progress)(alice.pk, "t-8", 40, "Working")
    await sync_to_async(progress_state.forget)(alice.pk, "t-8")  # what cancel() does
    alices, _, _ = await sockets(alice)
    assert (await alices.receive_json_from(timeout=5))["type"] == "hello"
    await sync_to_async(send_progress)(alice.pk, "t-8", 50, "Still working")
    await sync_to_async(flush)()
    assert await alices.receive_nothing(timeout=0.5)
    assert await sync_to_async(progress_state.running)(alice.pk) == {}


async def test_reports_are_numbered_and_an_older_one_is_neither_kept_nor_sent(
    sockets, alice, redis_client
):
    """Two processes' reports can overtake each other: the later number wins."""
    alices, _, _ = await sockets(alice)
    assert (await alices.receive_json_from(timeout=5))["type"] == "hello"
    await sync_to_async(send_progress)(alice.pk, "t-9", 10, "First")
    await sync_to_async(send_progress)(alice.pk, "t-9", 20, "Second")
    await sync_to_async(flush)()
    seen = [await alices.receive_json_from(timeout=5) for _ in range(2)]
    assert [(m["percent"], m["seq"]) for m in seen] == [(10.0, 1), (20.0, 2)]
    await sync_to_async(send_progress)(alice.pk, "t-9", 60, "Numbered", 7)
    await sync_to_async(send_progress)(alice.pk, "t-9", 50, "Overtaken", 5)
    await sync_to_async(flush)()
    arrived = await alices.receive_json_from(timeout=5)
    assert (arrived["percent"], arrived["seq"]) == (60.0, 7)
    assert await alices.receive_nothing(timeout=0.3)
    kept = await sync_to_async(progress_state.running)(alice.pk)
    assert (kept["t-9"]["percent"], kept["t-9"]["seq"]) == (60.0, 7)
