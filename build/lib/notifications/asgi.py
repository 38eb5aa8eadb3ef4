"""The WebSocket side of a project's ASGI application, in one call.

    # myproject/asgi.py
    django_application = get_asgi_application()
    from notifications.asgi import websocket_application
    application = ProtocolTypeRouter(
        {"http": django_application, "websocket": websocket_application()}
    )

It checks the Origin, signs the socket in (session cookie or ticket), routes
`notifications.routing.websocket_urlpatterns` plus any routes of the
project's own, installs the Daphne fixes (daphne_patches.py) and tunes the
garbage collector for thousands of idle sockets.
"""

import gc
import logging
import os
import threading
import time

from channels.routing import URLRouter

from notifications import daphne_patches
from notifications.auth import TicketOrSession
from notifications.routing import websocket_urlpatterns

log = logging.getLogger(__name__)


def websocket_application(extra_routes: list | None = None, *, tune_gc: bool = True):
    """The notification consumer (and `extra_routes`) behind the origin check and auth."""
    daphne_patches.install()
    if tune_gc:
        tune_garbage_collector()
    return TicketOrSession(URLRouter([*websocket_urlpatterns, *(extra_routes or [])]))


_collector: threading.Thread | None = None


def tune_garbage_collector() -> None:
    """Make full collections rare, and run one every ASGI_FULL_GC_SECONDS.

    Daphne holds about 180 GC-tracked objects per open socket, and each full
    collection walks them all: with 5,000 sockets a pass took 0.35-1.3 s and
    stalled every socket (p99 884 ms at 500 notifications/s). A young
    generation of 50,000 lets a message's garbage die by reference count
    before promotion, so full passes become rare; what startup built is
    frozen out of every pass. The price: each closed socket leaves ~30 objects
    in reference cycles that only a full pass frees (a soak with 400 tabs
    dropping every 20 s grew ~7 MiB a minute with no full pass in 6 minutes),
    so a thread runs one every ASGI_FULL_GC_SECONDS (300; 0 turns it off).
    """
    global _collector
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    every = float(os.getenv("ASGI_FULL_GC_SECONDS", "300"))
    if every > 0 and _collector is None:
        _collector = threading.Thread(
            target=_collect_now_and_then, args=(every,), name="full-gc", daemon=True
        )
        _collector.start()


def _collect_now_and_then(every: float) -> None:
    while True:
        time.sleep(every)
        began = time.perf_counter()
        freed = gc.collect()
        log.info(
            "full collection: %d objects freed in %.0f ms",
            freed,
            (time.perf_counter() - began) * 1000,
        )
