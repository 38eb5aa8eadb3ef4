"""Celery tasks that tell their user how they are doing, with nothing to write in the task.

Add "notifications.celery" to INSTALLED_APPS where Celery runs. A task with a
`user_id` argument then notifies that user when it ends (signals.py); inside a
task, `report_progress(percent, message)` updates the user's progress bar and
`raise UserError("...")` fails it with a message fit to show.
`start_fanout(user_id, title, signatures)` runs many tasks as one job with
one bar and one final notice (fanout.py).
"""

import importlib

_PUBLIC = {
    "report_progress": "reporting",
    "UserError": "reporting",
    "redelivery_options": "redelivery",
    "start_fanout": "fanout",
}


def __getattr__(name: str):
    # Loaded on first use, so that INSTALLED_APPS can name this package
    # before Django is ready.
    if name in _PUBLIC:
        module = importlib.import_module(f"notifications.celery.{_PUBLIC[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'notifications.celery' has no attribute {name!r}")
