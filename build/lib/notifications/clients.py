"""Redis clients for this process's own short commands (tickets, metrics, health).

One client, and so one connection pool, per URL for the life of the process:
a request never opens a connection of its own. redis-py's pool notices a fork
and starts afresh in the child.
"""

from functools import cache

import redis


@cache
def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=2, decode_responses=True
    )
