"""ASGI entry point: Django for HTTP, the notification consumer for WebSockets."""

import gc
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

# Daphne holds about 180 GC-tracked objects per open socket, and each full
# collection walks them all: with 5,000 sockets a pass took 0.35-1.3 s here and
# stalled every socket (p99 884 ms at 500 notifications/s). A young generation
# of 50,000 lets a message's garbage die by reference count before promotion,
# so full passes become rare (none in a 2-minute benchmark run at 5,000
# sockets); what startup built is frozen out of every pass.
gc.freeze()
gc.set_threshold(50_000, 20, 100)
