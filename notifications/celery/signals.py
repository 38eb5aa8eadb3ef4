"""Task lifecycle notifications, wired through Celery signals.

A task called with a `user_id` argument notifies that user when it succeeds
(`success`) or fails for good (`error`); retries notify nothing. The notice
is keyed by task id, so a task delivered twice (a worker killed after the
notice, a visibility timeout) still gives the user exactly one.

A fan-out job's parts notify nothing: the job sends one notice for all of
them (fanout.py).

A cancelled task's notice is the `warning` cancel.py saved: its ending
(success, or the error of a terminated process) notifies nothing more.

Every such task ends in a notice: what does not fit the limits is shortened,
and a notice that is still refused is sent bare (title and level). Only a
`user_id` that names nobody ends in none, since there is nobody to tell.

notify() and send_progress() queue their pushes and return; each task ends by
waiting for its pushes to leave, so a worker process killed between tasks
has none in hand.
"""

import hashlib
import logging
from typing import Any

from celery import states
from celery.signals import task_postrun, worker_process_shutdown
from django.utils import translation
from django.utils.translation import gettext
from redis.exceptions import RedisError

from notifications import flush, notify, preferences, progress_state, validation
from notifications.celery import fanout_state
from notifications.celery.owners import was_cancelled
from notifications.celery.reporting import (
    UserError,
    as_user_id,
    task_title,
    titled,
    user_argument,
)
from notifications.limits import (
    BODY_MAX,
    DEDUPE_KEY_MAX,
    TASK_ID_MAX,
    URL_MAX,
    shorten,
)

log = logging.getLogger(__name__)


def success_details(retval: Any) -> tuple[str, str]:
    """(body, url) from a task's return value: a string, or a dict with message and url."""
    if isinstance(retval, str):
        return retval, ""
    if isinstance(retval, dict):
        url = retval.get("url")
        return str(retval.get("message", "")), url if isinstance(url, str) else ""
    return "", ""


def failure_body(exc: Any, task_id: str) -> str:
    if isinstance(exc, UserError):
        return str(exc)
    return gettext("Something went wrong on our side. Reference: {task_id}.").format(
        task_id=task_id
    )


def outcome_fields(task: Any, task_id: str, state: str, retval: Any) -> dict:
    """The notice's title, body, url and level, within the limits notify() enforces.

    A title, message or url can be any length, and the notice must still be
    saved: the title keeps its "finished"/"failed", the body is shortened,
    and a url that does not fit, or that the link rule refuses
    (validation.link), is left out: the notice is kept without its link.
    """
    if state == states.SUCCESS:
        body, url = success_details(retval)
        level, template = "success", gettext("{title} finished")
    else:
        body, url = failure_body(retval, task_id), ""
        level, template = "error", gettext("{title} failed")
    return {
        "title": titled(template, str(task_title(task))),
        "body": shorten(body, BODY_MAX),
        "url": url if len(url) <= URL_MAX and validation.link(url) else "",
        "level": level,
    }


def in_language_of(user_id: int) -> translation.override:
    """Write a task's notice in its recipient's language (their preference, or
    the site's LANGUAGE_CODE): one query, once per task."""
    return translation.override(preferences.language_of(user_id))


def notify_once(user_id: int, fields: dict, task_id: str, task_name: str) -> None:
    """Notify `fields`, or, when notify() still refuses them, the bare title and level."""
    # A task id is a uuid unless the caller chose one; a longer key than the
    # column holds is hashed, which keeps it unique per task.
    key = f"task:{task_id}"
    if len(key) > DEDUPE_KEY_MAX:
        key = f"task-sha256:{hashlib.sha256(task_id.encode()).hexdigest()}"
    try:
        notify(user_id, **fields, task_id=task_id, data={"task": task_name}, dedupe_key=key)
        return
    except ValueError as exc:
        log.warning("task %s: notice refused (%s); sending it bare", task_id, exc)
    try:
        shown_id = task_id if len(task_id) <= TASK_ID_MAX else None
        notify(user_id, fields["title"], level=fields["level"], task_id=shown_id, dedupe_key=key)
    except ValueError as exc:  # e.g. the user was deleted while the task ran
        log.warning("no lifecycle notification for task %s: %s", task_id, exc)


@task_postrun.connect
def notify_outcome(
    task_id: str, task: Any, args: Any, kwargs: Any, retval: Any, state: str, **_: Any
) -> None:
    if state not in (states.SUCCESS, states.FAILURE):
        return
    if fanout_state.job_of(getattr(task, "request", None)) is not None:
        return  # a fan-out job's part: its job sends the one notice (fanout.py)
    argument = user_argument(task, args, kwargs)
    if argument is None:
        return
    user_id = as_user_id(argument)
    if user_id is None:
        log.warning(
            "no lifecycle notification for task %s: user_id %r names no user", task_id, argument
        )
        return
    forget_progress(user_id, task_id)
    if was_cancelled(task_id):
        return  # its one notice, "… cancelled", is saved already
    with in_language_of(user_id):
        fields = outcome_fields(task, task_id, state, retval)
    notify_once(user_id, fields, task_id, task.name)


def forget_progress(user_id: int, task_id: str) -> None:
    """Drop the task's kept progress before its final notice is saved, so a tab
    that opens from now on shows the notice alone, never a bar left behind."""
    try:
        progress_state.forget(user_id, task_id)
    except RedisError as exc:  # the bar lapses with NOTIFICATIONS_PROGRESS_TTL
        log.warning("progress of task %s not cleared: %r", task_id, exc)


@task_postrun.connect
def send_pushes(**_: Any) -> None:
    """Runs after notify_outcome (receivers run in the order they connect)."""
    if not flush():
        log.warning("pushes still queued after the send timeout")


@worker_process_shutdown.connect
def send_pushes_before_exit(**_: Any) -> None:
    flush()
