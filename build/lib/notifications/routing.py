"""The WebSocket route: NOTIFICATIONS_WS_PATH (default "ws/notifications/").

{% notifications_widget %} reads the path from here, so the browser connects
wherever the project serves it.
"""

from django.urls import path

from notifications.conf import app_settings
from notifications.consumers import NotificationConsumer

websocket_urlpatterns = [
    path(app_settings.WS_PATH, NotificationConsumer.as_asgi(), name="notifications"),
]


def websocket_path() -> str:
    """The socket's path from the site root, as a browser asks for it."""
    return "/" + str(websocket_urlpatterns[0].pattern)
