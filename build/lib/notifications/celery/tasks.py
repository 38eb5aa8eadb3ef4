"""Housekeeping tasks run by Celery beat (the entry is added by beat.py)."""

from celery import shared_task

from notifications.retention import prune_read


@shared_task
def prune_notifications() -> int:
    return prune_read()
