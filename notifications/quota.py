"""Per-user limits that hold across tabs, reconnections and Daphne processes.

A socket counts against its user's NOTIFICATIONS_MAX_SOCKETS_PER_USER, and every
frame a user's sockets send draws on one token bucket of NOTIFICATIONS_WS_RATE /
_BURST. Both live in Redis, on the channel layer's own connections (the shard
the user's key hashes to), so opening another tab or reconnecting resets
neither. Each check is one script: atomic, one round trip.

A channel layer without Redis connections of its own (InMemoryChannelLayer,
RedisPubSubChannelLayer) leaves nowhere to share them: the socket cap then
counts the sockets of this process only, and each socket has a frame budget
of its own (NotificationConsumer._take_frame).
"""

import asyncio
import hashlib
import logging
import time

from redis.exceptions import NoScriptError

from notifications.clients import app_redis
from notifications.conf import app_settings

log = logging.getLogger(__name__)

# A socket's entry is refreshed every REFRESH seconds while it is open and
# lapses TTL seconds after the last refresh, so the sockets of a process that
# died without closing them stop counting by themselves.
REFRESH = 60
TTL = 180

# KEYS[1]: a user's sockets (channel -> expiry time). ARGV: channel, now, expiry
# time, cap, key TTL. Drops lapsed entries, then adds the channel unless the
# user already has `cap` others. 1 when added (or already there), 0 when full.
CLAIM = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if not redis.call('ZSCORE', KEYS[1], ARGV[1])
    and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
    return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""

# KEYS[1]: a user's frame bucket. ARGV: rate, burst, now. Refills by the time
# elapsed, takes one token; 1 when there was one, 0 when the user is over.
TAKE = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local taken = 0
if tokens >= 1 then
    tokens = tokens - 1
    taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return taken
"""


def sockets_key(user_id: int) -> str:
    return f"notifications:sockets:{int(user_id)}"


def frames_key(user_id: int) -> str:
    return f"notifications:frames:{int(user_id)}"


def shared(layer) -> bool:
    """Whether the limits live in Redis, on the layer's own connections: true of
    channels-redis's core layer and of notifications.layers, which extends it."""
    return hasattr(layer, "connection") and hasattr(layer, "consistent_hash")


def _connection(layer, key: str):
    """The layer's Redis connection for the shard `key` hashes to."""
    return layer.connection(layer.consistent_hash(key))


async def _script(connection, script: str, keys: list[str], args: list) -> int:
    sha = hashlib.sha1(script.encode()).hexdigest()
    try:
        return await connection.evalsha(sha, len(keys), *keys, *args)
    except NoScriptError:  # first use on this server, or after a restart
        return await connection.eval(script, len(keys), *keys, *args)


async def claim_socket(layer, user_id: int, channel: str) -> bool:
    """Count `channel` as one of the user's sockets; False when they have too many."""
    cap = app_settings.MAX_SOCKETS_PER_USER
    if not shared(layer):
        return _claim_here(user_id, channel, cap)
    key = sockets_key(user_id)
    now = time.time()
    claimed = await _script(
        _connection(layer, key), CLAIM, [key], [channel, now, now + TTL, cap, TTL]
    )
    if claimed:
        _open.add(layer, key, channel)
    return bool(claimed)


async def release_socket(layer, user_id: int, channel: str) -> None:
    if not shared(layer):
        _release_here(user_id, channel)
        return
    key = sockets_key(user_id)
    _open.discard(key, channel)
    await _connection(layer, key).zrem(key, channel)


async def take_frame(layer, user_id: int) -> bool:
    """Whether the user may send one more frame now (one token of their bucket)."""
    key = frames_key(user_id)
    rate, burst = app_settings.WS_RATE, app_settings.WS_BURST
    return bool(await _script(_connection(layer, key), TAKE, [key], [rate, burst, time.time()]))


def take(key: str, rate: float, burst: int) -> bool:
    """One token of the bucket at `key` in the app's Redis, for sync callers (a
    view's per-user budget): False when it is empty. Raises RedisError."""
    script = app_redis().register_script(TAKE)
    return bool(script(keys=[key], args=[rate, burst, time.time()]))


# Each user's sockets in this process, for a layer with no Redis to count them in.
_here: dict[int, set[str]] = {}


def _claim_here(user_id: int, channel: str, cap: int) -> bool:
    sockets = _here.get(user_id, set())
    if channel not in sockets and len(sockets) >= cap:
        return False
    _here.setdefault(user_id, sockets).add(channel)
    return True


def _release_here(user_id: int, channel: str) -> None:
    sockets = _here.get(user_id, set())
    sockets.discard(channel)
    if not sockets:
        _here.pop(user_id, None)


class _OpenSockets:
    """This process's claimed sockets, whose entries one task keeps from lapsing.

    One task for the whole process rather than a timer per socket: each
    refresh is a single pipeline per shard, whatever the number of sockets.
    """

    def __init__(self) -> None:
        self.layer = None
        self.entries: set[tuple[str, str]] = set()
        self.task: asyncio.Task | None = None

    def add(self, layer, key: str, channel: str) -> None:
        self.layer = layer
        self.entries.add((key, channel))
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done() or self.task.get_loop() is not loop:
            self.task = loop.create_task(self._keep_fresh())

    def discard(self, key: str, channel: str) -> None:
        self.entries.discard((key, channel))

    async def _keep_fresh(self) -> None:
        while self.entries:
            await asyncio.sleep(REFRESH)
            try:
                await self._refresh()
            except Exception as exc:  # Redis away: entries lapse, sockets close anyway
                log.warning("could not refresh %d socket entries: %r", len(self.entries), exc)

    async def _refresh(self) -> None:
        expiry = time.time() + TTL
        shards: dict[int, list[tuple[str, str]]] = {}
        for key, channel in list(self.entries):
            shards.setdefault(self.layer.consistent_hash(key), []).append((key, channel))
        for index, entries in shards.items():
            async with self.layer.connection(index).pipeline(transaction=False) as pipe:
                for key, channel in entries:
                    pipe.zadd(key, {channel: expiry})
                    pipe.expire(key, TTL)
                await pipe.execute()


_open = _OpenSockets()
