from django.apps import AppConfig
from django.core import checks


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        from notifications import sessions
        from notifications.checks import channel_layer

        sessions.connect()
        checks.register(channel_layer)
