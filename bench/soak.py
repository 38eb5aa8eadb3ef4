"""Soak: hundreds of tabs held for minutes while notices flow and tabs drop at random.

    python -m bench.soak --clients 300 --minutes 3

Everything runs on a private Redis, a fresh SQLite database and one Daphne, so
nothing else on the machine is touched. Publisher processes call notify() at a
steady rate, as Celery workers do. Client processes hold the tabs; each tab
drops its socket now and then (closing it, or cutting TCP without a close) and
comes back with ?after=<newest id seen>, dropping duplicates by id, as the
browser client does.

At the end every tab must have seen each notification its user got since it
first connected, exactly once after its dedupe, and nothing else. The figures
include Daphne's memory (RSS) while the tabs are connected. Exit status 0 when
nothing was missing or foreign, 1 otherwise.
"""

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from config.redis_server import RedisServer, free_port

BASE_DIR = Path(__file__).resolve().parent.parent
# Seconds a tab waits before coming back after a drop (uniform), as the
# browser's backoff would after one failure.
RECONNECT_DELAY = (0.1, 2.0)
# Seconds between samples of Daphne's memory.
SAMPLE_EVERY = 5


# --- Tabs (client processes) --------------------------------------------------


@dataclass
class TabResult:
    user_id: int
    first_after: int | None = None  # last_id of the first hello: where the tab started
    ids: list[int] = field(default_factory=list)  # notification ids kept, after dedupe
    duplicates: int = 0  # notifications dropped because the id was already seen
    drops: int = 0  # sockets the tab dropped on purpose
    truncated: int = 0  # replays that said more notices were left out
    resumed_after: list[int] = field(default_factory=list)  # ?after= of each reconnection
    failures: dict[str, int] = field(
        default_factory=dict
    )  # sockets refused or closed by the server


class Control:
    """What the orchestrator has told a client process: stop dropping, then finish."""

    def __init__(self) -> None:
        self.quiet = False
        # user id -> the newest notification id the database holds for them.
        self.targets: dict[int, int] | None = None

    def done_with(self, tab: "Tab") -> bool:
        if self.targets is None:
            return False
        return (tab.last_id or 0) >= self.targets.get(tab.result.user_id, 0)


