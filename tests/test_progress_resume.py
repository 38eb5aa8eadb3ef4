"""On the real stack: a tab that opens mid-task gets the task's bar right after
hello, as last reported, and never once the task has ended or for someone else."""

import asyncio
from datetime import UTC, datetime

import pytest

from tests.stack import Browserless
from tests.tab import Tab

pytestmark = pytest.mark.e2e

LONG_JOB = "tasks.tasks.long_job"


def reported_before(message: dict, moment: datetime) -> bool:
    """A report made before `moment` can only reach a socket opened after it from
    the kept state: the live push went out before the socket joined its group."""
    return datetime.fromisoformat(message["at"]) < moment


async def opened_mid_task(stack, session: Browserless, task_id: str, after: int | None) -> dict:
    """A new tab's first message after hello, checked to be the kept progress."""
    tab = Tab(stack, session)
    tab.last_id = after
    opened = datetime.now(UTC)
    async with tab:
        first = await tab.next()
    assert (first["type"], first["task_id"]) == ("progress", task_id)
    assert reported_before(first, opened)
    return first


async def progress_until_barrier(stack, tab: Tab, username: str) -> list[dict]:
    """Every progress message `tab` gets before a notice sent to `username` now."""
    await asyncio.to_thread(stack.manage, "notify", "Barrier", "--user", username)
    messages = await tab.until(lambda m: m["type"] == "notification" and m["title"] == "Barrier")
    return [m for m in messages if m["type"] == "progress"]


async def test_a_tab_opened_mid_task_shows_its_bar_at_once_and_not_after_it_ended(stack):
    erin = await asyncio.to_thread(Browserless, stack, "erin")
    frank = await asyncio.to_thread(Browserless, stack, "frank")
    async with Tab(stack, erin) as first_tab, Tab(stack, frank) as franks:
        task_id = await asyncio.to_thread(
            stack.send_task, LONG_JOB, user_id=stack.user_ids["erin"], seconds=6
        )
        seen = (await first_tab.until(lambda m: m["type"] == "progress" and m["percent"] > 0))[-1]

        fresh = await opened_mid_task(stack, erin, task_id, after=None)
        resumed = await opened_mid_task(stack, erin, task_id, after=first_tab.last_id)
        for kept in (fresh, resumed):
            assert kept["percent"] >= seen["percent"] > 0
            assert kept["message"] == "Working"

        await first_tab.until(lambda m: m["type"] == "notification" and m["task_id"] == task_id)
        async with Tab(stack, erin) as after_end:
            assert await progress_until_barrier(stack, after_end, "erin") == []
        async with Tab(stack, frank) as franks_new:
            assert await progress_until_barrier(stack, franks_new, "frank") == []
        assert [m for m in franks.received if m["type"] == "progress"] == []
