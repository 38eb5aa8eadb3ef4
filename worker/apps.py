from django.apps import AppConfig


class WorkerConfig(AppConfig):
    name = "worker"

    def ready(self) -> None:
        # Lifecycle notifications: connected once Django is ready, in every
        # process that loads the project (worker children included).
        import worker.signals  # noqa: F401
