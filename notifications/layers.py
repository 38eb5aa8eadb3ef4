"""The recommended channel layer: channels-redis with a pool that waits, one
batched reader per process, and ordered, repaired group sends.

    CHANNEL_LAYERS = {"default": {"BACKEND": "notifications.layers.RedisChannelLayer",
                                  "CONFIG": {"hosts": [...]}}}   # channels-redis's options

It subclasses channels-redis and reads its internals, so it checks them at
import (notifications/probes.py): on a release that lacks one, RedisChannelLayer
is the library's own layer with the blocking pools (PlainRedisChannelLayer),
with a WARNING naming what is missing, and the import never fails. Checked
against channels-redis 4.2 and 4.3.

Measured limits of channels-redis 4.3 on redis-py 8 lifted here (see
bench/README.md for the figures):

- redis-py 8's asyncio pool holds at most 100 connections and raises
  MaxConnectionsError past that instead of waiting. Every WebSocket handshake
  runs a group_add, so a reconnect storm of a few hundred browsers failed half
  of its group_adds (980 of 2,000 sockets closed with 4503). A blocking pool of
  the same size queues those commands for a free connection instead.
- All sockets of a Daphne process share one inbound Redis queue, and the
  library pops it one message at a time with four sequential round trips
  (restore backup, BZPOPMIN, back up, clean), about 1,000 messages/s per
  process on an idle machine and half that under load, so latency grew without
  bound above that rate. Here one script pops up to `receive_batch` messages
  and backs them up in one round trip, and one DEL clears the backup after they
  are handed to their consumers: the same at-least-once hand-over (a read
  cancelled mid-way leaves its batch in the backup, restored by the next one),
  two round trips per batch instead of four per message. One reader task per
  process does this for every waiting consumer (see receive).
- group_send took four sequential round trips (expire members, read them,
  expire messages, the capacity script sent in full each time). Here it takes
  two: one cached script (EVALSHA) that expires and reads the members, then
  one that expires, checks capacity and adds; group_send_many does the same
  for many groups at once (a broadcast), a script call per thousand groups.
  It also returns how many channels were over capacity, which the library
  only logs at INFO, and adds a dropped message again, to the full keys only,
  until its queue drains (see group_send).
- The library scores queued messages by time, and members of equal score pop
  in byte order (random, as each starts with a random prefix): two messages
  sent in one instant could swap. Here a queue pops in arrival order.
"""

import asyncio
import hashlib
import logging
import time
from collections import deque

from channels_redis.core import RedisChannelLayer as BaseRedisChannelLayer
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import NoScriptError

from notifications import clients, metrics, probes

log = logging.getLogger(__name__)

# The library's methods RedisChannelLayer calls or overrides.
INTERNALS = (
    "create_pool",
    "connection",
    "consistent_hash",
    "non_local_name",
    "deserialize",
    "close_pools",
    "require_valid_group_name",
    "_group_key",
    "_backup_channel_name",
    "_map_channel_keys_to_connection",
)

# Restore an earlier receive's unprocessed backup (as the library does), then pop
# up to ARGV[1] messages in order and back them up until they are handed over.
POP_BATCH = """
local backed_up = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = #backed_up, 1, -2 do
    redis.call('ZADD', KEYS[1], backed_up[i], backed_up[i - 1])
end
redis.call('DEL', KEYS[2])
local popped = redis.call('ZPOPMIN', KEYS[1], ARGV[1])
for i = 1, #popped, 2 do
    redis.call('ZADD', KEYS[2], popped[i + 1], popped[i])
end
return popped
"""

