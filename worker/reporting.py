"""What a task may use to talk to its user: progress, and a failure message fit to show."""

import inspect
from typing import Any

from celery import Task, current_task

from notifications import send_progress


class UserError(Exception):
    """A failure whose message is written for the user and shown to them as is.

    Any other exception reaches the user as a generic message with a reference;
    tracebacks and internal details stay in the worker's log.
    """


def user_of(task: Task, args: Any, kwargs: Any) -> int | None:
    """The id of the user a task runs for: its `user_id` argument, if it has one.

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


def task_title(task: Task) -> str:
    """A task's name for people: its `notify_title` option, or its function name."""
    title = getattr(task, "notify_title", None)
    if title:
        return title
    name = task.name.rsplit(".", 1)[-1].replace("_", " ")
    return name[:1].upper() + name[1:]


def report_progress(percent: float, message: str = "") -> None:
    """Send the running task's progress to its user's browser tabs.

    Call it from inside a task that has a `user_id` argument; elsewhere it
    does nothing.
    """
    task = current_task
    if task is None or not task.request.id:
        return
    user_id = user_of(task, task.request.args, task.request.kwargs)
    if user_id is not None:
        send_progress(user_id, task.request.id, percent, message)
