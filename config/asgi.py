"""ASGI entry point: Django for HTTP, the notification consumer for WebSockets."""

import gc
import logging
import os
import threading
import time

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Build the Django app first: it sets up the app registry that routing imports need.
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from notifications import daphne_patches  # noqa: E402
from notifications.auth import TicketOrSession  # noqa: E402
from notifications.routing import websocket_urlpatterns  # noqa: E402

daphne_patches.install()

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

# The price: each closed socket leaves ~30 objects in reference cycles, freed
# only by a full pass, which these thresholds make rare when traffic is light.
# A soak with 400 tabs dropping every 20 s grew by ~7 MiB a minute with no
# full pass in 6 minutes. One full pass every ASGI_FULL_GC_SECONDS bounds that.
FULL_GC_SECONDS = float(os.getenv("ASGI_FULL_GC_SECONDS", "300"))
log = logging.getLogger(__name__)


def _collect_now_and_then() -> None:
    while True:
        time.sleep(FULL_GC_SECONDS)
        began = time.perf_counter()
        freed = gc.collect()
        log.info(
            "full collection: %d objects freed in %.0f ms",
            freed,
            (time.perf_counter() - began) * 1000,
        )


if FULL_GC_SECONDS > 0:
    threading.Thread(target=_collect_now_and_then, name="full-gc", daemon=True).start()