# Per channel key: drop expired messages, then add the message unless the key
# is at capacity. ARGV: messages, capacities, now, expiry. Returns the 1-based
# positions of the keys that were over capacity (their message was not added).
# A queue is a sorted set popped by score, and members of equal score pop in
# byte order: each message scores above the key's newest (by a microsecond when
# `now` is not), so a key pops in the order its messages arrived, batch or not.
GROUP_SEND = """
local n = #KEYS
local now = tonumber(ARGV[2 * n + 1])
local expiry = tonumber(ARGV[2 * n + 2])
local over = {}
for i = 1, n do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, now - expiry)
    if redis.call('ZCARD', KEYS[i]) < tonumber(ARGV[n + i]) then
        local score = now
        local newest = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')[2]
        if newest and tonumber(newest) >= score then
            score = tonumber(newest) + 0.000001
        end
        redis.call('ZADD', KEYS[i], score, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        table.insert(over, i)
    end
end
return over
"""
GROUP_SEND_SHA = hashlib.sha1(GROUP_SEND.encode()).hexdigest()
# Messages per script call in group_send_many (a key may repeat: one Daphne
# process holds the sockets of many users).
SEND_CHUNK = 500

# Per group key: drop members older than ARGV[1], then list the rest. One
# script call per READ_CHUNK groups: a pipeline of two commands per group
# spent longer packing and parsing them in Python than Redis took to run them
# (a broadcast to 5,000 users read its members in about 250 ms that way).
READ_MEMBERS = """
local members = {}
for i = 1, #KEYS do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, ARGV[1])
    members[i] = redis.call('ZRANGE', KEYS[i], 0, -1)
end
return members
"""
READ_MEMBERS_SHA = hashlib.sha1(READ_MEMBERS.encode()).hexdigest()
READ_CHUNK = 1000


def _run(client, sha: str, script: str, keys: list, args: list):
    """A script call on a sync client, loading the script on first use (or after SCRIPT FLUSH)."""
    try:
        return client.evalsha(sha, len(keys), *keys, *args)
    except NoScriptError:
        return client.eval(script, len(keys), *keys, *args)


async def _arun(client, sha: str, script: str, keys: list, args: list):
    """_run() on an asyncio client."""
    try:
        return await client.evalsha(sha, len(keys), *keys, *args)
    except NoScriptError:
        return await client.eval(script, len(keys), *keys, *args)


# Seconds between attempts to add a dropped message again: its process's queue
# was full (a stalled Daphne); these give it about 5 s to drain.
REPAIR_DELAYS = (0.05, 0.2, 0.5, 1.0, 3.0)


class BlockingSentinelConnectionPool(SentinelConnectionPool, BlockingConnectionPool):
    """A pool for the primary a Sentinel names that waits for a free connection.

    Sentinel's own pool asks the sentinels for the current primary whenever it
    opens a connection, so after a failover new connections reach the new
    primary; mixed with the blocking pool, a reconnect storm after that
    failover queues its commands instead of failing past max_connections.
    """


def sentinel_pool(host: dict) -> BlockingSentinelConnectionPool:
    """The pool for a host of the Sentinel form channels-redis accepts:
    {"sentinels": [(host, port), ...], "master_name": ..., "sentinel_kwargs": {...}, ...},
    the remaining keys being the primary's connection options."""
    host = dict(host)
    sentinels = Sentinel(host.pop("sentinels"), sentinel_kwargs=host.pop("sentinel_kwargs", None))
    return BlockingSentinelConnectionPool(host.pop("master_name"), sentinels, **host)


