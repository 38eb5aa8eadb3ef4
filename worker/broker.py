"""A fix to kombu's Redis transport that keeps a worker alive when Redis goes away.

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

from typing import Any

from kombu.transport import redis as redis_transport
from redis.exceptions import ConnectionError as RedisConnectionError

_connparams = redis_transport.Channel._connparams


def _connparams_of_a_live_transport(
    self: redis_transport.Channel, asynchronous: bool = False
) -> dict[str, Any]:
    if self.connection is None or self.connection.client is None:
        raise RedisConnectionError("this channel's broker connection is already closed")
    return _connparams(self, asynchronous=asynchronous)


redis_transport.Channel._connparams = _connparams_of_a_live_transport
