"""Pruning: read notifications older than the retention period are deleted.

Unread ones are kept whatever their age: nobody has seen them yet.
"""

from datetime import timedelta

from django.utils import timezone

from notifications.conf import app_settings
from notifications.models import Notification

BATCH = 5000  # rows per DELETE, so a large backlog never locks the table for long


def prune_read(days: float | None = None) -> int:
    """Delete notifications read more than `days` ago (default: the setting); returns how many."""
    if days is None:
        days = app_settings.RETENTION_DAYS
    cutoff = timezone.now() - timedelta(days=days)
    old = Notification.objects.filter(read_at__lt=cutoff)
    deleted = 0
    while batch := list(old.values_list("pk", flat=True)[:BATCH]):
        deleted += Notification.objects.filter(pk__in=batch).delete()[0]
    return deleted
