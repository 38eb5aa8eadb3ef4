"""Whether a user has a notification socket open now, on any Daphne process.

Presence is the socket count of quota.py read back: each open socket is an
entry in its user's sorted set (`notifications:sockets:<id>`, on the channel
layer's shard for that key) scored by the time it lapses. A process refreshes
its sockets' entries every quota.REFRESH seconds and removes one on
disconnect, so a process that crashed stops counting its users as online
quota.TTL seconds (3 minutes) later at most.

With a channel layer that has no Redis of its own, only this process's
sockets are known (quota._here): good for tests, not for a site.
"""

import time
from collections.abc import Iterable

from channels.layers import get_channel_layer

from notifications import quota
from notifications.clients import host_client


def online(user_ids: Iterable[int]) -> set[int]:
    """Those of `user_ids` with at least one open socket now; one round trip per shard."""
    ids = list(dict.fromkeys(int(i) for i in user_ids))
    if not ids:
        return set()
    layer = get_channel_layer()
    if not quota.shared(layer):
        return {i for i in ids if quota._here.get(i)}
    now = time.time()
    shards: dict[int, list[int]] = {}
    for user_id in ids:
        shards.setdefault(layer.consistent_hash(quota.sockets_key(user_id)), []).append(user_id)
    found: set[int] = set()
    for index, users in shards.items():
        pipe = host_client(layer.hosts[index]).pipeline(transaction=False)
        for user_id in users:
            # Entries scored at or before now have lapsed (their process is gone).
            pipe.zcount(quota.sockets_key(user_id), f"({now}", "+inf")
        found.update(u for u, count in zip(users, pipe.execute(), strict=True) if count)
    return found


def is_online(user_id: int) -> bool:
    return int(user_id) in online([user_id])