class Tab:
    def __init__(self, user_id: int, session_key: str, rng: random.Random) -> None:
        self.result = TabResult(user_id)
        self.cookie = f"sessionid={session_key}"
        self.rng = rng
        self.seen: set[int] = set()
        self.last_id: int | None = None

    def handle(self, message: dict) -> None:
        kind = message["type"]
        if kind == "hello" and self.last_id is None:
            self.last_id = self.result.first_after = message["last_id"]
        elif kind == "notification":
            if message["id"] in self.seen:
                self.result.duplicates += 1
                return
            self.seen.add(message["id"])
            self.result.ids.append(message["id"])
            self.last_id = max(self.last_id or 0, message["id"])
        elif kind == "truncated":
            self.result.truncated += 1

    async def run(self, url: str, origin: str, mean_drop: float, control: Control) -> None:
        """Hold a socket, dropping it now and then, until `control` says the tab is done."""
        import websockets

        while not control.done_with(self):
            query = ""
            if self.last_id is not None:
                query = f"?after={self.last_id}"
                self.result.resumed_after.append(self.last_id)
            try:
                async with websockets.connect(
                    url + query,
                    origin=origin,
                    additional_headers={"Cookie": self.cookie},
                    # Unbounded like a browser's: with a bounded queue a tab
                    # that stops reading never sees the server's close frame.
                    max_queue=None,
                    ping_interval=None,  # Daphne pings the tabs itself
                    open_timeout=30,
                    close_timeout=5,
                ) as ws:
                    await self.hold(ws, mean_drop, control)
            except websockets.ConnectionClosed as closed:
                self.fail(f"closed {closed.rcvd.code if closed.rcvd else 'without a code'}")
            except websockets.InvalidStatus as refused:
                # Daphne answers 403 to a handshake its application did not
                # accept in time (websocket_connect_timeout), e.g. when overloaded.
                self.fail(f"handshake HTTP {refused.response.status_code}")
            except (websockets.InvalidHandshake, OSError, TimeoutError) as error:
                self.fail(type(error).__name__)
            if not control.done_with(self):
                await asyncio.sleep(self.rng.uniform(*RECONNECT_DELAY))

    async def hold(self, ws, mean_drop: float, control: Control) -> None:
        drop_at = time.monotonic() + self.rng.expovariate(1 / mean_drop)
        while not control.done_with(self):
            if not control.quiet and time.monotonic() >= drop_at:
                self.result.drops += 1
                if self.rng.random() < 0.5:
                    ws.transport.abort()  # as a lost network would: no close frame
                else:
                    await ws.close()
                return
            # Wake at least once a second to see whether the run is over.
            wait = 1.0 if control.quiet else min(1.0, max(0.0, drop_at - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                self.handle(json.loads(await asyncio.wait_for(ws.recv(), wait)))

    def fail(self, reason: str) -> None:
        self.result.failures[reason] = self.result.failures.get(reason, 0) + 1


async def hold_tabs(
    url: str, origin: str, tabs: list[tuple[int, str]], mean_drop: float, seed: int, pipe
) -> None:
    control = Control()
    rng = random.Random(seed)
    held = [Tab(user_id, key, random.Random(rng.random())) for user_id, key in tabs]
    loop = asyncio.get_running_loop()

    async def start(tab: Tab) -> None:
        # Spread the first connections over a few seconds, as page loads would be.
        await asyncio.sleep(rng.uniform(0, 5))
        await tab.run(url, origin, mean_drop, control)

    runs = [asyncio.create_task(start(tab)) for tab in held]
    while any(tab.last_id is None for tab in held):
        await asyncio.sleep(0.2)
    pipe.send("connected")
    if await loop.run_in_executor(None, pipe.recv) != "quiet":
        raise RuntimeError("expected 'quiet'")
    control.quiet = True
    control.targets = await loop.run_in_executor(None, pipe.recv)
    await asyncio.wait(runs, timeout=120)
    for run, tab in zip(runs, held, strict=True):
        if not run.done():
            run.cancel()
            tab.fail("still behind at the end")
        elif run.exception():
            tab.fail(f"crashed: {run.exception()!r}")
    pipe.send([asdict(tab.result) for tab in held])


def client_process(*args) -> None:
    # Hundreds of sockets per process: lift the soft limit on open files.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(hold_tabs(*args))


# --- Publishers ---------------------------------------------------------------


def publisher_process(user_ids: list[int], rate: float, seconds: float, seed: int) -> None:
    """Call notify() `rate` times a second for `seconds`, as a Celery worker would."""
    import django

    django.setup()
    from notifications import notify

    rng = random.Random(seed)
    began = time.monotonic()
    sent = 0
    while time.monotonic() - began < seconds:
        notify(rng.choice(user_ids), f"Soak {seed}.{sent}", data={"seq": sent})
        sent += 1
        time.sleep(max(0.0, began + sent / rate - time.monotonic()))


# --- The orchestrator -----------------------------------------------------------


def prepare(users: int, clients: int) -> list[tuple[int, str]]:
    """Migrate, create the users and one signed-in session per tab: (user id, session key)."""
    import django

    django.setup()
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    User = get_user_model()
    # Unusable passwords: the tabs sign in by session, so no slow hashing is needed.
    User.objects.bulk_create(
        User(username=f"soak{i}", password=make_password(None)) for i in range(users)
    )
    people = list(User.objects.order_by("pk"))
    tabs = []
    for i in range(clients):
        user = people[i % users]
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        tabs.append((user.pk, session.session_key))
    return tabs


def saved_ids() -> dict[int, list[int]]:
    """Every saved notification id, by recipient, oldest first."""
    from notifications.models import Notification

    by_user: dict[int, list[int]] = defaultdict(list)
    for pk, user_id in Notification.objects.order_by("pk").values_list("pk", "recipient_id"):
        by_user[user_id].append(pk)
    return by_user


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def wait_http(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Daphne did not answer at {url}") from None
            time.sleep(0.1)


def receive(pipe: Connection, timeout: float, what: str):
    if not pipe.poll(timeout):
        raise TimeoutError(f"a client process did not report {what} within {timeout}s")
    return pipe.recv()


def soak(args: argparse.Namespace, workdir: Path) -> int:
    redis = RedisServer(workdir / "redis").start()
    os.environ.pop("CHANNEL_REDIS_URLS", None)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}",
        REDIS_URL=redis.url,
        CELERY_BROKER_URL=redis.url,
        LOG_LEVEL="WARNING",
    )
    children: list[multiprocessing.Process] = []
    daphne = None
    try:
        tabs = prepare(args.users, args.clients)
        port = free_port()
        with open(workdir / "daphne.log", "wb") as log:
            daphne = subprocess.Popen(
                [sys.executable, "-m", "config.serve", "-b", "127.0.0.1", "-p", str(port)],
                cwd=BASE_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        origin = f"http://127.0.0.1:{port}"
        wait_http(origin + "/healthz", daphne)

        spawn = multiprocessing.get_context("spawn")
        pipes = []
        for p in range(args.client_processes):
            parent, child = spawn.Pipe()
            share = tabs[p :: args.client_processes]
            url = f"ws://127.0.0.1:{port}/ws/notifications/"
            process = spawn.Process(
                target=client_process,
                args=(url, origin, share, args.mean_drop, args.seed + p, child),
            )
            children.append(process)
            pipes.append(parent)
            process.start()
        for pipe in pipes:
            receive(pipe, 120, "its tabs connected")
        print(f"{args.clients} tabs connected; publishing for {args.minutes} min", flush=True)

        began = time.monotonic()
        samples = [(0.0, rss_mib(daphne.pid))]
        user_ids = sorted({user_id for user_id, _ in tabs})
        publishers = [
            spawn.Process(
                target=publisher_process,
                args=(
                    user_ids,
                    args.rate / args.publishers,
                    args.minutes * 60,
                    args.seed + 100 + p,
                ),
            )
            for p in range(args.publishers)
        ]
        children += publishers
        for publisher in publishers:
            publisher.start()
        while any(publisher.is_alive() for publisher in publishers):
            time.sleep(SAMPLE_EVERY)
            samples.append((time.monotonic() - began, rss_mib(daphne.pid)))
            if len(samples) % 6 == 0:
                print(f"  {samples[-1][0]:5.0f} s  Daphne RSS {samples[-1][1]:.1f} MiB", flush=True)
        if any(publisher.exitcode for publisher in publishers):
            raise RuntimeError("a publisher failed")

        for pipe in pipes:
            pipe.send("quiet")
        saved = saved_ids()
        targets = {user_id: ids[-1] for user_id, ids in saved.items()}
        for pipe in pipes:
            pipe.send(targets)
        results = [r for pipe in pipes for r in receive(pipe, 150, "its results")]
        rss_after = rss_mib(daphne.pid)
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
            child.join(10)
        if daphne:
            daphne.terminate()
            daphne.wait(15)
        redis.stop()
    return report(args, saved, results, samples, rss_after)


def report(args, saved: dict[int, list[int]], results: list[dict], samples, rss_after) -> int:
    expected_total = received = duplicates = missing = foreign = out_of_order = 0
    resumed_past = 0
    drops = truncated = 0
    failures: dict[str, int] = defaultdict(int)
    for tab in results:
        expected = [i for i in saved.get(tab["user_id"], []) if i > (tab["first_after"] or 0)]
        got = tab["ids"]
        expected_total += len(expected)
        received += len(got)
        duplicates += tab["duplicates"]
        lost = set(expected) - set(got)
        missing += len(lost)
        # Lost because the tab resumed after a newer id while this older one
        # was still on its way (it arrived out of order, or not at all).
        resumed_past += sum(1 for i in lost if any(a >= i for a in tab["resumed_after"]))
        foreign += len(set(got) - set(expected))
        out_of_order += sum(1 for a, b in zip(got, got[1:], strict=False) if b < a)
        drops += tab["drops"]
        truncated += tab["truncated"]
        for reason, count in tab["failures"].items():
            failures[reason] += count
    middle = samples[len(samples) // 2]
    print(
        f"""
Soak: {args.clients} tabs of {args.users} users in {args.client_processes} processes,
      {args.minutes} min of {args.rate}/s notices from {args.publishers} publishers,
      each tab dropping its socket every {args.mean_drop} s on average
notifications saved      {sum(len(ids) for ids in saved.values())}
deliveries expected      {expected_total}  (each tab: its user's notices since it connected)
received (after dedupe)  {received}
missing                  {missing}  ({resumed_past} of them skipped by a resume past them)
foreign                  {foreign}
duplicates dropped       {duplicates}
arrived out of id order  {out_of_order}
drops (half without a close frame)  {drops}
failed or closed sockets {dict(failures) or 0}
truncated replays        {truncated}
Daphne RSS, MiB          {samples[0][1]:.1f} connected, {middle[1]:.1f} at {middle[0]:.0f} s, \
{samples[-1][1]:.1f} at {samples[-1][0]:.0f} s (end), max {max(s[1] for s in samples):.1f}; \
{rss_after:.1f} after the tabs left"""
    )
    return 0 if missing == 0 and foreign == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=300, help="tabs held open")
    parser.add_argument("--users", type=int, default=100, help="the tabs are spread over them")
    parser.add_argument("--minutes", type=float, default=3)
    parser.add_argument("--rate", type=float, default=20, help="notifications a second, in all")
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--client-processes", type=int, default=3)
    parser.add_argument("--mean-drop", type=float, default=20, help="seconds between a tab's drops")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the work directory and logs")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    try:
        return soak(args, workdir)
    finally:
        if args.keep:
            print(f"logs and database kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
