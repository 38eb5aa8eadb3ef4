"""Hands (group, event) pairs to the channel layer: the only code that does.

Async callers await `send()`. Sync callers `submit()` (or `send_on_commit()`):
with notifications.layers the caller sends itself, through a sync Redis
client, in two round trips; while Redis fails, and while earlier events
still wait, their events go to one sender loop thread per process instead,
and the caller returns at once; `flush()` waits until those are sent. A failed
send is logged and counted, never raised: the rows are saved already, and
clients catch up from the database.

Any channel layer works. The direct sends, the sender thread and its batches
are for a layer with `group_send_many` (notifications.layers). With any other layer sync
callers send in their own thread through `async_to_sync`, as channels
documents: such a layer may be bound to the loop its consumers run on
(InMemoryChannelLayer keeps asyncio queues), which only `async_to_sync` from
code called by that loop reaches safely; the sender's own loop would not.
"""

import asyncio
import atexit
import logging
import os
import threading
import time
from collections import Counter, deque
from weakref import WeakKeyDictionary

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from notifications import metrics
from notifications.conf import app_settings

log = logging.getLogger(__name__)


class _Sender:
    """Sends for sync callers from one event loop thread per process, in call order.

    `async_to_sync(group_send)` per call builds a new event loop, and the
    channel layer keeps its Redis connections per loop, so every call would
    open a new connection (a few hundred sends a second at best). Sync callers
    hand their events to this long-lived loop instead, which keeps one
    connection pool for the life of the process.

    A caller does not wait for Redis either: its events join one FIFO queue,
    and a single sender task sends everything queued since its last round
    trip in one `group_send_many`. One queue and one sender keep every user's
    events in call order, and a burst costs a few round trips, not one each.
    `flush()` waits until the queue is sent; it runs at exit, and after each
    Celery task (notifications/celery/signals.py). When Redis is slower than the callers,
    a caller waits once MAX_PENDING events are queued, for at most the send
    timeout, and then its events are dropped with a warning (the rows stay).
    """

    MAX_PENDING = 10_000
    # Events per round trip: a few script calls of notifications.layers.SEND_CHUNK.
    BATCH = 5_000
    # After a direct send fails, callers queue instead for this long, so that a
    # Redis that is down costs each call nothing, not a connect timeout.
    DIRECT_PAUSE = 5.0

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # each Celery prefork child its own
        atexit.register(self.flush)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: deque[list[tuple[str, dict]]] = deque()
        self._queued = 0  # events ever queued
        self._done = 0  # events ever sent or given up on
        self._sending = False
        # Per layer (so per set of Redis servers): when callers may send directly again.
        self._direct_after: WeakKeyDictionary[object, float] = WeakKeyDictionary()

    def submit(self, pairs: list[tuple[str, dict]], layer: object) -> None:
        """Send (group, event) pairs now from this thread when nothing is queued
        before them (so a user's events stay in call order), else queue them."""
        with self._lock:
            direct = self._queued == self._done
            direct = direct and time.monotonic() >= self._direct_after.get(layer, 0.0)
        if direct:
            try:
                over = layer.group_send_many_now(pairs)
            except Exception as exc:  # Redis down or slow: the sender thread retries
                log.warning(
                    "sending directly failed (%r); queueing for %ss", exc, self.DIRECT_PAUSE
                )
                with self._lock:
                    self._direct_after[layer] = time.monotonic() + self.DIRECT_PAUSE
            else:
                count(pairs)
                if over:
                    asyncio.run_coroutine_threadsafe(_repair(layer, over), self._loop_now())
                return
        self.enqueue(pairs)

    def enqueue(self, pairs: list[tuple[str, dict]]) -> None:
        """Queue (group, event) pairs for the sender thread and return at once."""
        timeout = app_settings.SEND_TIMEOUT
        with self._lock:
            room = self._changed.wait_for(
                lambda: self._queued - self._done < self.MAX_PENDING, timeout
            )
            if not room:
                log.warning(
                    "%d events wait for the channel layer; dropped %d", self.MAX_PENDING, len(pairs)
                )
                metrics.inc("notifications_publish_failures_total", len(pairs))
                return
            self._queue.append(pairs)
            self._queued += len(pairs)
            start, self._sending = not self._sending, True
            loop = self._running_loop()
        if start:
            asyncio.run_coroutine_threadsafe(self._drain(), loop)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is sent or given up; False if that
        took too long. A batch gives up after the send timeout, so by default this
        waits a second longer: it sees the give-up rather than racing it."""
        timeout = app_settings.SEND_TIMEOUT + 1.0 if timeout is None else timeout
        with self._lock:
            target = self._queued
            return self._changed.wait_for(lambda: self._done >= target, timeout)

    async def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._sending = False
                    return
                batch: list[tuple[str, dict]] = []
                while self._queue and len(batch) < self.BATCH:
                    batch += self._queue.popleft()
            await _send_in_time(batch)
            with self._lock:
                self._done += len(batch)
                self._changed.notify_all()

    def _loop_now(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            return self._running_loop()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The sender's loop, started on first use (called with the lock held)."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            threading.Thread(
                target=self._loop.run_forever, name="notifications-sender", daemon=True
            ).start()
        return self._loop


_sender = _Sender()
flush = _sender.flush


def batches(layer: object) -> bool:
    """Whether a channel layer (or its class) sends many groups' events in one
    call (`group_send_many`, notifications.layers)."""
    return hasattr(layer, "group_send_many")


def submit(pairs: list[tuple[str, dict]]) -> None:
    """Send (group, event) pairs from sync code, in call order."""
    layer = get_channel_layer()
    if batches(layer):
        _sender.submit(pairs, layer)
    else:
        async_to_sync(_send_in_time)(pairs)


def _kinds(pairs: list[tuple[str, dict]]) -> Counter:
    # A control event (sessions.py) carries no message for the browser.
    return Counter(event.get("message", event)["type"] for _, event in pairs)


def count(pairs: list[tuple[str, dict]]) -> None:
    """Count sent events in the metrics, by message type."""
    for kind, n in _kinds(pairs).items():
        metrics.inc(f'notifications_published_total{{type="{kind}"}}', n)


async def _repair(layer: object, over: dict[int, list[tuple]]) -> None:
    layer.repair(over)


async def send(pairs: list[tuple[str, dict]]) -> None:
    """group_send each (group, event), in order; in a few round trips when the
    layer batches, else one group_send at a time."""
    kinds = _kinds(pairs)
    layer = get_channel_layer()
    try:
        if batches(layer):
            await layer.group_send_many(pairs)
        else:
            # One at a time: concurrent sends could reorder a user's events.
            for group, event in pairs:
                await layer.group_send(group, event)
    except Exception as exc:  # Redis down, timeouts: the rows are saved anyway
        counts = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
        log.warning("could not send %s message(s): %r", counts, exc)
        metrics.inc("notifications_publish_failures_total", len(pairs))
        return
    count(pairs)


async def _send_in_time(pairs: list[tuple[str, dict]]) -> None:
    """`send()`, given up with a warning after NOTIFICATIONS_SEND_TIMEOUT."""
    try:
        await asyncio.wait_for(send(pairs), app_settings.SEND_TIMEOUT)
    except TimeoutError:
        log.warning(
            "channel layer did not answer within %ss; %d events not sent",
            app_settings.SEND_TIMEOUT,
            len(pairs),
        )
        metrics.inc("notifications_publish_failures_total", len(pairs))


def send_on_commit(pairs: list[tuple[str, dict]]) -> None:
    """Submit the pairs once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: submit(pairs))
