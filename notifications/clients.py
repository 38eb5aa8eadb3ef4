"""Redis clients for this process's own short commands (tickets, metrics, health).

One client, and so one connection pool, per URL (or per Sentinel-watched
primary) for the life of the process: a request never opens a connection of
its own. redis-py's pool notices a fork and starts afresh in the child.
"""

from functools import cache

import redis
from redis.sentinel import Sentinel

from notifications.conf import app_settings

# Short commands only: a Redis that does not answer within this fails the caller.
TIMEOUTS = {"socket_connect_timeout": 2, "socket_timeout": 2}


@cache
def redis_client(url: str, client_name: str | None = None, decode: bool = True) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=decode, client_name=client_name, **TIMEOUTS)


@cache
def sentinel_client(
    sentinels: tuple[tuple[str, int], ...],
    master: str,
    client_name: str | None = None,
    decode: bool = True,
) -> redis.Redis:
    """A client of the primary the sentinels currently name.

    Its pool asks the sentinels again whenever it opens a connection, so after
    a failover the next command reaches the new primary without a restart.
    """
    manager = Sentinel(list(sentinels), sentinel_kwargs=TIMEOUTS, **TIMEOUTS)
    return manager.master_for(master, decode_responses=decode, client_name=client_name)


def app_redis(client_name: str | None = None) -> redis.Redis:
    """The app's own Redis: the primary NOTIFICATIONS_REDIS_SENTINELS name when
    set, else the one at NOTIFICATIONS_REDIS_URL; `client_name` gives a
    connection of its own a name in CLIENT LIST."""
    sentinels = app_settings.REDIS_SENTINELS
    if sentinels:
        return sentinel_client(
            tuple(map(tuple, sentinels)), app_settings.REDIS_SENTINEL_MASTER, client_name
        )
    return redis_client(app_settings.REDIS_URL, client_name)


def host_client(host: str | dict | tuple, decode: bool = True) -> redis.Redis:
    """A client of one channel-layer host entry, in any form channels-redis accepts;
    `decode=False` for one that reads and writes bytes (the layer's messages)."""
    if isinstance(host, str):
        return redis_client(host, decode=decode)
    if isinstance(host, (tuple, list)):
        return redis_client(f"redis://{host[0]}:{host[1]}/0", decode=decode)
    if "address" in host:
        return redis_client(host["address"], decode=decode)
    sentinels = tuple(map(tuple, host["sentinels"]))
    return sentinel_client(sentinels, host["master_name"], decode=decode)
