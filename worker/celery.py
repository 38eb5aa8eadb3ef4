"""The Celery app, configured from Django settings (the CELERY_* names)."""

import os

from celery import Celery

from worker import (
    broker,  # noqa: F401 (keeps the worker alive when Redis drops; see broker.py)
    heartbeat,  # noqa: F401 (a live worker's tasks never look overdue; see there)
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("worker")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
