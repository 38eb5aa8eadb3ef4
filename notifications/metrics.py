"""What an operator watches, in Prometheus text format at /metrics.

Daphne and every Celery worker are separate processes (often on separate
hosts), so each process counts in memory and a background thread copies its
totals into Redis every few seconds (one hash per process, expiring when the
process stops refreshing it). /metrics, served by any Daphne, reads every live
process's hash and labels each series with `process="host:pid"`: sum across
processes in PromQL, e.g. `sum(rate(notifications_delivered_total[1m]))`. A
counter of a process that exits disappears with it, which Prometheus treats
like a restart. No client library is needed for this much text.

Counting costs a lock and an addition; nothing here ever blocks a send.
"""

import bisect
import logging
import os
import socket
import threading
import time
from datetime import datetime

from notifications.clients import app_redis
from notifications.conf import app_settings

log = logging.getLogger(__name__)

KEY_PREFIX = "notifications:metrics:"
# A sorted set of every process's key, scored by when it expires: a scrape
# reads this index instead of scanning the keyspace, which on a shared Redis
# with millions of keys would walk all of them on every scrape.
INDEX_KEY = "notifications:metrics-index"
# How the flushing connection names itself in Redis's CLIENT LIST.
CLIENT_NAME = "notifications-metrics"
# Upper bounds (seconds) of the publish-to-send histogram's buckets.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HELP = {
    "notifications_connected_sockets": ("gauge", "WebSockets open in this process."),
    "notifications_published_total": (
        "counter",
        "Messages handed to the channel layer (after the database write), by type.",
    ),
    "notifications_publish_failures_total": (
        "counter",
        "Messages the publisher could not hand to the channel layer (Redis down, timeout).",
    ),
    "notifications_delivered_total": ("counter", "Messages written to a browser's socket."),
    "notifications_send_failures_total": (
        "counter",
        "Messages a socket could not send (skipped; the socket stays open).",
    ),
    "notifications_slow_sockets_closed_total": (
        "counter",
        "Sockets closed because their client stopped reading (NOTIFICATIONS_WS_MAX_UNSENT_BYTES).",
    ),
    "notifications_channel_layer_errors_total": (
        "counter",
        "Channel-layer failures seen by sockets (joining a group failed, or Redis went away"
        " under an open socket).",
    ),
    "notifications_channel_layer_drops_total": (
        "counter",
        "Messages refused by a full inbound queue (outcome=dropped), added again once it "
        "drained (repaired), given up after the retries (lost), or that could not be "
        "serialised (unserialisable).",
    ),
    "notifications_publish_to_send_seconds": (
        "histogram",
        "From a notification's database write to its frame sent on a socket.",
    ),
}


class Registry:
    """This process's counters, gauges and the histogram, as Prometheus series."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, float] = {}
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.hist_sum = 0.0

    def add(self, series: str, amount: float = 1) -> None:
        with self.lock:
            self.values[series] = self.values.get(series, 0) + amount

    def observe(self, seconds: float) -> None:
        index = bisect.bisect_left(BUCKETS, seconds)
        with self.lock:
            self.buckets[index] += 1
            self.hist_sum += seconds

    def snapshot(self) -> dict[str, float]:
        name = "notifications_publish_to_send_seconds"
        with self.lock:
            values = dict(self.values)
            counts, total = list(self.buckets), self.hist_sum
        if sum(counts):
            running = 0
            for bound, count in zip((*BUCKETS, "+Inf"), counts, strict=True):
                running += count
                values[f'{name}_bucket{{le="{bound}"}}'] = running
            values[f"{name}_sum"] = total
            values[f"{name}_count"] = running
        return values


class Flusher:
    """Copies this process's registry into Redis every few seconds, from a daemon thread.

    Started on first use and again after a fork, so each Celery prefork child
    reports itself.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.pid = 0
        self.lock = threading.Lock()

    def ensure_running(self) -> None:
        if self.pid == os.getpid():
            return
        with self.lock:
            if self.pid == os.getpid():
                return
            if self.pid:  # forked: the parent's counts are not ours
                self.registry.__init__()
            self.pid = os.getpid()
            threading.Thread(target=self._run, name="metrics-flush", daemon=True).start()

    @property
    def key(self) -> str:
        return f"{KEY_PREFIX}{socket.gethostname()}:{os.getpid()}"

    def flush(self) -> None:
        values = self.registry.snapshot()
        if not values:
            return
        ttl = int(app_settings.METRICS_INTERVAL * 3) + 1
        pipe = app_redis(CLIENT_NAME).pipeline(transaction=False)
        pipe.hset(self.key, mapping=values)
        pipe.expire(self.key, ttl)
        pipe.zadd(INDEX_KEY, {self.key: time.time() + ttl})
        pipe.execute()

    def _run(self) -> None:
        pid = os.getpid()
        while pid == os.getpid():
            time.sleep(app_settings.METRICS_INTERVAL)
            try:
                self.flush()
            except Exception as exc:  # Redis away: the next round tries again
                log.debug("metrics not flushed: %r", exc)


registry = Registry()
_flusher = Flusher(registry)


def inc(series: str, amount: float = 1) -> None:
    """Add to a counter or gauge series, e.g. inc('notifications_delivered_total{type="read"}')."""
    registry.add(series, amount)
    _flusher.ensure_running()


def observe_publish_to_send(created_at: str) -> None:
    """Record one notification's time from its row's created_at (ISO) to now."""
    try:
        seconds = time.time() - datetime.fromisoformat(created_at).timestamp()
    except (TypeError, ValueError):
        return
    registry.observe(max(seconds, 0.0))


def render() -> str:
    """Every live process's series, in Prometheus text format."""
    _flusher.ensure_running()
    _flusher.flush()  # this process's figures as of now
    client = app_redis()
    now = time.time()
    client.zremrangebyscore(INDEX_KEY, "-inf", now)  # processes that stopped reporting
    keys = sorted(client.zrangebyscore(INDEX_KEY, now, "+inf"))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    by_process = {
        key.removeprefix(KEY_PREFIX): values
        for key, values in zip(keys, pipe.execute(), strict=True)
        if values
    }
    lines = []
    for name, (kind, text) in HELP.items():
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        for process, values in by_process.items():
            for series, value in sorted(values.items()):
                base, _, labels = series.partition("{")
                parts = {name} | (
                    {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
                    if kind == "histogram"
                    else set()
                )
                if base not in parts:
                    continue
                label = f'process="{process}"' + ("," + labels.rstrip("}") if labels else "")
                lines.append(f"{base}{{{label}}} {value}")
    return "\n".join(lines) + "\n"
