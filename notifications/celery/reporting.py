"""What a task may use to talk to its user: progress, and a failure message fit to show."""

import inspect
import logging
from typing import Any

from celery import Task, current_task

from notifications import send_progress
from notifications.celery import fanout_state
from notifications.limits import INT_MAX, TITLE_MAX, shorten

log = logging.getLogger(__name__)


class UserError(Exception):
    """A failure whose message is written for the user and shown to them as is.

    Any other exception reaches the user as a generic message with a reference;
    tracebacks and internal details stay in the worker's log.
    """


def user_argument(task: Task, args: Any, kwargs: Any) -> Any:
    """A task's `user_id` argument as it was passed (keyword or positional), or None.

    The id travels as a task argument because headers have proved unreliable
    across Celery versions.
    """
    kwargs = kwargs or {}
    if "user_id" in kwargs:
        return kwargs["user_id"]
    try:
        bound = inspect.signature(task.run).bind_partial(*(args or ()), **kwargs)
    except TypeError:
        return None
    return bound.arguments.get("user_id")


def as_user_id(value: Any) -> int | None:
    """`value` as a user id: an int, or a string of ASCII digits (as forms and JSON
    clients send ids); None when it cannot name a user.

    `str.isdigit()` alone accepts digits such as "²" that int() refuses, and
    ids beyond 64 bits would fail in the database driver instead.
    """
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 < value <= INT_MAX else None


def user_of(task: Task, args: Any, kwargs: Any) -> int | None:
    """The id of the user a task runs for (see `user_argument`), if it names one."""
    return as_user_id(user_argument(task, args, kwargs))


def task_title(task: Task) -> str:
    """A task's name for people: its `notify_title` option, or its function name."""
    title = getattr(task, "notify_title", None)
    if title:
        return title
    name = task.name.rsplit(".", 1)[-1].replace("_", " ")
    return name[:1].upper() + name[1:]


def titled(template: str, name: str) -> str:
    """A translated `template` ("{title} finished") around a task's `name`,
    the name shortened so that the whole title fits TITLE_MAX."""
    budget = TITLE_MAX - (len(template) - len("{title}"))
    return template.replace("{title}", shorten(name, budget))


def report_progress(percent: float, message: str = "") -> None:
    """Send the running task's progress to its user's browser tabs.

    Call it from inside a task that has a `user_id` argument; elsewhere it
    does nothing. A report that cannot be sent (a percent that is not a
    finite number, say) is logged, never raised: progress is not worth
    failing the task for.
    """
    task = current_task
    if task is None or not task.request.id:
        return
    job_id = fanout_state.job_of(task.request)
    if job_id is not None:  # a part of a fan-out job moves its job's one bar
        fanout_state.report_part(job_id, task.request.id, percent)
        return
    user_id = user_of(task, task.request.args, task.request.kwargs)
    if user_id is not None:
        try:
            send_progress(user_id, task.request.id, percent, message)
        except (TypeError, ValueError) as exc:
            log.warning("progress of task %s not sent: %s", task.request.id, exc)
