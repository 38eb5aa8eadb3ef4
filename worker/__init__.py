"""The Celery app (`celery -A worker worker`) and its notification wiring."""

from worker.celery import app

__all__ = ("app",)
