"""What this service changes inside kombu's Redis transport, and why.

Both read kombu internals, so `install()` (run by the app's ready()) checks
what it hooks into first (notifications/probes.py): a change whose hooks a kombu
release lacks is left out with a WARNING, the outage fix is left out with an
INFO line where kombu no longer shows the bug, and no import ever fails.
Read against kombu 5.5 and 5.7.

## A heartbeat for the tasks a live worker holds

kombu's Redis transport emulates acknowledgements: each delivered message's
tag is scored with its delivery time in the `unacked_index` sorted set, and
every worker's sweep (`QoS.restore_visible`) puts back on the queue any
message whose score is older than the visibility timeout. So a dead worker's
task waits for that timeout, and a live worker's task that runs longer than
it is delivered a second time. Here each worker's main process, which holds
the delivery tags (`QoS._delivered`, minus the acked ones in `QoS._dirty`),
re-scores its tags every `unacked_heartbeat_interval` seconds on its event
loop. A running task's score then stays fresh however long it runs; a dead
worker's scores go stale and the others' sweep restores them within about
one timeout.

Every held tag is refreshed, reserved ones included: a prefetched task (or
one waiting for its ETA) will run here, and letting it go stale would run it
on another worker as well. Acked tasks (acks_late off, or finished) have left
`_delivered`. `ZADD XX` only updates tags still in the index, so a message
another worker has already restored is never revived.

## A worker that survives Redis going away

With kombu 5.7 and Celery 5.7, losing the broker while a task is unacknowledged
(with acks_late: any running task) kills the worker's main process with
"Unrecoverable error: AttributeError". On a connection error the consumer tears
the transport down and then closes its channels again; a channel whose
transport is gone then builds a Redis connection from `None` (to restore the
unacknowledged messages, and later to ack the task that finished meanwhile).
Raising Redis's ConnectionError there instead turns both into the connection
errors Celery already handles: it logs them and reconnects. The messages stay
in Redis's unacked index, so the visibility timeout still redelivers them.
"""

import logging
import types
from time import time
from typing import Any

from kombu.transport import redis as redis_transport
from redis.exceptions import ConnectionError as RedisConnectionError

from notifications import probes

log = logging.getLogger(__name__)

LIBRARY = "kombu's Redis transport"

OPTION = "unacked_heartbeat_interval"


def held_tags(qos: redis_transport.QoS) -> list[str]:
    """Delivery tags this process holds and has not acknowledged."""
    acked = qos._dirty
    return [tag for tag in list(qos._delivered) if tag not in acked]


def refresh(channel: redis_transport.Channel) -> int:
    """Re-score the channel's held tags with the current time; returns how many."""
    # None on a channel that never consumed (`.qos` would create one).
    qos = getattr(channel, "_qos", None)
    tags = held_tags(qos) if qos is not None else []
    if not tags:
        return 0
    now = time()
    with channel.conn_or_acquire() as client:
        return client.zadd(channel.unacked_index_key, dict.fromkeys(tags, now), xx=True, ch=True)


def beat(cycle: redis_transport.MultiChannelPoller) -> None:
    """One heartbeat for every channel of the connection; a broker outage skips it."""
    for channel in list(getattr(cycle, "_channels", ())):
        try:
            refresh(channel)
        except channel.connection_errors:
            # The connection is being rebuilt; the next beat tries again.
            log.debug("heartbeat skipped: broker unreachable", exc_info=True)


_register_with_event_loop = getattr(redis_transport.Transport, "register_with_event_loop", None)


def register_with_heartbeat(self: redis_transport.Transport, connection: Any, loop: Any) -> None:
    """kombu's registration, plus the heartbeat on the same event loop (and thread)
    that changes `QoS._delivered`."""
    _register_with_event_loop(self, connection, loop)
    cycle = self.cycle
    previous = getattr(cycle, "_heartbeat_tref", None)
    if previous is not None:  # a reconnection registers again
        previous.cancel()
    options = connection.client.transport_options
    # Without the option, a quarter of the timeout: never long enough for a
    # live worker's task to look overdue.
    interval = options.get(OPTION) or options.get("visibility_timeout", 3600) / 4
    if interval:
        cycle._heartbeat_tref = loop.call_repeatedly(interval, beat, cycle)


# --- A worker that survives Redis going away ---

_connparams = getattr(redis_transport.Channel, "_connparams", None)


def _connparams_of_a_live_transport(
    self: redis_transport.Channel, asynchronous: bool = False
) -> dict[str, Any]:
    if self.connection is None or self.connection.client is None:
        raise RedisConnectionError("this channel's broker connection is already closed")
    return _connparams(self, asynchronous=asynchronous)


def closed_channel_crashes() -> bool:
    """Whether kombu's own `_connparams` fails with AttributeError on a channel
    whose transport is gone (the bug above), run once on a stand-in channel."""
    closed = types.SimpleNamespace(connection=None)
    return probes.raises(lambda: _connparams(closed), AttributeError)


# --- Applying them ---


def heartbeat_hooks_missing() -> list[str]:
    """What the heartbeat reads that this kombu lacks (empty: it can run)."""
    return [
        *probes.missing(redis_transport.Transport, "register_with_event_loop"),
        *probes.missing(redis_transport.Channel, "unacked_index_key", "conn_or_acquire"),
        *probes.missing(redis_transport.QoS, "_delivered", "_dirty"),
    ]


def install() -> None:
    """Apply each change this kombu needs and can take; safe to call again."""
    transport, channel = redis_transport.Transport, redis_transport.Channel
    if getattr(transport, "register_with_event_loop", None) is not register_with_heartbeat:
        if lacking := heartbeat_hooks_missing():
            probes.skipped(LIBRARY, "the heartbeat of held tasks", lacking)
        else:
            transport.register_with_event_loop = register_with_heartbeat
    if _connparams is None:
        probes.skipped(LIBRARY, "the closed-channel fix", ["Channel._connparams"])
    elif channel._connparams is not _connparams_of_a_live_transport:
        if closed_channel_crashes():
            channel._connparams = _connparams_of_a_live_transport
        else:
            probes.not_needed(LIBRARY, "fails a closed channel with a connection error")
