"""Scale-out on real processes: two Daphnes and two workers on one Redis, and a
channel layer sharded over two Redis servers."""

import asyncio
import contextlib
import json
import os
from pathlib import Path

import pytest
import redis
from channels_redis.utils import _consistent_hash

from config.redis_server import RedisServer
from notifications.groups import user_group
from tests.stack import Browserless, Stack, running, wait_for
from tests.tab import Tab

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAPHNES = ("daphne", "daphne2")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two Daphnes and two Celery workers sharing one Redis."""
    # One user opens up to 240 tabs below, beyond the default cap of sockets per user.
    with running(
        tmp_path_factory.mktemp("cluster"),
        "scale-cluster",
        env={"NOTIFICATIONS_MAX_SOCKETS_PER_USER": "300"},
    ) as stack:
        stack.start_daphne("daphne2")
        stack.start_worker("worker2")
        yield stack


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """Two Daphnes and a worker whose channel layer is sharded over two Redis servers."""
    with running(tmp_path_factory.mktemp("sharded"), "scale-sharded", shards=2) as stack:
        # The first users' groups (user.1 to user.7) all hash to the first
        # shard; a few more users reach the second.
        stack.create_users("kim", "leo", "mia", "ned")
        stack.start_daphne("daphne2")
        yield stack


async def open_tabs(stack: Stack, username: str) -> tuple[Browserless, dict[str, Tab]]:
    """A signed-in session and one tab on each Daphne."""
    session = await asyncio.to_thread(Browserless, stack, username)
    tabs = {daphne: Tab(stack, session, daphne) for daphne in DAPHNES}
    for tab in tabs.values():
        await tab.connect()
    return session, tabs


def is_notice(title: str):
    return lambda m: m["type"] == "notification" and m["title"] == title


async def test_tabs_on_either_daphne_get_what_both_workers_publish(cluster: Stack):
    session, tabs = await open_tabs(cluster, "alice")
    task_ids = [await asyncio.to_thread(session.start_task, "quick") for _ in range(6)]
    for tab in tabs.values():
        await tab.until(
            lambda m, tab=tab: set(task_ids) <= {n.get("task_id") for n in tab.received}
        )
        await tab.close()
        done = [m["task_id"] for m in tab.received if m["type"] == "notification"]
        assert sorted(done) == sorted(task_ids)

    def workers_that_ran() -> set[str]:
        return {
            worker
            for worker in ("worker", "worker2")
            for task_id in task_ids
            if f"warm_cache[{task_id}] succeeded" in cluster.log(worker)
        }

    # Redis hands queued tasks to waiting workers in turn, so both took some.
    assert wait_for(lambda: workers_that_ran() == {"worker", "worker2"}, 10, "both workers")


async def test_management_command_reaches_tabs_on_both_daphnes(cluster: Stack):
    _, tabs = await open_tabs(cluster, "bob")
    await asyncio.to_thread(cluster.manage, "notify", "Both Daphnes", "--user", "bob")
    for tab in tabs.values():
        await tab.until(is_notice("Both Daphnes"))
        await tab.close()


async def test_marking_read_on_one_daphne_updates_the_tab_on_the_other(cluster: Stack):
    _, tabs = await open_tabs(cluster, "carol")
    await asyncio.to_thread(cluster.manage, "notify", "Read me", "--user", "carol")
    notice = (await tabs["daphne"].until(is_notice("Read me")))[-1]
    await tabs["daphne"].ws.send(json.dumps({"type": "read", "ids": [notice["id"]]}))
    receipt = (await tabs["daphne2"].until(lambda m: m["type"] == "read"))[-1]
    assert receipt == {"type": "read", "ids": [notice["id"]], "unread": 0}
    for tab in tabs.values():
        await tab.close()


def connections_on(port: int, pid: int) -> int:
    """Established TCP connections to `port` that process `pid` holds (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port, state, inode = int(fields[1].rsplit(":", 1)[1], 16), fields[3], fields[9]
            count += local_port == port and state == "01" and inode in inodes
    return count


async def test_workers_behind_one_socket_share_the_tabs_and_all_get_their_notices(
    cluster: Stack,
):
    cluster.start_daphne("pair", workers=2)
    pid = cluster.processes["pair"].pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert len(children) == 2
    session = await asyncio.to_thread(Browserless, cluster, "dave", "pair")
    port = cluster.ports["pair"]
    tabs: list[Tab] = []
    # Both processes accept from the socket. One that wakes first takes every
    # connection already queued (Twisted accepts up to 100 at once), so tabs
    # open in waves until each process holds some.
    while not all(connections_on(port, int(pid)) for pid in children):
        assert len(tabs) < 240, "one worker took every connection"
        wave = [Tab(cluster, session, "pair") for _ in range(8)]
        await asyncio.gather(*(tab.connect() for tab in wave))
        tabs += wave
    await asyncio.to_thread(cluster.manage, "notify", "Every tab", "--user", "dave")
    for tab in tabs:
        await tab.until(is_notice("Every tab"))
        await tab.close()


async def test_users_on_different_shards_each_get_their_notices(sharded: Stack):
    shard_of = {_consistent_hash(user_group(pk), 2): name for name, pk in sharded.user_ids.items()}
    first, second = shard_of[0], shard_of[1]
    sessions, tabs = {}, {}
    for name, daphne in ((first, "daphne"), (second, "daphne2")):
        sessions[name] = await asyncio.to_thread(Browserless, sharded, name, daphne)
        tabs[name] = Tab(sharded, sessions[name], daphne)
        await tabs[name].connect()

    # Each user's group lives on its own Redis server.
    for shard, name in enumerate((first, second)):
        server = redis.Redis.from_url(sharded.redis_servers[shard].url)
        assert server.exists(f"asgi:group:{user_group(sharded.user_ids[name])}")
        server.close()

    await asyncio.to_thread(sharded.manage, "notify", "Sharded", "--user", first, "--user", second)
    for name in (first, second):
        await tabs[name].until(is_notice("Sharded"))
        task_id = await asyncio.to_thread(sessions[name].start_task, "quick")
        await tabs[name].until(lambda m, t=task_id: m.get("task_id") == t)
        await tabs[name].close()
        titles = [m["title"] for m in tabs[name].received if m["type"] == "notification"]
        assert titles == ["Sharded", "Cache warm-up finished"]


@pytest.fixture
def three_servers(tmp_path):
    servers = [RedisServer(tmp_path / f"redis-{n}").start() for n in range(3)]
    yield servers
    for server in servers:
        server.stop()


async def test_a_new_shard_list_costs_in_flight_messages_but_no_notification(
    tmp_path, three_servers: list[RedisServer]
):
    """A rolling restart from two shards to three: a notice published into the
    old layout after the tab moved to the new one misses it live and is caught
    up from the database, so the tab still gets every notice exactly once."""
    old, new = three_servers[:2], three_servers
    urls = {"old": ",".join(s.url for s in old), "new": ",".join(s.url for s in new)}
    with running(
        tmp_path / "stack",
        "scale-reshard",
        redis_url=old[0].url,
        env={"CHANNEL_REDIS_URLS": urls["old"]},
    ) as stack:
        # A user whose group lives on another server in the new layout.
        name, pk = next(
            (name, pk)
            for name, pk in stack.user_ids.items()
            if old[_consistent_hash(user_group(pk), 2)]
            is not new[_consistent_hash(user_group(pk), 3)]
        )
        session = await asyncio.to_thread(Browserless, stack, name)
        tab = Tab(stack, session)
        await tab.connect()

        def publish(title: str, layout: str) -> None:
            """`manage.py notify`, from a publisher process on that shard list."""
            stack.env["CHANNEL_REDIS_URLS"] = urls[layout]
            stack.manage("notify", title, "--user", name)

        await asyncio.to_thread(publish, "Before", "old")
        await tab.until(is_notice("Before"))

        # Daphne restarts on the new list; the tab is away meanwhile.
        await asyncio.to_thread(stack.stop_process, "daphne")
        await tab.wait_closed()
        await asyncio.to_thread(publish, "While away", "old")
        stack.env["CHANNEL_REDIS_URLS"] = urls["new"]
        await asyncio.to_thread(stack.start_daphne)
        await tab.reconnect()
        await tab.expect(is_notice("While away"))  # replayed from the database
        group_key = f"asgi:group:{user_group(pk)}"
        new_home = new[_consistent_hash(user_group(pk), 3)]
        assert redis.Redis.from_url(new_home.url).exists(group_key)

        # A publisher not restarted yet sends into the old layout: nobody there.
        await asyncio.to_thread(publish, "Into the old layout", "old")
        # The worker restarts on the new list; its notice arrives live, and the
        # socket sees the one before it missed, and catches up first.
        await asyncio.to_thread(stack.stop_process, "worker")
        stack.env["CHANNEL_REDIS_URLS"] = urls["new"]
        await asyncio.to_thread(stack.start_worker)
        task_id = await asyncio.to_thread(session.start_task, "quick")
        await tab.until(lambda m: m.get("task_id") == task_id)
        await tab.close()

        saved = await asyncio.to_thread(stack.notifications, name)
        assert [n["title"] for n in saved] == [
            "Before",
            "While away",
            "Into the old layout",
            "Cache warm-up finished",
        ]
        assert tab.notification_ids == [n["id"] for n in saved]
