"""Each running task's latest progress, kept in Redis so a page that loads or
reconnects mid-task shows its bar at once instead of waiting for the next report.

One hash per user, `notifications:progress:<user_id>`, field task id -> compact
JSON {percent, message, at}. The key's expiry (NOTIFICATIONS_PROGRESS_TTL) is
pushed back on every report, and a field older than that is ignored, so a task
whose worker vanished does not keep a bar forever. The field goes when the
task's final notice is saved (notifications.celery.signals).

This is a convenience over the live messages: every failure here is logged by
the caller and never fails a task or a socket.
"""

import json
from datetime import UTC, datetime, timedelta

from notifications.clients import app_redis
from notifications.conf import app_settings


def key(user_id: int) -> str:
    return f"notifications:progress:{user_id}"


def remember(user_id: int, task_id: str, percent: float, message: str, at: str) -> None:
    """Store a report: one round trip, the write and the new expiry pipelined."""
    state = json.dumps({"percent": percent, "message": message, "at": at}, separators=(",", ":"))
    pipe = app_redis().pipeline(transaction=False)
    pipe.hset(key(user_id), task_id, state)
    pipe.expire(key(user_id), app_settings.PROGRESS_TTL)
    pipe.execute()


def forget(user_id: int, task_id: str) -> None:
    app_redis().hdel(key(user_id), task_id)


def running(user_id: int) -> dict[str, dict]:
    """Task id -> {percent, message, at} for each of the user's tasks still fresh."""
    oldest = datetime.now(UTC) - timedelta(seconds=app_settings.PROGRESS_TTL)
    fresh = {}
    for task_id, raw in app_redis().hgetall(key(user_id)).items():
        state = _parsed(raw)
        if state is not None and datetime.fromisoformat(state["at"]) >= oldest:
            fresh[task_id] = state
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
