"""Periodic tasks run by Celery beat (the entries are added by beat.py)."""

from celery import shared_task
from django.utils import timezone

from notifications import digest
from notifications.retention import prune_read


@shared_task
def prune_notifications() -> int:
    return prune_read()


@shared_task
def send_digests() -> int:
    return digest.send_due(timezone.now())
