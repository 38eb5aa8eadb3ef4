from django.apps import AppConfig
from django.core import checks


class NotificationsConfig(AppConfig):
    name = "notifications"
    # Ids only grow and a busy site passes 2**31; also keeps the migrations
    # independent of the project's DEFAULT_AUTO_FIELD.
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from notifications import sessions
        from notifications.checks import channel_layer, preference_settings, push

        sessions.connect()
        checks.register(channel_layer)
        checks.register(preference_settings)
        checks.register(push)
