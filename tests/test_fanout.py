"""A fan-out job on the real stack: one bar rising to 100 over many parts on a real
worker, exactly one final notice, none per part, and nothing for anyone else."""

import asyncio
import json

import pytest

from tests.stack import Browserless, Stack
from tests.tab import Tab
from tests.test_cancel import for_task, post_cancel, quiet_period
from tests.test_progress_resume import progress_until_barrier

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TITLE = "Export 12 monthly statements"


def start_in_shell(stack: Stack, code: str) -> str:
    """Start a job from a process of the stack's own (its Redis and broker); its id."""
    return stack.shell_json(code)


async def job_until_notice(tab: Tab, job_id: str) -> tuple[list[dict], dict]:
    """The job's progress messages up to its notice, and that notice."""
    seen = await tab.until(for_task(job_id, "notification"), timeout=60)
    return [m for m in seen if for_task(job_id, "progress")(m)], seen[-1]


async def assert_one_notice(stack: Stack, tab: Tab, username: str, notice: dict) -> None:
    """Nothing more arrives, and the database holds that notice alone: no part's own."""
    later = await quiet_period(tab)
    assert [m for m in later if m["type"] == "notification"] == []
    rows = stack.notifications(username)
    assert [(n["id"], n["task_id"]) for n in rows] == [(notice["id"], notice["task_id"])]


async def test_a_fanout_job_shows_one_bar_up_to_100_and_ends_in_one_success(stack):
    await asyncio.to_thread(stack.create_users, "fanout_gwen", "fanout_hal")
    gwen = await asyncio.to_thread(Browserless, stack, "fanout_gwen")
    hal = await asyncio.to_thread(Browserless, stack, "fanout_hal")
    async with Tab(stack, gwen) as tab, Tab(stack, hal) as hals:
        job_id = await asyncio.to_thread(gwen.start_task, "statements")
        bars, notice = await job_until_notice(tab, job_id)

        percents = [m["percent"] for m in bars]
        assert 100 in percents
        assert len(set(percents)) >= 12  # it rose part by part, not in one jump
        assert all(0 <= p <= 100 for p in percents)
        # Parts end on several worker processes, each sending its own report, so
        # two reports can reach the tab in either order (the widget ignores any
        # that comes after the notice); the last part's is among them.
        assert "12 of 12 done" in [m["message"] for m in bars]
        # Only the job's id ever reached the tab: no part has a bar or a notice.
        assert {m.get("task_id") for m in tab.received if m["type"] != "hello"} == {job_id}
        assert (notice["level"], notice["title"]) == ("success", f"{TITLE} done")
        await assert_one_notice(stack, tab, "fanout_gwen", notice)

        # The bar is forgotten: a tab opened now shows none, and hal never saw one.
        async with Tab(stack, gwen) as reopened:
            assert await progress_until_barrier(stack, reopened, "fanout_gwen") == []
        assert await progress_until_barrier(stack, hals, "fanout_hal") == []
        assert stack.notifications("fanout_hal")[-1]["title"] == "Barrier"
        assert len(stack.notifications("fanout_hal")) == 1


async def test_two_failed_parts_of_twelve_end_in_one_error_with_the_first_reason(stack):
    await asyncio.to_thread(stack.create_users, "fanout_ida")
    ida = await asyncio.to_thread(Browserless, stack, "fanout_ida")
    async with Tab(stack, ida) as tab:
        code = (
            "from tasks.tasks import export_statements\n"
            f"result = export_statements({stack.user_ids['fanout_ida']}, failing=[3, 8])"
        )
        job_id = await asyncio.to_thread(start_in_shell, stack, code)
        bars, notice = await job_until_notice(tab, job_id)

        assert 100 in [m["percent"] for m in bars]
        assert (notice["level"], notice["title"]) == ("error", f"{TITLE} failed")
        first = notice["body"].removeprefix("2 of 12 failed: ")
        assert first != notice["body"]
        assert first in {
            f"The {month} statement could not be exported: its ledger is locked."
            for month in ("March", "August")
        }
        await assert_one_notice(stack, tab, "fanout_ida", notice)


async def test_cancelling_a_fanout_job_revokes_its_parts_and_notifies_once(stack):
    await asyncio.to_thread(stack.create_users, "fanout_jan", "fanout_kim")
    jan = await asyncio.to_thread(Browserless, stack, "fanout_jan")
    kim = await asyncio.to_thread(Browserless, stack, "fanout_kim")
    async with Tab(stack, jan) as tab:
        code = (
            "from notifications.celery import start_fanout\n"
            "from tasks.tasks import export_statement\n"
            f"parts = [export_statement.s(m, step_seconds=2) for m in range(1, 13)]\n"
            f"result = start_fanout({stack.user_ids['fanout_jan']}, 'Slow export', parts)"
        )
        job_id = await asyncio.to_thread(start_in_shell, stack, code)
        await tab.until(for_task(job_id, "progress"))
        assert await asyncio.to_thread(post_cancel, kim, job_id) == 404
        assert await asyncio.to_thread(post_cancel, jan, job_id) == 202

        notice = await tab.expect(for_task(job_id, "notification"), timeout=10)
        assert (notice["level"], notice["title"]) == ("warning", "Slow export cancelled")
        later = await quiet_period(tab)
        assert len([m for m in later if for_task(job_id, "progress")(m)]) <= 1
        await assert_one_notice(stack, tab, "fanout_jan", notice)
    # The running parts were terminated; the queued ones are dropped, never run.
    assert f"Terminating {job_id}.1 (15)" in stack.log("worker")
    assert f"export_statement[{job_id}.12] succeeded" not in stack.log("worker")


