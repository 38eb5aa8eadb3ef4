"""What this service changes inside Daphne, and why.

Installed by `notifications.asgi.websocket_application()`, which runs when
Daphne imports the project's ASGI application and before it starts serving,
so plain `daphne project.asgi:application` gets all of it. These reach into
Daphne's internals, so `install()` checks what each one hooks into first
(notifications/probes.py): a change whose hooks a release lacks is left out
with a WARNING, the shutdown fix with an INFO line where Daphne no longer
shows the bug, and no import ever fails. Checked against Daphne 4.2.

- Frame limit: Daphne accepts client messages of up to 1 MiB; a notification
  client never sends more than a few hundred bytes. The protocol layer
  (autobahn) enforces NOTIFICATIONS_WS_MAX_MESSAGE_BYTES (64 KiB) before
  buffering a frame whole, and fails a connection with a close frame (1009
  for an oversized one) rather than a silent TCP drop, so the client can tell
  why.
- Upgraded requests: Daphne moves the TCP transport from its HTTP channel to
  the WebSocket protocol, but the channel stays registered as the transport's
  producer, so it and the upgrade request lived as long as the socket (~3 KB
  of the ~32 KB an idle socket held, in a reference cycle). It is let go.
- Slow readers: Daphne writes whatever the application sends into the
  transport's buffer, which grows without bound when a client stops reading.
  A socket whose unsent output stays above NOTIFICATIONS_WS_MAX_UNSENT_BYTES
  for NOTIFICATIONS_WS_SLOW_SECONDS (or passes eight times it) is aborted; the
  client reconnects with `?after=` and reads the rest from the database.
- Shutdown: `Server.kill_all_applications` reads `details["application_instance"]`,
  which is missing for a request that has just been upgraded to a WebSocket
  (and for an application that has finished). The KeyError aborts it before it
  cancels anything, so at shutdown no socket ran its cleanup and every one
  stayed in its channel-layer group. The fixed version skips such entries.
"""

import asyncio
import inspect
import logging
import types

import daphne.server
from autobahn.twisted.websocket import WebSocketServerFactory
from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from twisted.internet import defer

from notifications import metrics, probes
from notifications.conf import app_settings

log = logging.getLogger(__name__)

LIBRARY = "Daphne"
FRAME_OPTIONS = ("maxMessagePayloadSize", "maxFramePayloadSize", "failByDrop")


def install() -> None:
    """Apply each change this Daphne needs and can take; safe to call again."""
    if getattr(daphne.server, "WebSocketFactory", None) is not NotificationsWebSocketFactory:
        if lacking := socket_hooks_missing():
            probes.skipped(LIBRARY, "the frame limit and the slow-reader bound", lacking)
        else:
            # Daphne's Server.run() builds its factory from this module-level name.
            daphne.server.WebSocketFactory = NotificationsWebSocketFactory
    if not hasattr(Server, "kill_all_applications"):
        probes.skipped(LIBRARY, "the shutdown fix", ["Server.kill_all_applications"])
    elif Server.kill_all_applications is not kill_all_applications:
        if shutdown_skips_upgraded_sockets():
            probes.not_needed(LIBRARY, "cancels every socket at shutdown")
        else:
            Server.kill_all_applications = kill_all_applications


def socket_hooks_missing() -> list[str]:
    """What the protocol and factory below build on that this Daphne lacks."""
    options = inspect.signature(WebSocketServerFactory.setProtocolOptions).parameters
    return [
        *probes.missing(daphne.server, "WebSocketFactory"),
        *probes.missing(WebSocketProtocol, "connectionMade", "serverSend"),
        *(f"setProtocolOptions({name}=)" for name in FRAME_OPTIONS if name not in options),
    ]


def shutdown_skips_upgraded_sockets() -> bool:
    """Whether Daphne's own kill_all_applications gets past a connection with no
    application instance yet (the KeyError below), run once on a stand-in server."""
    server = types.SimpleNamespace(connections={object(): {}})
    return not probes.raises(lambda: Server.kill_all_applications(server), KeyError)


class NotificationsWebSocketProtocol(WebSocketProtocol):
    """Daphne's protocol, letting go of its upgrade request and of slow readers."""

    slow_check = None  # the pending check of a backlog over the limit

    def connectionMade(self) -> None:  # noqa: N802 (Twisted's name)
        channel = getattr(self.transport, "producer", None)
        if channel is not None:
            self.transport.unregisterProducer()
            from twisted.internet import reactor  # Daphne has installed its reactor by now

            # After Daphne's upgrade code has returned: it still uses the request.
            reactor.callLater(0, getattr(channel, "requests", []).clear)
        super().connectionMade()

    def serverSend(self, content, binary: bool = False) -> None:  # noqa: N802 (Daphne's name)
        """Send, then watch the transport's backlog.

        A healthy client drains megabytes in milliseconds, but a burst (the
        replay of a hundred missed notifications) may briefly sit above the
        limit; so a socket is dropped when its backlog stays above the limit
        for the grace period, or at once when it passes eight times the limit.
        """
        super().serverSend(content, binary)
        if self.slow_check is not None or not self._open():
            return
        limit = app_settings.WS_MAX_UNSENT_BYTES
        unsent = unsent_bytes(self.transport)
        if unsent > 8 * limit:
            self._drop_slow(unsent)
        elif unsent > limit:
            from twisted.internet import reactor

            self.slow_check = reactor.callLater(app_settings.WS_SLOW_SECONDS, self._check_slow)

    def _open(self) -> bool:
        return self.transport is not None and getattr(self.transport, "connected", False)

    def _check_slow(self) -> None:
        self.slow_check = None
        if self._open() and (unsent := unsent_bytes(self.transport)) > (
            app_settings.WS_MAX_UNSENT_BYTES
        ):
            self._drop_slow(unsent)

    def _drop_slow(self, unsent: int) -> None:
        log.warning(
            "closed the socket of %s: %d bytes unsent (the client stopped reading)",
            self.client_addr,
            unsent,
        )
        metrics.inc("notifications_slow_sockets_closed_total")
        self.transport.abortConnection()


class NotificationsWebSocketFactory(WebSocketFactory):
    protocol = NotificationsWebSocketProtocol

    def setProtocolOptions(self, **options) -> None:  # noqa: N802 (autobahn's name)
        """Daphne's options with the frame limit applied: set whether Daphne passes
        a size (4.2 does, from --websocket_max_message_size) or not (4.1 did not,
        leaving autobahn's 0, "no limit")."""
        limit = app_settings.WS_MAX_MESSAGE_BYTES
        for name in ("maxMessagePayloadSize", "maxFramePayloadSize"):
            options[name] = min(options.get(name) or limit, limit)
        super().setProtocolOptions(failByDrop=False, **options)


def never_waits(send: object) -> bool:
    """Whether `send` is Daphne's (a partial of Server.handle_reply): it buffers and
    returns at once, and NotificationsWebSocketProtocol bounds the buffer, so a
    timeout around it would only cost a timer per message."""
    return isinstance(getattr(getattr(send, "func", None), "__self__", None), Server)


def unsent_bytes(transport: object) -> int:
    """Bytes a Twisted TCP transport holds that the kernel has not taken yet."""
    buffered = getattr(transport, "dataBuffer", b"")
    return len(buffered) - getattr(transport, "offset", 0) + getattr(transport, "_tempDataLen", 0)


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
