"""The periodic pruning of read notifications and the email digest, in the beat schedule.

The entries go into whatever Celery app is current when Django is ready (the
project's, in a worker or beat process); a project that defines an entry of
the same name keeps its own. NOTIFICATIONS_PRUNE_EVERY = 0 leaves pruning out;
the digest runs every NOTIFICATIONS_DIGEST_EVERY seconds once
NOTIFICATIONS_SITE_URL is set (its links need it), and 0 leaves it out.
"""

from celery import current_app

from notifications.conf import app_settings

ENTRY = "notifications-prune-read"
DIGEST_ENTRY = "notifications-email-digest"


def add_prune_entry() -> None:
    every = app_settings.PRUNE_EVERY
    if every:
        current_app.conf.beat_schedule.setdefault(
            ENTRY, {"task": "notifications.celery.tasks.prune_notifications", "schedule": every}
        )


def add_digest_entry() -> None:
    every = app_settings.DIGEST_EVERY
    if every and app_settings.SITE_URL:
        current_app.conf.beat_schedule.setdefault(
            DIGEST_ENTRY, {"task": "notifications.celery.tasks.send_digests", "schedule": every}
        )
