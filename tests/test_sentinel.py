"""Redis that fails over: the channel layer, the broker and the app's Redis behind Sentinel.

A real primary, a replica and three sentinels; the primary is SIGKILLed while
tabs are open and a publisher process keeps notifying. Nothing is lost, the
tabs are back within the README's bound, and the same Daphne, worker and
publisher go on working on the promoted replica.
"""

import asyncio
import json
import sys
import time
import urllib.error
import urllib.request

import pytest
import websockets

from tests.sentinel_cluster import MASTER, SentinelCluster
from tests.stack import Browserless, Stack, running, wait_for
from tests.tab import Tab

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The README's bound: seconds from the primary's death until every tab
# receives live notices again.
BACK_WITHIN = 10
TABS = 3

# A publisher process that notifies alice every tenth of a second (a steady
# rate, not a wait for anything) until the stop file appears.
PUBLISHER = """
import pathlib, time
from django.contrib.auth.models import User
from notifications import notify
stop = pathlib.Path({stop!r})
alice = User.objects.get(username="alice")
n = 0
while not stop.exists():
    n += 1
    notify(alice, f"steady {{n}}")
    print("published", n, flush=True)
    time.sleep(0.1)
"""


@pytest.fixture
def cluster(tmp_path):
    cluster = SentinelCluster(tmp_path / "sentinel").start()
    yield cluster
    cluster.stop()


@pytest.fixture
def stack(tmp_path, cluster):
    env = {"REDIS_SENTINELS": cluster.addresses, "REDIS_SENTINEL_MASTER": MASTER}
    with running(tmp_path / "stack", "sentinel", env=env) as stack:
        yield stack


class Follower:
    """Reads a tab until cancelled, reconnecting (with the tab's backoff) whenever
    the server closes it; notes when each message arrived and on which socket."""

    def __init__(self, tab: Tab, hello: dict) -> None:
        self.tab = tab
        self.hello = hello  # of the socket open now
        self.reconnected: list[float] = []  # monotonic times of each reconnection's hello
        self.close_codes: list[int | None] = []  # of each socket the server closed
        # (monotonic time, message, the hello's last_id of the socket it came on)
        self.arrivals: list[tuple[float, dict, int]] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                message = await self.tab.next(timeout=3600)
            except websockets.ConnectionClosed as closed:
                self.close_codes.append(closed.rcvd.code if closed.rcvd else None)
                self.hello = await self.tab.reconnect(attempts=100)
                self.reconnected.append(time.monotonic())
                continue
            self.arrivals.append((time.monotonic(), message, self.hello["last_id"]))

    def pushed_live(self, newer_than: int) -> float | None:
        """When the first notification newer than `newer_than` arrived pushed (not
        replayed: newer than its socket's hello), or None before one has."""
        for at, message, base in self.arrivals:
            if message["type"] == "notification" and message["id"] > max(newer_than, base):
                return at
        return None

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.tab.close()


def healthz(stack: Stack) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(stack.base_url + "/healthz", timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


async def test_primary_killed_mid_stream_nothing_lost_and_all_resumes(
    stack: Stack, cluster: SentinelCluster
):
    alice = await asyncio.to_thread(Browserless, stack, "alice")
    followers = []
    for _ in range(TABS):
        tab = Tab(stack, alice)
        followers.append(Follower(tab, await tab.connect()))
    stop = stack.workdir / "stop-publishing"
    stack._spawn(
        "publisher",
        [sys.executable, "manage.py", "shell", "-c", PUBLISHER.format(stop=str(stop))],
    )
    # Notices flow to every tab before the kill.
    await asyncio.to_thread(
        wait_for,
        lambda: all(f.pushed_live(0) for f in followers),
        30,
        "every tab to get a live notice",
    )

    killed_at = time.monotonic()
    cluster.kill_primary()
    await asyncio.to_thread(cluster.wait_for_failover)
    promoted_after = time.monotonic() - killed_at
    # Whatever was saved up to now may have been published into the dead primary.
    before = max(n["id"] for n in await asyncio.to_thread(stack.notifications, "alice"))

    # The same publisher's new notices reach every tab live again.
    back = await asyncio.to_thread(
        wait_for,
        lambda: (
            all(f.pushed_live(before) for f in followers)
            and [f.pushed_live(before) for f in followers]
        ),
        BACK_WITHIN + 20,
        "live notices on every tab after the failover",
    )
    back_after = max(back) - killed_at

    # A task started now, through the same Daphne and worker, runs and notifies.
    task_started = time.monotonic()
    task_id = await asyncio.to_thread(alice.start_task, "quick")
    await asyncio.to_thread(
        wait_for,
        lambda: all(any(m.get("task_id") == task_id for _, m, _ in f.arrivals) for f in followers),
        30,
        "the task's notice on every tab",
    )
    task_after = time.monotonic() - task_started
    assert await asyncio.to_thread(healthz, stack) == (
        200,
        {
            "status": "ok",
            "failing": [],
            "checks": {"database": "ok", "redis": "ok"},
        },
    )

    stop.touch()
    stack.processes["publisher"].wait(30)
    assert stack.processes["publisher"].returncode == 0, stack.log("publisher")
    saved = [n["id"] for n in await asyncio.to_thread(stack.notifications, "alice")]
    await asyncio.to_thread(
        wait_for,
        lambda: all(set(f.tab.notification_ids) >= set(saved) for f in followers),
        30,
        "every saved notice on every tab",
    )
    for follower in followers:
        await follower.stop()
        # Every saved notice exactly once, in order, across the failover.
        assert follower.tab.notification_ids == saved
        # A socket the failover broke was closed with "unavailable, retry later".
        assert set(follower.close_codes) <= {4503}
    assert stack.processes["daphne"].poll() is None
    assert stack.processes["worker"].poll() is None
    assert "Traceback" not in stack.log("daphne")
    reconnects = [f.reconnected[0] - killed_at for f in followers if f.reconnected]
    print(
        f"\npromoted after {promoted_after:.1f} s; tabs reconnected after "
        f"{', '.join(f'{r:.1f}' for r in reconnects) or 'none'} s; live again after "
        f"{back_after:.1f} s; a new task notified after {task_after:.1f} s; "
        f"{len(saved)} notices"
    )
    assert back_after <= BACK_WITHIN
