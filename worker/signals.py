"""Task lifecycle notifications, wired through Celery signals.

A task called with a `user_id` argument notifies that user when it succeeds
(`success`) or fails for good (`error`); retries notify nothing. The notice
is keyed by task id, so a task delivered twice (a worker killed after the
notice, a visibility timeout) still gives the user exactly one.

notify() and send_progress() queue their pushes and return; each task ends by
waiting for its pushes to leave, so a worker process killed between tasks
has none in hand.
"""

import logging
from typing import Any

from celery import states
from celery.signals import task_postrun, worker_process_shutdown

from notifications import flush, notify
from worker.reporting import UserError, task_title, user_of

log = logging.getLogger(__name__)


def success_details(retval: Any) -> tuple[str, str]:
    """(body, url) from a task's return value: a string, or a dict with message and url."""
    if isinstance(retval, str):
        return retval, ""
    if isinstance(retval, dict):
        return str(retval.get("message", "")), str(retval.get("url", ""))
    return "", ""


def failure_body(exc: Any, task_id: str) -> str:
    if isinstance(exc, UserError):
        return str(exc)
    return f"Something went wrong on our side. Reference: {task_id}."


@task_postrun.connect
def notify_outcome(
    task_id: str, task: Any, args: Any, kwargs: Any, retval: Any, state: str, **_: Any
) -> None:
    if state not in (states.SUCCESS, states.FAILURE):
        return
    user_id = user_of(task, args, kwargs)
    if user_id is None:
        return
    title = task_title(task)
    if state == states.SUCCESS:
        body, url = success_details(retval)
        level, title = "success", f"{title} finished"
    else:
        body, url = failure_body(retval, task_id), ""
        level, title = "error", f"{title} failed"
    try:
        notify(
            user_id,
            title,
            body=body,
            url=url,
            level=level,
            task_id=task_id,
            data={"task": task.name},
            dedupe_key=f"task:{task_id}",
        )
    except ValueError as exc:  # e.g. the user was deleted while the task ran
        log.warning("no lifecycle notification for task %s: %s", task_id, exc)


@task_postrun.connect
def send_pushes(**_: Any) -> None:
    """Runs after notify_outcome (receivers run in the order they connect)."""
    if not flush():
        log.warning("pushes still queued after the send timeout")


@worker_process_shutdown.connect
def send_pushes_before_exit(**_: Any) -> None:
    flush()