def test_a_job_needs_a_user_a_title_and_single_tasks(stack):
    code = (
        "from celery import group\n"
        "from notifications.celery import start_fanout\n"
        "from tasks.tasks import export_statement\n"
        "result = []\n"
        "for args in [(0, 'T', [export_statement.s(1)]), (1, ' ', [export_statement.s(1)]),\n"
        "             (1, 'T', []), (1, 'T', [group(export_statement.s(1))]), (1, 'T', ['x'])]:\n"
        "    try:\n"
        "        start_fanout(*args)\n"
        "        result.append('started')\n"
        "    except ValueError as exc:\n"
        "        result.append(str(exc))\n"
    )
    refused = stack.shell_json(code)
    assert "started" not in refused, json.dumps(refused)


async def test_parts_with_a_user_id_of_their_own_still_give_one_bar_and_one_notice(stack):
    # long_job takes user_id and reports progress: as a part, both go to the job.
    await asyncio.to_thread(stack.create_users, "fanout_lea")
    lea = await asyncio.to_thread(Browserless, stack, "fanout_lea")
    async with Tab(stack, lea) as tab:
        user_id = stack.user_ids["fanout_lea"]
        code = (
            "from notifications.celery import start_fanout\n"
            "from tasks.tasks import long_job\n"
            f"parts = [long_job.s(user_id={user_id}, seconds=2) for _ in range(3)]\n"
            f"result = start_fanout({user_id}, 'Three long jobs', parts)"
        )
        job_id = await asyncio.to_thread(start_in_shell, stack, code)
        bars, notice = await job_until_notice(tab, job_id)
        assert (notice["level"], notice["title"]) == ("success", "Three long jobs done")
        assert {m.get("task_id") for m in tab.received if m["type"] != "hello"} == {job_id}
        # Halfway reports of the parts (50%) show between the steps their ends make.
        assert {m["percent"] for m in bars} - {0, 33.3, 66.7, 100}
        await assert_one_notice(stack, tab, "fanout_lea", notice)
    # A part is cancelled only with its job: on its own it is no task of hers.
    assert await asyncio.to_thread(post_cancel, lea, f"{job_id}.1") == 404


def shown_by_a_tab(bars: list[dict], shown: int = 0) -> list[dict]:
    """The reports a tab shows, by the widget's rule: one numbered no higher than
    the last shown (`shown`) is ignored."""
    kept = []
    for bar in bars:
        seq = bar.get("seq", 0)  # 0 or none: unnumbered, always shown
        if not seq or seq > shown:
            kept.append(bar)
            shown = seq or shown
    return kept


async def test_a_fanout_bar_never_falls_on_two_workers_nor_across_a_reconnect(stack):
    # 24 quick parts on four pool processes of two workers report side by side;
    # their tallies reach the tab in any order, and the numbers put them back.
    await asyncio.to_thread(stack.create_users, "fanout_mo")
    mo = await asyncio.to_thread(Browserless, stack, "fanout_mo")
    user_id = stack.user_ids["fanout_mo"]
    code = (
        "from notifications.celery import start_fanout\n"
        "from tasks.tasks import export_statement\n"
        "parts = [export_statement.s(m % 12 + 1, step_seconds=0.05) for m in range(24)]\n"
        f"result = start_fanout({user_id}, 'Export 24 statements', parts)"
    )
    await asyncio.to_thread(stack.start_worker, "worker-b")
    try:
        async with Tab(stack, mo) as tab:
            for run in range(6):
                job_id = await asyncio.to_thread(start_in_shell, stack, code)
                ended_away = False
                if run % 2:  # a reconnect mid-job: the snapshot after hello is numbered too
                    early = await tab.until(for_task(job_id, "progress"))
                    await tab.close()
                    hello = await tab.reconnect()
                    rest, notice = await job_until_notice(tab, job_id)
                    bars = [m for m in early if for_task(job_id, "progress")(m)] + rest
                    ended_away = hello["last_id"] >= notice["id"]  # replayed, not live
                else:
                    bars, notice = await job_until_notice(tab, job_id)
                assert notice["title"] == "Export 24 statements done"
                shown = shown_by_a_tab(bars)
                percents = [bar["percent"] for bar in shown]
                assert percents == sorted(percents), (run, percents)
                assert all(bar.get("seq", 0) > 0 for bar in bars)
                # The last tally (every part ended) is sent before the notice, and
                # shown, unless the job ended while the tab was away.
                if not ended_away:
                    assert (shown[-1]["percent"], shown[-1]["message"]) == (100, "24 of 24 done")
        workers = {"worker", "worker-b"}
        assert all("export_statement" in stack.log(name) for name in workers)
    finally:
        stack.stop_process("worker-b")
