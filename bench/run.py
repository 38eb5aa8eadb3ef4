"""The benchmark, one command: `python -m bench.run` (full) or `--smoke` (CI size).

For each size it starts a private Redis, a temporary database with N users and
sessions, client processes holding N authenticated WebSockets and publisher
processes; then, for our consumer and for the tutorial-style reference, each on
a fresh Daphne serving bench.asgi, it measures connect rate, memory per idle
connection, the publisher's ceiling, latency and loss across publish rates, and
a broadcast to every user. It prints a table and writes JSON (and PNG plots).
"""

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench import clients as clients_module
from bench import publisher as publisher_module
from bench import report
from bench.stack import BASE_DIR, Daphne, RedisServer, bench_env, create_users
from config.postgres_database import DEFAULT_SERVER, PostgresDatabase, answers

monotonic = time.monotonic
PATHS = {"ours": "/ws/notifications/", "uvicorn": "/ws/notifications/", "tutorial": "/ws/tutorial/"}
# "uvicorn" is ours on the other tested server (notifications.serve --server uvicorn).
SERVERS = {"ours": "daphne", "uvicorn": "uvicorn"}


def publishing(kind: str) -> str:
    """How the publishers send for `kind`: notify() for ours on either server."""
    return "tutorial" if kind == "tutorial" else "ours"


# The latency target: a rate counts as sustained only with no loss and p99 under it.
P99_TARGET_MS = 50.0

SMOKE = {
    "users": [200],
    "rates": [100, 250],
    "duration": 2.0,
    "ceiling_seconds": 2.0,
    "memory_steps": 2,
    "clients": 2,
    "publishers": 2,
}
FULL = {
    "users": [2000, 5000],
    "rates": [250, 500, 1000, 1500, 2000],
    "duration": 10.0,
    "ceiling_seconds": 5.0,
    "memory_steps": 10,
    "clients": 2,
    "publishers": 3,
}


class Worker:
    """A child process driven over a pipe."""

    def __init__(self, ctx, target, *args) -> None:
        self.pipe, child = ctx.Pipe()
        self.process = ctx.Process(target=target, args=(child, *args), daemon=True)
        self.process.start()

    def send(self, *command) -> None:
        self.pipe.send(command)

    def recv(self, timeout: float = 300):
        if not self.pipe.poll(timeout):
            raise TimeoutError(f"worker {self.process.pid} did not answer in {timeout}s")
        reply = self.pipe.recv()
        if isinstance(reply, dict) and "error" in reply:
            raise RuntimeError(f"worker {self.process.pid}: {reply['error']}")
        return reply

    def call(self, *command, timeout: float = 300):
        self.send(*command)
        return self.recv(timeout)

    def stop(self) -> None:
        try:
            self.pipe.send(("stop",))
            self.process.join(15)
        except (BrokenPipeError, OSError):
            pass
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


def all_call(workers: list[Worker], commands: list[tuple], timeout: float = 300) -> list:
    """Send one command to each worker at once, then collect every reply."""
    for worker, command in zip(workers, commands, strict=True):
        worker.send(*command)
    return [worker.recv(timeout) for worker in workers]


def split(items: list, parts: int) -> list[list]:
    return [items[i::parts] for i in range(parts)]


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def latency_summary(latencies: list[float]) -> dict:
    values = sorted(latencies)
    return {
        "p50_ms": ms(percentile(values, 50)),
        "p90_ms": ms(percentile(values, 90)),
        "p99_ms": ms(percentile(values, 99)),
        "max_ms": ms(values[-1] if values else None),
    }


