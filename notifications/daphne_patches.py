"""What this service changes inside Daphne, and why; installed by config/asgi.py.

Both changes reach into Daphne's internals, so they are written against one
Daphne release line and refuse to load on another: check them against the new
release, then move TESTED_DAPHNE.

- Shutdown: `Server.kill_all_applications` reads `details["application_instance"]`,
  which is missing for a request that has just been upgraded to a WebSocket
  (and for an application that has finished). The KeyError aborts it before it
  cancels anything, so at shutdown no socket ran its cleanup and every one
  stayed in its channel-layer group. The fixed version skips such entries.
- Slow readers: Daphne writes whatever the application sends into the
  transport's buffer, which grows without bound when a client stops reading.
  A socket whose unsent output stays above NOTIFICATIONS_WS_MAX_UNSENT_BYTES
  for NOTIFICATIONS_WS_SLOW_SECONDS (or passes eight times it) is aborted;
  the client reconnects with `?after=` and reads the rest from the
  database, so nothing is lost.
"""

import asyncio
import logging

import daphne
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import defer

from notifications import metrics
from notifications.conf import app_settings

log = logging.getLogger(__name__)

TESTED_DAPHNE = "4.2."


def install() -> None:
    if not daphne.__version__.startswith(TESTED_DAPHNE):
        raise RuntimeError(
            f"notifications.daphne_patches was written for Daphne {TESTED_DAPHNE}x and "
            f"Daphne {daphne.__version__} is installed: check the patches against it, "
            "then update TESTED_DAPHNE"
        )
    Server.kill_all_applications = kill_all_applications
    if not getattr(WebSocketProtocol.serverSend, "bounded", False):
        WebSocketProtocol.serverSend = _bounded(WebSocketProtocol.serverSend)


def kill_all_applications(self: Server) -> defer.Deferred:
    """Cancel every running application and let Twisted wait until they have ended."""
    running = [
        details["application_instance"]
        for details in self.connections.values()
        if details.get("application_instance") is not None
        and not details["application_instance"].done()
    ]
    for instance in running:
        instance.cancel()
    log.info("cancelled %d running application instance(s)", len(running))
    waiting = defer.Deferred.fromFuture(asyncio.gather(*running, return_exceptions=True))
    waiting.addErrback(lambda _: None)
    return waiting


def unsent_bytes(transport: object) -> int:
    """Bytes a Twisted TCP transport holds that the kernel has not taken yet."""
    buffered = getattr(transport, "dataBuffer", b"")
    return len(buffered) - getattr(transport, "offset", 0) + getattr(transport, "_tempDataLen", 0)


def _bounded(send):
    """serverSend, watching the transport's backlog after each frame.

    A healthy client drains megabytes in milliseconds, but a burst (the replay
    of a hundred missed notifications) may briefly sit above the limit; so a
    socket is closed when its backlog stays above the limit for the grace
    period, or at once when it passes eight times the limit.
    """
    limit = app_settings.WS_MAX_UNSENT_BYTES
    grace = app_settings.WS_SLOW_SECONDS

    def server_send(self: WebSocketProtocol, content, binary: bool = False) -> None:
        send(self, content, binary)
        if getattr(self, "slow_check", None) or not _open(self):
            return
        unsent = unsent_bytes(self.transport)
        if unsent > 8 * limit:
            _close_slow(self, unsent)
        elif unsent > limit:
            from twisted.internet import reactor  # Daphne's, installed by now

            self.slow_check = reactor.callLater(grace, _check_slow, self, limit)

    server_send.bounded = True
    return server_send


def _open(protocol: WebSocketProtocol) -> bool:
    return protocol.transport is not None and getattr(protocol.transport, "connected", False)


def _check_slow(protocol: WebSocketProtocol, limit: int) -> None:
    protocol.slow_check = None
    if _open(protocol) and (unsent := unsent_bytes(protocol.transport)) > limit:
        _close_slow(protocol, unsent)


def _close_slow(protocol: WebSocketProtocol, unsent: int) -> None:
    log.warning(
        "closed the socket of %s: %d bytes unsent (the client stopped reading)",
        protocol.client_addr,
        unsent,
    )
    metrics.inc("notifications_slow_sockets_closed_total")
    protocol.transport.abortConnection()
