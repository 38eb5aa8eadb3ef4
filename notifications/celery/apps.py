from django.apps import AppConfig


class CeleryNotificationsConfig(AppConfig):
    """The Celery side of notifications: add it to INSTALLED_APPS where Celery runs."""

    name = "notifications.celery"
    label = "notifications_celery"
    verbose_name = "Notifications: Celery"

    def ready(self) -> None:
        # Connected once Django is ready, in every process that loads the
        # project (worker children included): lifecycle notices, the kombu
        # fixes, the task owners kept for cancelling, fan-out jobs' tallies, the
        # workers' heartbeats, and beat's pruning and digest entries.
        from notifications.celery import (  # noqa: F401 (imported to connect)
            beat,
            fanout,
            kombu_patches,
            liveness,
            owners,
            signals,
        )

        kombu_patches.install()
        beat.add_prune_entry()
        beat.add_digest_entry()