class Run:
    """One size: N users, their sockets and the publishers, for both consumers."""

    def __init__(self, args: argparse.Namespace, size: int, workdir: Path, database: str) -> None:
        self.args = args
        self.size = size
        self.database_kind = database
        self.workdir = workdir
        self.phase = 0
        self.ctx = multiprocessing.get_context("spawn")

    def __enter__(self) -> "Run":
        self.redis = RedisServer(self.workdir / "redis").start()
        self.database = None
        database_url = f"sqlite:///{self.workdir / 'bench.sqlite3'}"
        if self.database_kind == "postgresql":
            self.database = PostgresDatabase(self.args.postgres, prefix="bench")
            database_url = self.database.create()
        self.env = bench_env(self.redis.url, database_url)
        began = monotonic()
        with self.ctx.Pool(1) as pool:
            self.users = pool.apply(_create_users, (self.env, self.size))
        self.setup_seconds = monotonic() - began
        self.user_ids = [user_id for user_id, _ in self.users]
        self.clients = [Worker(self.ctx, clients_module.main) for _ in range(self.args.clients)]
        self.publishers = [
            Worker(self.ctx, publisher_module.main, self.env) for _ in range(self.args.publishers)
        ]
        for publisher in self.publishers:
            publisher.recv(120)
        return self

    def __exit__(self, *exc) -> None:
        for worker in self.clients + self.publishers:
            worker.stop()
        self.redis.stop()
        if self.database:
            self.database.drop()

    def next_phase(self) -> int:
        self.phase += 1
        return self.phase

    def flush_redis(self) -> None:
        import redis

        client = redis.Redis.from_url(self.redis.url)
        client.flushall()  # the benchmark's own private server
        client.close()

    # --- phases ------------------------------------------------------------

    def kind(self, kind: str) -> dict:
        log(f"[{self.size} users] {kind}: starting Daphne")
        self.flush_redis()
        env = {**self.env, "BENCH_TUTORIAL_GC": "1"} if kind == "tutorial" else self.env
        if kind in SERVERS:
            daphne = Daphne(
                self.workdir,
                env,
                f"{kind}-{self.size}",
                "config.serve",
                self.args.serve_workers,
                server=SERVERS[kind],
            )
        else:
            daphne = Daphne(self.workdir, env, f"{kind}-{self.size}", "daphne")
        daphne.start()
        url = f"ws://127.0.0.1:{daphne.port}{PATHS[kind]}"
        self.daphne = daphne
        try:
            with self.profiled(kind, "connect"):
                result = {"connect": self.connect(kind, daphne, url)}
            # Publish only to users whose socket is open, so a refused handshake
            # shows as a connect failure, not as lost notifications.
            self.targets = sorted(u for c in self.clients for u in c.call("connected"))
            with self.profiled(kind, "ceiling"):
                result["ceiling"] = self.ceiling(kind)
            with self.profiled(kind, "ceiling_all"):
                result["ceiling_all"] = self.ceiling_all(kind)
            if kind == "ours":
                result["busy_caller"] = self.busy_caller(kind)
            result["rates"] = []
            for rate in self.args.rates:
                with self.profiled(kind, f"rate{rate:g}"):
                    result["rates"].append(self.at_rate(kind, rate, daphne))
            with self.profiled(kind, "broadcast"):
                result["broadcast"] = self.broadcast(kind)
            status = [c.call("status") for c in self.clients]
            result["sockets"] = {
                "open_at_end": sum(s["open"] for s in status),
                "unexpected_closes": sum(s["unexpected_closes"] for s in status),
                "close_codes": sorted({c for s in status for c in s["close_codes"]}),
                "daphne_alive": daphne.alive(),
            }
            result["sustained_rate"] = sustained(result["rates"])
            if kind in SERVERS:
                with self.profiled(kind, "storm"):
                    result["storm"] = self.storm(kind, daphne, url, result["connect"]["seconds"])
                with self.profiled(kind, "floor"):
                    result["floor"] = self.floor(daphne, result["broadcast"]["phase"])
            all_call(self.clients, [("close",)] * len(self.clients))
            return result
        finally:
            daphne.stop()

    @contextlib.contextmanager
    def profiled(self, kind: str, phase: str):
        """With --profile, py-spy samples Daphne (and publisher 0) during one phase."""
        if not self.args.profile:
            yield
            return
        stem = self.args.profile / f"{kind}-{self.size}-{phase}"
        profilers = [
            start_profiler(self.daphne.pid, stem.with_name(stem.name + "-daphne")),
            start_profiler(
                self.publishers[0].process.pid, stem.with_name(stem.name + "-publisher")
            ),
        ]
        try:
            yield
        finally:
            for profiler in profilers:
                stop_profiler(profiler)

    def connect(self, kind: str, daphne: Daphne, url: str) -> dict:
        """Open N sockets in steps, sampling Daphne's memory after each step."""
        origin = daphne.origin
        # One socket opened and closed first, so lazily imported code is not
        # counted as memory per connection.
        self.clients[0].call("connect", url, origin, self.users[:1], 1)
        self.clients[0].call("close")
        time.sleep(0.5)
        base = daphne.rss()
        curve = [(0, base)]
        ok = failed = 0
        seconds = 0.0
        durations: list[float] = []
        errors: list[str] = []
        steps = self.args.memory_steps
        per_client = max(1, self.args.connect_concurrency // len(self.clients))
        cpu_before = daphne.cpu()
        for step in range(steps):
            chunk = self.users[step * self.size // steps : (step + 1) * self.size // steps]
            began = monotonic()
            replies = all_call(
                self.clients,
                [
                    ("connect", url, origin, part, per_client)
                    for part in split(chunk, len(self.clients))
                ],
            )
            seconds += monotonic() - began
            for reply in replies:
                ok += reply["ok"]
                failed += reply["failed"]
                durations += reply["durations"]
                errors += reply["errors"]
            time.sleep(0.3)
            curve.append((ok, daphne.rss()))
        cpu = daphne.cpu() - cpu_before
        time.sleep(self.args.idle_seconds)
        idle = daphne.rss()
        curve.append((ok, idle))
        handshakes = sorted(durations)
        result = {
            "connected": ok,
            "failed": failed,
            "errors": errors[:5],
            "seconds": round(seconds, 3),
            "per_second": round(ok / seconds, 1) if seconds else None,
            "handshake_p50_ms": ms(percentile(handshakes, 50)),
            "handshake_p99_ms": ms(percentile(handshakes, 99)),
            "daphne_cpu_ms_per_connect": round(cpu * 1000 / ok, 3) if ok else None,
            "rss_base_mb": round(base / 2**20, 1),
            "rss_idle_mb": round(idle / 2**20, 1),
            "kb_per_connection": round((idle - base) / 1024 / ok, 1) if ok else None,
            "memory_curve": curve,
        }
        log(
            f"[{self.size} users] {kind}: {ok} connected ({failed} failed) at "
            f"{result['per_second']}/s, {result['kb_per_connection']} KB each"
        )
        return result

    def collect(self, phase: int, expected: int, timeout: float = 15) -> list[tuple]:
        """Wait until `expected` records arrived (or none for 2 s), then take this phase's."""
        deadline = monotonic() + timeout
        last, last_change = -1, monotonic()
        while monotonic() < deadline:
            count = sum(c.call("status")["records"] for c in self.clients)
            if count >= expected:
                break
            if count != last:
                last, last_change = count, monotonic()
            elif monotonic() - last_change > 2:
                break
            time.sleep(0.1)
        records = [r for c in self.clients for r in c.call("take")]
        return [r for r in records if r[0] == phase]

    def deliveries(self, phase: int, sent: list[tuple[int, int]], timeout: float = 15) -> dict:
        records = self.collect(phase, len(sent), timeout)
        expected = {seq for seq, _ in sent}
        seen: dict[int, float] = {}
        duplicates = 0
        for _, seq, _, latency in records:
            if seq in seen:
                duplicates += 1
            else:
                seen[seq] = latency
        delivered = len(expected & seen.keys())
        return {
            "sent": len(sent),
            "delivered": delivered,
            "lost": len(sent) - delivered,
            "duplicates": duplicates,
            **latency_summary(list(seen.values())),
        }

    def ceiling(self, kind: str) -> dict:
        """One publisher process calling as fast as it can: its ceiling in calls per second."""
        phase = self.next_phase()
        seconds = self.args.ceiling_seconds
        reply = self.publishers[0].call(
            "rate",
            publishing(kind),
            phase,
            0,
            seconds,
            self.targets,
            0,
            1,
            phase,
            timeout=seconds * 3 + 60,
        )
        calls = sorted(reply["calls"])
        result = {
            "calls_per_second": round(len(reply["sent"]) / reply["seconds"], 1),
            "call_p50_ms": ms(percentile(calls, 50)),
            "call_p99_ms": ms(percentile(calls, 99)),
            "failures": reply["failures"],
            **self.deliveries(phase, reply["sent"]),
        }
        log(f"[{self.size} users] {kind}: one publisher: {result['calls_per_second']} calls/s")
        return result

    def ceiling_all(self, kind: str) -> dict:
        """Every publisher process calling as fast as it can, as Celery worker
        processes do: their aggregate rate."""
        phase = self.next_phase()
        seconds = self.args.ceiling_seconds
        count = len(self.publishers)
        replies = all_call(
            self.publishers,
            [
                (
                    "rate",
                    publishing(kind),
                    phase,
                    0,
                    seconds,
                    self.targets,
                    i,
                    count,
                    phase * 100 + i,
                )
                for i in range(count)
            ],
            timeout=seconds * 3 + 60,
        )
        sent = [pair for reply in replies for pair in reply["sent"]]
        result = {
            "publishers": count,
            "calls_per_second": round(len(sent) / max(r["seconds"] for r in replies), 1),
            "failures": sum(r["failures"] for r in replies),
            **self.deliveries(phase, sent),
        }
        log(
            f"[{self.size} users] {kind}: {count} publishers together: "
            f"{result['calls_per_second']} calls/s, lost {result['lost']}/{result['sent']}"
        )
        return result

    def busy_caller(self, kind: str) -> dict:
        """Task-to-browser latency at 200 calls/s for 4 s from one publisher that
        sleeps between calls, then from one that computes between them (GIL
        held). p50 and p90 are the figures to read: 800 calls leave p99 to
        whatever else paused the machine."""
        result = {}
        for mode in ("idle", "busy"):
            phase = self.next_phase()
            reply = self.publishers[0].call(
                "rate", publishing(kind), phase, 200, 4.0, self.targets, 0, 1, phase, mode == "busy"
            )
            result[mode] = self.deliveries(phase, reply["sent"])
        for q in ("p50_ms", "p90_ms", "p99_ms"):
            busy, idle = result["busy"][q], result["idle"][q]
            delta = None if busy is None or idle is None else round(busy - idle, 2)
            result[q.replace("_ms", "_delta_ms")] = delta
        log(
            f"[{self.size} users] {kind}: busy caller p50 {result['busy']['p50_ms']} ms, "
            f"idle {result['idle']['p50_ms']} ms (p99 {result['busy']['p99_ms']} / "
            f"{result['idle']['p99_ms']} ms)"
        )
        return result

    def at_rate(self, kind: str, rate: float, daphne: Daphne) -> dict:
        phase = self.next_phase()
        count = len(self.publishers)
        duration = self.args.duration
        cpu_before = daphne.cpu()
        began = monotonic()
        replies = all_call(
            self.publishers,
            [
                (
                    "rate",
                    publishing(kind),
                    phase,
                    rate / count,
                    duration,
                    self.targets,
                    i,
                    count,
                    phase * 100 + i,
                )
                for i in range(count)
            ],
            timeout=duration * 3 + 60,
        )
        wall = monotonic() - began
        sent = [pair for reply in replies for pair in reply["sent"]]
        calls = sorted(c for reply in replies for c in reply["calls"])
        result = {
            "target_rate": rate,
            "achieved_rate": round(len(sent) / max(r["seconds"] for r in replies), 1),
            "failures": sum(r["failures"] for r in replies),
            "call_p50_ms": ms(percentile(calls, 50)),
            "call_p99_ms": ms(percentile(calls, 99)),
            **self.deliveries(phase, sent),
        }
        result["daphne_cpu_percent"] = round(
            100 * (daphne.cpu() - cpu_before) / (monotonic() - began), 1
        )
        del wall
        log(
            f"[{self.size} users] {kind}: {rate}/s -> {result['achieved_rate']}/s, "
            f"lost {result['lost']}/{result['sent']}, p99 {result['p99_ms']} ms, "
            f"max {result['max_ms']} ms"
        )
        return result

    def broadcast(self, kind: str) -> dict:
        phase = self.next_phase()
        reply = self.publishers[0].call(
            "broadcast", publishing(kind), phase, self.user_ids, timeout=300
        )
        # Sent to every user (ours through notify_all); expected at every open socket.
        records = self.collect(phase, len(self.targets), timeout=30)
        reached = {user_id: latency for _, _, user_id, latency in records}
        result = {
            "phase": phase,
            "users": len(self.targets),
            "delivered": len(reached),
            "lost": len(self.targets) - len(reached),
            "publish_call_ms": ms(reply["seconds"]),
            "last_client_ms": ms(max(reached.values()) if reached else None),
            **latency_summary(list(reached.values())),
        }
        log(
            f"[{self.size} users] {kind}: broadcast reached {len(reached)}/{self.size}, "
            f"last after {result['last_client_ms']} ms"
        )
        return result

    def storm(self, kind: str, daphne: Daphne, url: str, cold_seconds: float) -> dict:
        """Every socket cut at once; notifications saved while they are away; then all
        of them back at once, each with ?after= its newest id. Settled when every
        socket is open again and every missed notification has arrived (once)."""
        phase = self.next_phase()
        sessions = dict(self.users)
        held = [c.call("connected") for c in self.clients]
        all_call(self.clients, [("drop",)] * len(self.clients))
        count = len(self.publishers)
        away = self.args.duration / 2  # publishers flat out while the sockets are away
        replies = all_call(
            self.publishers,
            [
                ("rate", publishing(kind), phase, 0, away, self.targets, i, count, phase * 100 + i)
                for i in range(count)
            ],
        )
        sent = [pair for reply in replies for pair in reply["sent"]]
        per_client = max(1, self.args.connect_concurrency // len(self.clients))
        began = monotonic()
        replies = all_call(
            self.clients,
            [
                ("connect", url, daphne.origin, [(u, sessions[u]) for u in users], per_client, True)
                for users in held
            ],
        )
        reconnect_seconds = monotonic() - began
        back = {u for c in self.clients for u in c.call("connected")}
        expected = [(seq, user) for seq, user in sent if user in back]
        result = {
            "sockets": sum(len(users) for users in held),
            "reconnected": sum(r["ok"] for r in replies),
            "failed": sum(r["failed"] for r in replies),
            "retried": sum(r["retried"] for r in replies),
            "errors": [e for r in replies for e in r["errors"]][:5],
            "reconnect_seconds": round(reconnect_seconds, 3),
            **self.deliveries(phase, expected, timeout=120),
        }
        result["settle_seconds"] = round(monotonic() - began, 3)
        # deliveries() waits 2 s past the last arrival only when something is missing.
        result["cold_connect_seconds"] = cold_seconds
        result["settle_over_cold"] = round(result["settle_seconds"] / cold_seconds, 2)
        log(
            f"[{self.size} users] {kind}: storm: {result['reconnected']}/{result['sockets']} back, "
            f"{result['delivered']}/{result['sent']} missed arrived ({result['duplicates']} twice)"
            f" in {result['settle_seconds']} s; cold connect {cold_seconds:.1f} s"
        )
        return result

    def floor(self, daphne: Daphne, broadcast_phase: int) -> dict:
        """The broadcast's floor: the same server writing one prebuilt frame of the
        broadcast's size to as many sockets (bench.asgi's ws/floor/), nothing else."""
        all_call(self.clients, [("close",)] * len(self.clients))
        sizes = [c.call("frame_bytes").get(broadcast_phase) for c in self.clients]
        frame_bytes = max(size for size in sizes if size)
        users = self.users[: len(self.targets)]
        per_client = max(1, self.args.connect_concurrency // len(self.clients))
        url = f"ws://127.0.0.1:{daphne.port}/ws/floor/"
        replies = all_call(
            self.clients,
            [
                ("connect", url, daphne.origin, part, per_client)
                for part in split(users, len(self.clients))
            ],
        )
        opened = sum(r["ok"] for r in replies)
        phase = self.next_phase()
        fire = f"{daphne.origin}/bench/floor/?bytes={frame_bytes}&phase={phase}"
        with urllib.request.urlopen(fire, timeout=120) as response:
            written = json.loads(response.read())
        records = self.collect(phase, opened, timeout=60)
        reached = [latency for _, _, _, latency in records]
        result = {
            "sockets": opened,
            "frame_bytes": frame_bytes,
            "delivered": len(reached),
            "write_loop_ms": ms(written["seconds"]),
            "last_client_ms": ms(max(reached) if reached else None),
            **latency_summary(reached),
        }
        log(
            f"[{self.size} users] floor: {frame_bytes}-byte frame to {opened} sockets, "
            f"last after {result['last_client_ms']} ms"
        )
        return result


def sustained(rates: list[dict]) -> float | None:
    """The highest target rate met (within 5 %) with no loss and p99 under the target."""
    good = [
        r["target_rate"]
        for r in rates
        if r["lost"] == 0
        and r["failures"] == 0
        and r["p99_ms"] is not None
        and r["p99_ms"] <= P99_TARGET_MS
        and r["achieved_rate"] >= 0.95 * r["target_rate"]
    ]
    return max(good) if good else None


def _create_users(env: dict[str, str], count: int) -> list[tuple[int, str]]:
    from bench.stack import setup_django

    setup_django(env)
    return create_users(count)


def start_profiler(pid: int, stem: Path) -> subprocess.Popen | None:
    """py-spy sampling Daphne until stop_profiler(): collapsed stacks, for reading as text."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    stem.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--rate",
            "100",
            "--format",
            "raw",
            "--output",
            f"{stem}.txt",
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profiler(process: subprocess.Popen | None) -> None:
    if process and process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=BASE_DIR, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return ""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="the CI size (under a minute)")
    parser.add_argument("--users", help="comma-separated sizes, e.g. 2000,5000")
    parser.add_argument("--rates", help="comma-separated publish rates per second")
    parser.add_argument("--duration", type=float, help="seconds per rate")
    parser.add_argument("--ceiling-seconds", type=float)
    parser.add_argument("--memory-steps", type=int)
    parser.add_argument("--clients", type=int, help="client processes")
    parser.add_argument("--publishers", type=int, help="publisher processes")
    parser.add_argument(
        "--kinds",
        default="ours,tutorial",
        help="ours (Daphne), uvicorn (ours on uvicorn), tutorial; e.g. ours,uvicorn,tutorial",
    )
    parser.add_argument(
        "--serve-workers",
        type=int,
        default=1,
        help="Daphne processes behind one socket for ours (config.serve --workers)",
    )
    parser.add_argument(
        "--database",
        choices=["auto", "postgresql", "sqlite", "both"],
        default="auto",
        help="auto: PostgreSQL when one answers at --postgres (a database of its own, "
        "dropped after), else SQLite; both: SQLite, then PostgreSQL, in one run, with "
        "their ratios (the tutorial, which writes nothing, runs once)",
    )
    parser.add_argument(
        "--postgres",
        default=os.getenv("BENCH_POSTGRES_URL", DEFAULT_SERVER),
        help="the PostgreSQL server (default $BENCH_POSTGRES_URL or %(default)s)",
    )
    parser.add_argument("--connect-concurrency", type=int, default=256)
    parser.add_argument("--idle-seconds", type=float, default=2.0)
    parser.add_argument("--out", type=Path, help="JSON results (default bench/results/latest.json)")
    parser.add_argument("--plots", type=Path, help="directory for PNG plots (e.g. docs)")
    parser.add_argument("--profile", type=Path, help="py-spy Daphne into this directory")
    args = parser.parse_args(argv)
    if args.database == "auto":
        args.database = "postgresql" if answers(args.postgres) else "sqlite"
    defaults = SMOKE if args.smoke else FULL
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if isinstance(args.users, str):
        args.users = [int(v) for v in args.users.split(",")]
    if isinstance(args.rates, str):
        args.rates = [float(v) for v in args.rates.split(",") if v]
    args.kinds = [k for k in args.kinds.split(",") if k]
    if args.out is None:
        args.out = BASE_DIR / "bench" / "results" / ("smoke.json" if args.smoke else "latest.json")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def stop(*_: object) -> None:
        raise KeyboardInterrupt  # unwinds through every stop() and the temporary directory

    signal.signal(signal.SIGTERM, stop)
    results = {
        "meta": {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "commit": git_commit(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "smoke": args.smoke,
            "database": args.database,
            "rates": args.rates,
            "duration_s": args.duration,
            "clients": args.clients,
            "serve_workers": args.serve_workers,
            "publishers": args.publishers,
            "p99_target_ms": P99_TARGET_MS,
        },
        "sizes": [],
    }
    print(
        f"Database: {args.database}"
        + (f" at {args.postgres}" if args.database == "postgresql" else "")
    )
    began = monotonic()
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for number, database in enumerate(databases):
            kinds = args.kinds if number == 0 else [k for k in args.kinds if k != "tutorial"]
            for size in args.users:
                workdir = Path(tmp) / f"{database}-n{size}"
                with Run(args, size, workdir, database) as run:
                    entry = {
                        "users": size,
                        "database": database,
                        "setup_seconds": round(run.setup_seconds, 2),
                    }
                    for kind in kinds:
                        entry[kind] = run.kind(kind)
                    results["sizes"].append(entry)
                logs = BASE_DIR / "bench" / "results" / "logs"
                logs.mkdir(parents=True, exist_ok=True)
                for path in workdir.glob("daphne-*.log"):
                    shutil.copy(path, logs / path.name)
    results["meta"]["seconds"] = round(monotonic() - began, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(report.table(results))
    print(report.comparison(results))
    print(report.servers(results))
    print(report.targets(results))
    print(f"\nJSON: {args.out}")
    if args.plots:
        for path in report.plots(results, args.plots):
            print(f"Plot: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
