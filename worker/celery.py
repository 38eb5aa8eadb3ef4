"""This project's Celery app, configured from Django settings (the CELERY_* names).

The notification wiring comes from the `notifications.celery` app in
INSTALLED_APPS, as in any project that installs the package.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("worker")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
