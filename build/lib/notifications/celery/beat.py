"""The periodic pruning of read notifications, added to the Celery app's beat schedule.

The entry goes into whatever Celery app is current when Django is ready (the
project's, in a worker or beat process); a project that defines an entry of
the same name keeps its own. NOTIFICATIONS_PRUNE_EVERY = 0 leaves it out.
"""

from celery import current_app

from notifications.conf import app_settings

ENTRY = "notifications-prune-read"


def add_prune_entry() -> None:
    every = app_settings.PRUNE_EVERY
    if every:
        current_app.conf.beat_schedule.setdefault(
            ENTRY, {"task": "notifications.celery.tasks.prune_notifications", "schedule": every}
        )
