"""Each fan-out job's tally, kept in the app's Redis so that parts running in
several worker processes agree on one bar and on who ends the job.

Three keys per job, all lapsing after JOB_TTL: a hash of the job itself
(user, title, total, failed, first readable reason, best percent shown,
finished, cancelled), a hash part id -> percent, and the set of parts that
have ended. Every change is one Lua script, so two parts ending at the same
moment cannot both miss, or both see, the job's end; a part delivered twice
is counted once (the set).
"""

import logging
import math
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from notifications import send_progress
from notifications.clients import app_redis

log = logging.getLogger(__name__)

PREFIX = "fanout-"  # every job id starts with it, so a part knows its job from its group id
JOB_TTL = 24 * 3600  # seconds; a job still running by then is forgotten


def key(job_id: str, part: str = "") -> str:
    return f"notifications:fanout:{job_id}{':' + part if part else ''}"


def job_of(request: Any) -> str | None:
    """The fan-out job a task's request belongs to, or None; no Redis involved."""
    return job_in(getattr(request, "group", None))


def job_in(group_id: Any) -> str | None:
    """`group_id` when it is a fan-out job's id (the group of its parts), else None."""
    return group_id if isinstance(group_id, str) and group_id.startswith(PREFIX) else None


@dataclass(frozen=True)
class Tally:
    job_id: str
    user_id: int
    title: str
    percent: float
    done: int
    total: int
    failed: int
    reason: str  # the first readable failure ("" when none was readable)
    seq: int  # this tally's place among the job's tallies

    @property
    def complete(self) -> bool:
        return self.done >= self.total

    @property
    def message(self) -> str:
        failed = f", {self.failed} failed" if self.failed else ""
        return f"{self.done} of {self.total} done{failed}"


def create(job_id: str, user_id: int, title: str, part_ids: list[str]) -> None:
    """Record a job before its parts are published, so the fastest part finds it."""
    pipe = app_redis().pipeline(transaction=True)
    pipe.hset(key(job_id), mapping={"user": user_id, "title": title, "total": len(part_ids)})
    pipe.hset(key(job_id, "parts"), mapping=dict.fromkeys(part_ids, 0))
    pipe.expire(key(job_id), JOB_TTL)
    pipe.expire(key(job_id, "parts"), JOB_TTL)
    pipe.execute()


# KEYS: job, parts, ended. ARGV: part id, percent, outcome ("" while running,
# "ok" or "failed"), readable reason. Returns nil for a part of no known job
# (or of a cancelled one), else [best percent, ended, total, failed, reason,
# user, title, seq]. `seq` numbers the job's tallies in the order they were
# made, so the bars they send can be put back in that order (progress_state.py).
TALLY = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return nil end
if redis.call('HEXISTS', KEYS[1], 'cancelled') == 1 then return nil end
local outcome = ARGV[3]
if outcome ~= '' then
  if redis.call('SADD', KEYS[3], ARGV[1]) == 1 and outcome == 'failed' then
    redis.call('HINCRBY', KEYS[1], 'failed', 1)
    if ARGV[4] ~= '' then redis.call('HSETNX', KEYS[1], 'reason', ARGV[4]) end
  end
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[5]))
  redis.call('HSET', KEYS[2], ARGV[1], 100)
elseif redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 0 then
  if tonumber(ARGV[2]) > tonumber(redis.call('HGET', KEYS[2], ARGV[1])) then
    redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  end
end
local total = tonumber(redis.call('HGET', KEYS[1], 'total'))
local sum = 0
for _, value in ipairs(redis.call('HVALS', KEYS[2])) do sum = sum + tonumber(value) end
local best = math.max(sum / total, tonumber(redis.call('HGET', KEYS[1], 'best') or '0'))
redis.call('HSET', KEYS[1], 'best', tostring(best))
local ended = redis.call('SCARD', KEYS[3])
if ended >= total then redis.call('HSET', KEYS[1], 'finished', 1) end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local job = redis.call('HMGET', KEYS[1], 'failed', 'reason', 'user', 'title')
return {tostring(best), ended, total, job[1] or '0', job[2] or '', job[3], job[4], seq}
"""


def tally(
    job_id: str, part_id: str, percent: float, outcome: str = "", reason: str = ""
) -> Tally | None:
    """Count a part's progress or its end (`outcome` "ok" or "failed"); None when
    the job is unknown, over, or cancelled."""
    keys = [key(job_id), key(job_id, "parts"), key(job_id, "ended")]
    found = app_redis().eval(TALLY, 3, *keys, part_id, percent, outcome, reason, JOB_TTL)
    if found is None:
        return None
    best, ended, total, failed, reason, user, title, seq = found
    return Tally(job_id, int(user), title, float(best), ended, total, int(failed), reason, seq)


def show(progress: Tally) -> None:
    """Push the job's bar, numbered by its tally: of two parts' tallies sent from
    two processes, the later one wins whichever arrives first, and one that
    comes after the job's end is refused (progress_state.remember)."""
    send_progress(
        progress.user_id, progress.job_id, progress.percent, progress.message, progress.seq
    )


def report_part(job_id: str, part_id: str, percent: float) -> None:
    """A running part's own progress, folded into its job's bar (report_progress)."""
    try:
        percent = float(percent)
    except (TypeError, ValueError):
        percent = math.nan
    if not math.isfinite(percent):
        log.warning("progress of part %s not counted: %r is not a percent", part_id, percent)
        return
    try:
        progress = tally(job_id, part_id, min(100.0, max(0.0, percent)))
        if progress is not None:
            show(progress)
    except RedisError as exc:
        log.warning("progress of job %s not counted: %r", job_id, exc)


def title(job_id: str) -> str | None:
    """The job's title, or None for a task id that names no fan-out job."""
    if not job_id.startswith(PREFIX):
        return None
    return app_redis().hget(key(job_id), "title")


def cancel(job_id: str) -> list[str]:
    """Mark the job cancelled (its parts then count for nothing); returns its part ids."""
    if not job_id.startswith(PREFIX):
        return []
    client = app_redis()
    if not client.exists(key(job_id)):
        return []
    client.hset(key(job_id), "cancelled", 1)
    return list(client.hkeys(key(job_id, "parts")))


def delete(job_id: str) -> None:
    app_redis().delete(key(job_id), key(job_id, "parts"), key(job_id, "ended"))
