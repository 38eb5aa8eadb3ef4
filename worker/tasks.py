"""Housekeeping tasks run by Celery beat (see CELERY_BEAT_SCHEDULE in settings)."""

from celery import shared_task

from notifications.retention import prune_read


@shared_task
def prune_notifications() -> int:
    return prune_read()
