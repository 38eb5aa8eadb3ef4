"""Cancelling a task on behalf of its user (or an operator).

The user hears of it once: a `warning` notice saved under the dedupe key the
task's own ending would use, before the worker is asked to stop it. The
completion handler skips a cancelled task (signals.py), and Celery's
`task_revoked` has no receiver here, so nothing follows the notice.
"""

from celery import current_app
from django.utils.translation import gettext

from notifications import flush
from notifications.celery import fanout_state, owners
from notifications.celery.reporting import task_title, titled
from notifications.celery.signals import forget_progress, in_language_of, notify_once


def title_of(task_id: str, task_name: str) -> str:
    task = current_app.tasks.get(task_name)
    name = fanout_state.title(task_id)
    if name is None:
        name = task_title(task) if task is not None else task_name.rsplit(".", 1)[-1]
    return titled(gettext("{title} cancelled"), str(name))


def cancel(task_id: str, by_user_id: int | None = None) -> bool:
    """Cancel a recorded task; False when it is unknown or not `by_user_id`'s.

    Without `by_user_id` (an operator) any recorded task may be cancelled.
    A running task's prefork process is terminated; a queued one is dropped
    when a worker receives it. For a fan-out job (fanout.py), so are its parts.
    """
    found = owners.owner(task_id)
    if found is None or (by_user_id is not None and found[0] != by_user_id):
        return False
    user_id, task_name = found
    owners.mark_cancelled(task_id)
    # A fan-out job's parts count for nothing from now on; they are revoked with it.
    parts = fanout_state.cancel(task_id)
    # A terminated task never reaches the completion handler that would clear its bar.
    forget_progress(user_id, task_id)
    with in_language_of(user_id):
        title = title_of(task_id, task_name)
    fields = {"title": title, "body": "", "url": "", "level": "warning"}
    notify_once(user_id, fields, task_id, task_name)
    flush()
    current_app.control.revoke([task_id, *parts], terminate=True, signal="SIGTERM")
    return True
