"""Each running task's latest progress, kept in Redis so a page that loads or
reconnects mid-task shows its bar at once instead of waiting for the next report.

One hash per user, `notifications:progress:<user_id>`, field task id -> compact
JSON {percent, message, at}, and beside it `notifications:progress-seq:<user_id>`,
field task id -> the sequence number of that report. Reports of one task can be
sent from several processes (the parts of a fan-out job, a task redelivered to
another worker) and so overtake one another on their way; the number, given
here in one atomic step with the store, orders them: a report older than the
one kept is neither kept nor sent, and a tab ignores a `progress` whose `seq` is
not above the last it showed (widget.js), so a bar never goes back.

The keys' expiry (NOTIFICATIONS_PROGRESS_TTL) is pushed back on every report, and
a field older than that is ignored, so a task whose worker vanished does not keep
a bar forever. The field goes when the task's final notice is saved
(notifications.celery.signals) or the task is cancelled, and a mark of its end
(`notifications:progress-ended:<task_id>`, same expiry) keeps a report still on
its way from a cancelled task's process from bringing the bar back.

Beside it, which worker runs each task (`notifications:progress-worker:<user_id>`,
set when a task starts) and each worker's heartbeat (`notifications:worker:<name>`,
lapsing after NOTIFICATIONS_WORKER_TIMEOUT), so that a task whose worker has died
can be told apart from one that is merely quiet (`stalled`).

This is a convenience over the live messages: every failure here is logged by
the caller and never fails a task or a socket.
"""

import json
from datetime import UTC, datetime, timedelta

from notifications.clients import app_redis
from notifications.conf import app_settings


def key(user_id: int) -> str:
    return f"notifications:progress:{user_id}"


def seq_key(user_id: int) -> str:
    return f"notifications:progress-seq:{user_id}"


def ended_key(task_id: str) -> str:
    return f"notifications:progress-ended:{task_id}"


# KEYS: the user's hash, the task's end mark, the user's sequence hash; ARGV:
# task id, state, expiry (s), the report's sequence number (0: the next one).
# One round trip, and atomic with forget(): a report either lands before the
# task ended (and forget() drops it) or finds the mark and is refused. Returns
# the report's number, or 0 when it is refused (ended, or older than the kept one).
_REMEMBER = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local last = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
local seq = tonumber(ARGV[4])
if seq == 0 then seq = last + 1 elseif seq <= last then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], seq)
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[3], ARGV[3])
return seq
"""


def remember(
    user_id: int, task_id: str, percent: float, message: str, at: str, seq: int = 0
) -> int:
    """Store a report; returns its sequence number (the next one unless `seq` is
    given), or 0 when the task has ended or a later report is kept already."""
    state = json.dumps({"percent": percent, "message": message, "at": at}, separators=(",", ":"))
    script = app_redis().register_script(_REMEMBER)
    keys = [key(user_id), ended_key(task_id), seq_key(user_id)]
    return int(script(keys=keys, args=[task_id, state, app_settings.PROGRESS_TTL, seq]))


def forget(user_id: int, task_id: str) -> None:
    """The task has ended: drop its bar and refuse any report that comes later."""
    client = app_redis()
    worker = client.hget(worker_key(user_id), task_id)
    pipe = client.pipeline(transaction=False)
    pipe.set(ended_key(task_id), 1, ex=app_settings.PROGRESS_TTL)
    pipe.hdel(key(user_id), task_id)
    pipe.hdel(seq_key(user_id), task_id)
    pipe.hdel(worker_key(user_id), task_id)
    if worker:
        pipe.srem(tasks_key(worker), f"{user_id}:{task_id}")
    pipe.execute()


def worker_key(user_id: int) -> str:
    return f"notifications:progress-worker:{user_id}"


def alive_key(worker: str) -> str:
    return f"notifications:worker:{worker}"


def tasks_key(worker: str) -> str:
    """The set of "<user id>:<task id>" a worker has started and not yet ended."""
    return f"notifications:worker-tasks:{worker}"


WORKERS = "notifications:workers"  # sorted set: worker -> the time of its last beat


def now(client) -> float:
    """Redis's clock, which every worker shares whatever its own says."""
    seconds, microseconds = client.time()
    return seconds + microseconds / 1e6


