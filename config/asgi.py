"""ASGI entry point: Django for HTTP, the notification consumer for WebSockets."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Build the Django app first: it sets up the app registry that routing imports need.
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from notifications.auth import TicketOrSession  # noqa: E402
from notifications.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_application,
        # Session cookie with an allowed Origin, or a signed ticket (auth.py).
        "websocket": TicketOrSession(URLRouter(websocket_urlpatterns)),
    }
)
