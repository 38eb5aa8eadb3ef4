"""Who each task runs for, kept in the app's Redis so a cancel can check it.

Recorded when a task with a `user_id` argument is published (queued tasks can
be cancelled too) and again when it starts (a producer without this app, such
as another service, publishes without recording). Entries lapse after
OWNER_TTL: a task still running by then can no longer be cancelled by its user.
A fan-out job's parts are not recorded: the job is, and is cancelled whole (fanout.py).
"""

import logging
from typing import Any

from celery import current_app
from celery.signals import before_task_publish, task_prerun
from redis.exceptions import RedisError

from notifications.celery import fanout_state
from notifications.celery.reporting import as_user_id, user_of
from notifications.clients import app_redis

log = logging.getLogger(__name__)

OWNER_TTL = 24 * 3600  # seconds
CANCELLED = "cancelled"


def key(task_id: str) -> str:
    return f"notifications:task:{task_id}"


def record(task_id: str, user_id: int, task_name: str) -> None:
    """Remember the task's owner and name; a Redis outage must not stop the task."""
    try:
        client = app_redis()
        with client.pipeline() as pipe:
            pipe.hset(key(task_id), mapping={"user": user_id, "name": task_name})
            pipe.expire(key(task_id), OWNER_TTL)
            pipe.execute()
    except RedisError as exc:
        log.warning("owner of task %s not recorded: %s", task_id, exc)


def owner(task_id: str) -> tuple[int, str] | None:
    """(user id, task name) of a recorded task, or None."""
    entry = app_redis().hgetall(key(task_id))
    user_id = as_user_id(entry.get("user"))
    return (user_id, entry.get("name", "")) if user_id is not None else None


def mark_cancelled(task_id: str) -> None:
    app_redis().hset(key(task_id), CANCELLED, 1)


def was_cancelled(task_id: str) -> bool:
    try:
        return bool(app_redis().hexists(key(task_id), CANCELLED))
    except RedisError as exc:
        log.warning("could not tell whether task %s was cancelled: %s", task_id, exc)
        return False


def user_in(task_name: str, args: Any, kwargs: Any) -> int | None:
    task = current_app.tasks.get(task_name)
    if task is not None:
        return user_of(task, args, kwargs)
    return as_user_id((kwargs or {}).get("user_id"))


@before_task_publish.connect
def record_on_publish(sender: str, body: Any, headers: dict | None = None, **_: Any) -> None:
    # Message protocol 2: the id is a header and the body is (args, kwargs, embed).
    if not headers or "id" not in headers or not isinstance(body, tuple | list) or len(body) < 2:
        return
    if fanout_state.job_in(headers.get("group")) is not None:
        return  # a fan-out job's part is cancelled with its job, not on its own
    user_id = user_in(sender, body[0], body[1])
    if user_id is not None:
        record(headers["id"], user_id, sender)


@task_prerun.connect
def record_on_start(task_id: str, task: Any, args: Any, kwargs: Any, **_: Any) -> None:
    if fanout_state.job_of(task.request) is not None:
        return
    user_id = user_of(task, args, kwargs)
    if user_id is not None:
        record(task_id, user_id, task.name)