class PlainRedisChannelLayer(BaseRedisChannelLayer):
    """The library's layer with pools that wait, taking RedisChannelLayer's options:
    what RedisChannelLayer is on a channels-redis that lacks one of INTERNALS."""

    def __init__(
        self,
        *args,
        receive_batch: int = 100,
        repair_delays: tuple[float, ...] = REPAIR_DELAYS,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.receive_batch = receive_batch
        self.repair_delays = repair_delays

    def create_pool(self, index: int):
        host = dict(self.hosts[index])
        if "address" in host:
            return BlockingConnectionPool.from_url(host.pop("address"), **host)
        if "master_name" in host:  # the library's Sentinel form, as channels_redis.utils reads it
            return sentinel_pool(host)
        return super().create_pool(index)  # (host, port) pairs: the library's own pool


class RedisChannelLayer(PlainRedisChannelLayer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._repairs: set[asyncio.Future] = set()
        self._waiters: dict[str, asyncio.Future] = {}
        self._buffers: dict[str, deque] = {}
        self._reader: asyncio.Task | None = None
        # The buffers as they were at the last sweep, and when (see _read).
        self._swept_at = time.monotonic()
        self._at_last_sweep: dict[str, deque] = {}

    async def receive(self, channel: str) -> dict:
        """The next message for `channel`.

        The library gives every waiting consumer a bounded asyncio.Queue, and
        each wait two tasks, a lock and an asyncio.wait: about 5 KB per idle
        socket and most of Daphne's CPU per relayed message. Here a consumer
        waits on a bare future, and one reader task per process pops batches
        off the process's Redis queue and hands each message to its channel's
        future, or to a buffer when that consumer is busy. The reader runs
        while anyone waits; what arrives while nobody does stays in Redis.
        """
        if "!" not in channel:
            return await super().receive(channel)
        buffered = self._buffers.get(channel)
        if buffered:
            message = buffered.popleft()
            if not buffered:
                del self._buffers[channel]
            return message
        loop = asyncio.get_running_loop()
        waiter = self._waiters[channel] = loop.create_future()
        if self._reader is None or self._reader.done():
            self._reader = loop.create_task(self._read(channel))
        try:
            return await waiter
        except asyncio.CancelledError:
            # The consumer is gone (or gave up waiting): like the library, drop its buffer.
            self._buffers.pop(channel, None)
            raise
        finally:
            if self._waiters.get(channel) is waiter:
                del self._waiters[channel]

    async def _read(self, channel: str) -> None:
        """Hand popped messages over until nobody waits; failures go to the waiters."""
        try:
            while self._waiters:
                for target, message in await self._pop_batch(channel):
                    waiter = self._waiters.pop(target, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(message)
                        continue
                    buffer = self._buffers.get(target)
                    if buffer is None:
                        buffer = self._buffers[target] = deque(maxlen=self.capacity)
                    elif len(buffer) == buffer.maxlen:
                        self._record("overflow", 1)  # the oldest goes; `previous` repairs it
                    buffer.append(message)
                if time.monotonic() - self._swept_at > self.expiry:
                    # A buffer not emptied since the last sweep belongs to a socket
                    # that closed while a message was on its way: drop it.
                    for name, buffer in self._at_last_sweep.items():
                        if self._buffers.get(name) is buffer:
                            del self._buffers[name]
                    self._swept_at, self._at_last_sweep = time.monotonic(), dict(self._buffers)
        except Exception as exc:  # Redis away: each waiting consumer fails as with the library
            for waiter in self._waiters.values():
                if not waiter.done():
                    waiter.set_exception(exc)

    async def _pop_batch(self, channel: str) -> list[tuple[str, dict]]:
        """(channel, message) pairs popped off this process's queue, in order."""
        # Every channel of this process shares one queue, on the shard of its common name.
        process_channel = self.non_local_name(channel)
        channel_key = self.prefix + process_channel
        backup = self._backup_channel_name(channel_key)
        connection = self.connection(self.consistent_hash(process_channel))
        await self.receive_clean_locks.acquire(channel_key)
        try:
            contents: list[bytes] = []
            while not contents:
                popped = await connection.eval(
                    POP_BATCH, 2, channel_key, backup, self.receive_batch
                )
                contents = popped[0::2]
                if not contents:
                    # Nothing queued: block like the library does, backing the message up.
                    result = await connection.bzpopmin(channel_key, timeout=self.brpop_timeout)
                    if result is not None:
                        _, member, score = result
                        await connection.zadd(backup, {member: float(score)})
                        contents = [member]
            # No await from here to the return: the batch reaches the consumers whole.
            cleaner = asyncio.ensure_future(connection.delete(backup))
            self.receive_cleaners.append(cleaner)

            def cleaned(task: asyncio.Future) -> None:
                self.receive_cleaners.remove(task)
                self.receive_clean_locks.release(channel_key)

            cleaner.add_done_callback(cleaned)
        except BaseException:
            self.receive_clean_locks.release(channel_key)
            raise
        pairs = []
        for content in contents:
            message = self.deserialize(content)
            # A group_send names every channel of this process in the group at once.
            targets = message.pop("__asgi_channel__", channel)
            for target in targets if isinstance(targets, list) else [targets]:
                pairs.append((target, message))
        return pairs

    async def close_pools(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await super().close_pools()

    async def group_send(self, group: str, message: dict) -> int:
        """Send to every channel in the group; returns how many were over capacity.

        The library drops such a message with an INFO log. Here it is counted,
        and added again to just the full keys (so no other socket gets it twice)
        after each of REPAIR_DELAYS while the queue drains; only a queue that
        stays full through all of them loses it, with an ERROR log. Either way
        the database row remains, and a reconnecting client replays it.
        """
        return await self.group_send_many([(group, message)])

    async def group_send_many(self, pairs: list[tuple[str, dict]]) -> int:
        """group_send for many (group, message) pairs in a few round trips.

        One script call per READ_CHUNK groups reads their members, then one
        per SEND_CHUNK messages adds them all: a notice to 5,000 users costs
        about fifteen round trips instead of 20,000. Returns how many were over
        capacity.
        """
        items_by_index: dict[int, list[tuple]] = {}
        for index, host_pairs in self._by_host(pairs).items():
            members = []
            for keys, args in self._member_reads(host_pairs):
                members += await _arun(
                    self.connection(index), READ_MEMBERS_SHA, READ_MEMBERS, keys, args
                )
            self._address(host_pairs, members, items_by_index)
        over_by_index = {}
        for index, items in items_by_index.items():
            for start in range(0, len(items), SEND_CHUNK):
                chunk = items[start : start + SEND_CHUNK]
                over_by_index.setdefault(index, []).extend(await self._add(index, chunk))
        return self.repair(over_by_index)

    def group_send_many_now(self, pairs: list[tuple[str, dict]]) -> dict[int, list[tuple]]:
        """group_send_many for sync code, in the calling thread, with a sync client.

        The same two round trips, without handing the events to an event
        loop in another thread: a caller that keeps the GIL busy (a task
        crunching numbers between its progress reports) would hold such a
        thread back by up to the interpreter's switch interval (5 ms), and the
        hand-over itself cost about as much as the database write. Raises on
        any Redis error; returns the items that were over capacity, by host,
        for `repair()` on an event loop.
        """
        items_by_index: dict[int, list[tuple]] = {}
        for index, host_pairs in self._by_host(pairs).items():
            client = self.sync_connection(index)
            members = []
            for keys, args in self._member_reads(host_pairs):
                members += _run(client, READ_MEMBERS_SHA, READ_MEMBERS, keys, args)
            self._address(host_pairs, members, items_by_index)
        over_by_index = {}
        for index, items in items_by_index.items():
            client = self.sync_connection(index)
            for start in range(0, len(items), SEND_CHUNK):
                chunk = items[start : start + SEND_CHUNK]
                keys, args = self._script_arguments(chunk)
                over = _run(client, GROUP_SEND_SHA, GROUP_SEND, keys, args)
                over_by_index.setdefault(index, []).extend(chunk[int(i) - 1] for i in over)
        return {index: over for index, over in over_by_index.items() if over}

    def sync_connection(self, index: int):
        """A sync Redis client of host `index` (one pool per process)."""
        return clients.host_client(self.hosts[index], decode=False)

    def _by_host(self, pairs: list[tuple[str, dict]]) -> dict[int, list[tuple[str, dict]]]:
        by_host: dict[int, list[tuple[str, dict]]] = {}
        for group, message in pairs:
            assert self.require_valid_group_name(group), "Group name not valid"
            by_host.setdefault(self.consistent_hash(group), []).append((group, message))
        return by_host

    def _member_reads(self, host_pairs: list[tuple[str, dict]]) -> list[tuple[list, list]]:
        """(keys, args) of the READ_MEMBERS calls that read each group's live members."""
        oldest = int(time.time()) - self.group_expiry
        keys = [self._group_key(group) for group, _ in host_pairs]
        return [
            (keys[start : start + READ_CHUNK], [oldest])
            for start in range(0, len(keys), READ_CHUNK)
        ]

    def _address(
        self, host_pairs: list[tuple[str, dict]], replies: list, items_by_index: dict
    ) -> None:
        """Add (key, payload, capacity) for each member to `items_by_index`;
        `replies` holds each group's members, in the order of `host_pairs`."""
        for (group, message), members in zip(host_pairs, replies, strict=True):
            if not members:
                continue
            names = [m.decode("utf8") if isinstance(m, bytes) else m for m in members]
            try:
                by_connection, payloads, capacities = self._map_channel_keys_to_connection(
                    names, message
                )
            except Exception as exc:  # e.g. an integer msgpack cannot hold
                # Serialised one by one, so one bad message is all that is lost.
                log.warning("dropped a message to %s that cannot be serialised: %r", group, exc)
                self._record("unserialisable", 1)
                continue
            for target, keys in by_connection.items():
                items_by_index.setdefault(target, []).extend(
                    (k, payloads[k], capacities[k]) for k in keys
                )

    def repair(self, over_by_index: dict[int, list[tuple]]) -> int:
        """Count what was over capacity and add it again in the background, on
        the running loop; returns how many."""
        dropped = 0
        for index, over in over_by_index.items():
            if over:
                dropped += len(over)
                self._record("dropped", len(over))
                task = asyncio.ensure_future(self._repair(index, over))
                self._repairs.add(task)
                task.add_done_callback(self._repairs.discard)
        if dropped:
            log.warning("%s message(s) over capacity; retrying", dropped)
        return dropped

    def _script_arguments(self, items: list[tuple]) -> tuple[list, list]:
        keys = [key for key, _, _ in items]
        args = [
            *(message for _, message, _ in items),
            *(capacity for _, _, capacity in items),
            time.time(),
            int(self.expiry),
        ]
        return keys, args

    async def _add(self, index: int, items: list[tuple]) -> list[tuple]:
        """Add each (key, message, capacity) unless full; returns the items that were full."""
        keys, args = self._script_arguments(items)
        over = await _arun(self.connection(index), GROUP_SEND_SHA, GROUP_SEND, keys, args)
        return [items[int(position) - 1] for position in over]

    async def _repair(self, index: int, items: list[tuple]) -> None:
        for delay in self.repair_delays:
            await asyncio.sleep(delay)
            try:
                still_full = await self._add(index, items)
            except Exception as exc:  # Redis away: keep trying until the delays run out
                log.warning("retrying %s dropped message(s) failed: %r", len(items), exc)
                continue
            self._record("repaired", len(items) - len(still_full))
            items = still_full
            if not items:
                return
        self._record("lost", len(items))
        log.error(
            "%s message(s) lost: their Daphne's inbound queue stayed full for %.1f s",
            len(items),
            sum(self.repair_delays),
        )

    def _record(self, outcome: str, count: int) -> None:
        if count:
            metrics.inc(f'notifications_channel_layer_drops_total{{outcome="{outcome}"}}', count)


if _lacking := probes.missing(BaseRedisChannelLayer, *INTERNALS):
    probes.skipped(
        "channels-redis", "the batched reader and the ordered, repaired group sends", _lacking
    )
    RedisChannelLayer = PlainRedisChannelLayer  # noqa: F811 (the fallback the docstring names)
