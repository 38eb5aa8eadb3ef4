"""Housekeeping and digests run by Celery beat (the entries are added by beat.py),
and Web Push sending."""

import logging

from celery import shared_task
from django.utils import timezone

from notifications import digest, push
from notifications.conf import app_settings
from notifications.retention import prune_read

log = logging.getLogger(__name__)


@shared_task
def prune_notifications() -> int:
    return prune_read()


@shared_task
def send_digests() -> int:
    return digest.send_due(timezone.now())


@shared_task(bind=True, name=push.TASK_NAME, max_retries=None, ignore_result=True)
def send_push(self, notification_ids: list[int]) -> None:
    """Push notifications to devices (push.deliver); retry the ones a push
    service failed, backing off exponentially, at most PUSH_MAX_RETRIES times."""
    retry = push.deliver(notification_ids)
    if not retry:
        return
    if self.request.retries >= app_settings.PUSH_MAX_RETRIES:
        log.warning("gave up pushing notification(s) %s", retry)
        return
    raise self.retry(args=(retry,), countdown=push.backoff(self.request.retries))