def runs_on(user_id: int, task_id: str, worker: str) -> None:
    """Note the worker that (now) runs the task; a redelivered task's new worker replaces it."""
    pipe = app_redis().pipeline(transaction=False)
    pipe.hset(worker_key(user_id), task_id, worker)
    pipe.expire(worker_key(user_id), app_settings.PROGRESS_TTL)
    pipe.sadd(tasks_key(worker), f"{user_id}:{task_id}")
    pipe.expire(tasks_key(worker), app_settings.PROGRESS_TTL)
    pipe.execute()


def alive(worker: str) -> None:
    """A worker's heartbeat: it counts as alive for WORKER_TIMEOUT seconds."""
    client = app_redis()
    pipe = client.pipeline(transaction=False)
    pipe.set(alive_key(worker), 1, px=max(1, int(app_settings.WORKER_TIMEOUT * 1000)))
    pipe.zadd(WORKERS, {worker: now(client)})
    pipe.execute()


def gone(worker: str) -> None:
    """A worker that stops on purpose is gone at once; the next sweep elsewhere
    tells the users of any task it left (cold shutdown)."""
    pipe = app_redis().pipeline(transaction=False)
    pipe.delete(alive_key(worker))
    pipe.zadd(WORKERS, {worker: 0}, xx=True)
    pipe.execute()


def claim_lost() -> list[tuple[int, str]]:
    """(user id, task id) of each task left running on a worker that stopped beating
    and not started again elsewhere; each lost worker is claimed by one caller only."""
    client = app_redis()
    left = []
    cutoff = now(client) - app_settings.WORKER_TIMEOUT
    for worker in client.zrangebyscore(WORKERS, "-inf", cutoff):
        if not client.zrem(WORKERS, worker):
            continue  # another live worker's sweep has it
        for entry in client.smembers(tasks_key(worker)):
            user, _, task_id = entry.partition(":")
            still_there = client.hget(worker_key(int(user)), task_id) == worker
            if still_there and client.hexists(key(int(user)), task_id):
                left.append((int(user), task_id))
        client.delete(tasks_key(worker))
    return sorted(left)


def stalled(user_id: int, task_ids: list[str]) -> set[str]:
    """Those of the tasks whose worker is known and has stopped beating."""
    if not task_ids:
        return set()
    client = app_redis()
    workers = dict(zip(task_ids, client.hmget(worker_key(user_id), task_ids), strict=True))
    names = sorted({w for w in workers.values() if w})
    if not names:
        return set()
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.exists(alive_key(name))
    living = {name for name, up in zip(names, pipe.execute(), strict=True) if up}
    return {task for task, worker in workers.items() if worker and worker not in living}


def running(user_id: int) -> dict[str, dict]:
    """Task id -> {percent, message, at, seq} for each of the user's tasks still fresh."""
    oldest = datetime.now(UTC) - timedelta(seconds=app_settings.PROGRESS_TTL)
    pipe = app_redis().pipeline()  # MULTI: a state and its number read together
    pipe.hgetall(key(user_id))
    pipe.hgetall(seq_key(user_id))
    states, seqs = pipe.execute()
    fresh = {}
    for task_id, raw in states.items():
        state = _parsed(raw)
        if state is not None and datetime.fromisoformat(state["at"]) >= oldest:
            fresh[task_id] = {**state, "seq": int(seqs.get(task_id) or 0)}
    return fresh


def of(user_id: int, task_id: str) -> dict | None:
    """One of the user's tasks' state, or None when it has none (or is not theirs)."""
    return running(user_id).get(task_id)


def _parsed(raw: str) -> dict | None:
    """A stored state, or None for a field this version cannot read."""
    try:
        state = json.loads(raw)
        datetime.fromisoformat(state["at"])
        return {"percent": state["percent"], "message": state["message"], "at": state["at"]}
    except (ValueError, TypeError, KeyError):
        return None
