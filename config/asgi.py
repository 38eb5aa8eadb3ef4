"""ASGI entry point: Django for HTTP, the notifications app for WebSockets."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Under ASGI, Django keeps a database connection per async context, so with
# persistent connections every HTTP request would leave one open behind it
# until the database refuses clients; Django's advice is to disable them there.
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")
# ...and on PostgreSQL a pool keeps them open for the next request (settings.py).
os.environ.setdefault("DATABASE_POOL", "true")
# Build the Django app first: it sets up the app registry that routing imports need.
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from notifications.asgi import websocket_application  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_application,
        # Origin check, session cookie or signed ticket, the consumer, Daphne's fixes.
        "websocket": websocket_application(),
    }
)
