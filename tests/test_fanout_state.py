"""A fan-out job's tally on the private Redis: parts ending at once agree on one end,
a part delivered twice counts once, and a cancelled job counts nothing more.
The demo's start endpoint queues the twelve parts of one job."""

import json
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from django.test import Client

from notifications.celery import fanout_state
from notifications.celery.fanout import start_fanout
from tasks.tasks import export_statement

JOB = fanout_state.PREFIX + "unit"
PARTS = [f"{JOB}.{n}" for n in range(1, 41)]


@pytest.fixture
def job(redis_client):
    fanout_state.create(JOB, 7, "Forty parts", PARTS)
    return JOB


def test_parts_ending_at_once_in_many_threads_see_the_end_exactly_once(job):
    outcomes = ["failed" if n % 10 == 0 else "ok" for n in range(len(PARTS))]

    def end(part: str, outcome: str):
        return fanout_state.tally(job, part, 100, outcome)

    with ThreadPoolExecutor(8) as pool:
        tallies = list(pool.map(end, PARTS, outcomes))
    ends = [t for t in tallies if t.complete]
    assert len(ends) == 1
    (end,) = ends
    assert (end.percent, end.done, end.total, end.failed) == (100, 40, 40, 4)
    assert end.message == "40 of 40 done, 4 failed"


def test_a_part_delivered_twice_counts_once_and_its_first_readable_reason_stays(job):
    fanout_state.tally(job, PARTS[0], 100, "failed", "First reason.")
    again = fanout_state.tally(job, PARTS[0], 100, "failed", "Second reason.")
    assert (again.done, again.failed, again.reason) == (1, 1, "First reason.")
    assert again.percent == pytest.approx(100 / 40)


def test_progress_is_the_mean_of_the_parts_and_never_goes_back(job):
    assert fanout_state.tally(job, PARTS[0], 80).percent == 2
    assert fanout_state.tally(job, PARTS[0], 40).percent == 2  # a part's report never lowers it
    assert fanout_state.tally(job, PARTS[1], 40).percent == 3


def test_a_cancelled_or_unknown_job_counts_nothing(job):
    assert fanout_state.tally(job, "not-a-part", 100, "ok") is None
    assert sorted(fanout_state.cancel(job)) == sorted(PARTS)
    assert fanout_state.tally(job, PARTS[0], 100, "ok") is None
    assert fanout_state.cancel(fanout_state.PREFIX + "nobody") == []
    assert fanout_state.cancel("a-plain-task-id") == []


def test_a_part_knows_its_job_from_its_group_and_nothing_else_does():
    assert fanout_state.job_of(SimpleNamespace(group=JOB)) == JOB
    assert fanout_state.job_of(SimpleNamespace(group="some-other-group")) is None
    assert fanout_state.job_of(SimpleNamespace(group=None)) is None
    assert fanout_state.job_of(SimpleNamespace()) is None


@pytest.mark.parametrize(
    "user_id, title, parts",
    [(0, "T", [1]), ("x", "T", [1]), (1, " ", [1]), (1, None, [1]), (1, "T", [])],
)
def test_a_job_without_a_user_a_title_or_parts_is_refused(user_id, title, parts, redis_client):
    with pytest.raises(ValueError):
        start_fanout(user_id, title, [export_statement.s(n) for n in parts])
    assert redis_client.keys("notifications:fanout:*") == []


@pytest.mark.django_db(transaction=True)
def test_the_demo_starts_twelve_parts_of_one_job_for_the_caller(alice, redis_client):
    client = Client()
    client.force_login(alice)
    response = client.post("/tasks/start/", {"task": "statements"})
    assert response.status_code == 202
    job_id = response.json()["task_id"]
    headers = [json.loads(raw)["headers"] for raw in redis_client.lrange("celery", 0, -1)]
    assert {h["group"] for h in headers} == {job_id}
    assert sorted(h["id"] for h in headers) == sorted(f"{job_id}.{n}" for n in range(1, 13))
    assert {h["task"] for h in headers} == {"tasks.tasks.export_statement"}
    assert redis_client.hget(f"notifications:fanout:{job_id}", "user") == str(alice.pk).encode()


@pytest.mark.parametrize("percent", ["half", None, float("nan"), float("inf")])
def test_a_parts_report_that_is_no_percent_is_logged_and_counts_nothing(job, percent, caplog):
    fanout_state.report_part(job, PARTS[0], percent)
    assert "is not a percent" in caplog.text
    assert fanout_state.tally(job, PARTS[1], 0).percent == 0
