"""Broker options under which a dead worker's task runs again within about a minute.

    CELERY_BROKER_TRANSPORT_OPTIONS = redelivery_options(visibility_timeout=60)

kombu's Redis transport hands a message back to the queue once it has gone
unacknowledged for the visibility timeout (an hour by default), and live
workers look for such messages only every 100 s. With these options a
worker's heartbeat (kombu_patches.py) keeps the messages it holds fresh, so
the timeout can be short without running a long task twice.
"""


def redelivery_options(visibility_timeout: int = 60) -> dict[str, float]:
    # Live workers look for overdue messages every interval x throttle seconds:
    # a tenth of the timeout (1 to 10 s; one sweep is one ZRANGE).
    restore_interval = max(1, min(10, visibility_timeout // 10))
    return {
        "visibility_timeout": visibility_timeout,
        "unacked_heartbeat_interval": visibility_timeout / 4,
        "unacked_restore_interval": restore_interval,
        "unacked_restore_throttle": 1,
        # A worker killed during a sweep leaves the sweep's lock behind, and for
        # kombu's 5 minutes nobody would sweep. Two sweeps at once are harmless
        # (each restore is a transaction), so the lock lapses after one interval.
        "unacked_mutex_expire": restore_interval,
    }
