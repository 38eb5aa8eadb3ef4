"""The product's application plus the tutorial consumer at ws/tutorial/, for the benchmark.

Both routes share one Daphne process and one Redis. Ours goes through the
product's own WebSocket stack (config.asgi: its session middleware and Origin
check); the tutorial's through channels' AuthMiddlewareStack and Origin check,
as the tutorials write it. Only that stack, the consumer and the channel layer differ.
"""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from bench.tutorial import TutorialConsumer  # noqa: E402
from config.asgi import application as product  # noqa: E402  (sets Django up first)

tutorial = AllowedHostsOriginValidator(
    AuthMiddlewareStack(URLRouter([path("ws/tutorial/", TutorialConsumer.as_asgi())]))
)


async def websocket(scope, receive, send):
    app = tutorial if scope["path"] == "/ws/tutorial/" else product.application_mapping["websocket"]
    return await app(scope, receive, send)


application = ProtocolTypeRouter(
    {"http": product.application_mapping["http"], "websocket": websocket}
)

if os.getenv("BENCH_TUTORIAL_GC"):
    # The tutorial's Daphne runs with CPython's default collector settings;
    # config.asgi tunes them for ours (the benchmark runs one Daphne per consumer).
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
