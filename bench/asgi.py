"""The product's application plus the tutorial consumer at ws/tutorial/, for the benchmark.

Both routes share one Daphne process, one Redis and the same session
authentication and Origin check; only the consumer and its channel layer differ.
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
from notifications.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": product.application_mapping["http"],
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(
                URLRouter(
                    [*websocket_urlpatterns, path("ws/tutorial/", TutorialConsumer.as_asgi())]
                )
            )
        ),
    }
)

if os.getenv("BENCH_TUTORIAL_GC"):
    # The tutorial's Daphne runs with CPython's default collector settings;
    # config.asgi tunes them for ours (the benchmark runs one Daphne per consumer).
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
