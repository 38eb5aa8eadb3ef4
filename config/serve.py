"""`python -m config.serve [daphne options]`: Daphne serving config.asgi with our limits.

Plain `daphne` accepts WebSocket messages of up to 1 MiB; a notification client
never needs more than a few hundred bytes. The limit is enforced by the
WebSocket protocol layer (autobahn), which closes an oversized frame with 1009
before buffering it whole, so it must be given to Daphne, not to the consumer.
Options passed on the command line win over these defaults, and an application
given there (`module:attribute`, as the benchmark does) replaces config.asgi.
"""

import os
import re
import sys

import daphne.server
from daphne.cli import CommandLineInterface
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol

APPLICATION = "config.asgi:application"
IMPORT_PATH = re.compile(r"^[\w.]+:[\w.]+$")


def daphne_args(argv: list[str]) -> list[str]:
    limit = os.getenv("WEBSOCKET_MAX_MESSAGE_BYTES", str(64 * 1024))
    defaults = {
        "--websocket-max-message-size": limit,
        "--websocket-max-frame-size": limit,
        # Browsers behind proxies drop idle sockets; pings keep them open and
        # let the server notice a dead peer.
        "--ping-interval": "20",
        "--ping-timeout": "30",
    }
    args = list(argv)
    for option, value in defaults.items():
        if option not in args:
            args += [option, value]
    if not any(IMPORT_PATH.match(arg) for arg in args):
        args.append(APPLICATION)
    return args


class UpgradedWebSocketProtocol(WebSocketProtocol):
    """Lets go of the HTTP request a socket was upgraded from.

    Daphne moves the TCP transport from its HTTP channel to this protocol, but
    the channel stays registered as the transport's producer, so it and the
    upgrade request (headers, buffers) lived as long as the socket: ~3 KB of
    the ~32 KB each idle socket held. The two also refer to each other, and
    config.asgi makes full collections rare, so the cycle is broken by hand
    once Daphne's upgrade code has returned.
    """

    def connectionMade(self) -> None:  # noqa: N802 (Twisted's name)
        channel = getattr(self.transport, "producer", None)
        if channel is not None:
            self.transport.unregisterProducer()
            from twisted.internet import reactor  # Daphne has installed its reactor by now

            reactor.callLater(0, getattr(channel, "requests", []).clear)
        super().connectionMade()


class ClosingWebSocketFactory(WebSocketFactory):
    """Fails a connection with a close frame (1009 for an oversized frame) rather
    than autobahn's default of dropping TCP, so the client can tell why."""

    protocol = UpgradedWebSocketProtocol

    def setProtocolOptions(self, **options) -> None:  # noqa: N802 (autobahn's name)
        super().setProtocolOptions(failByDrop=False, **options)


if __name__ == "__main__":
    daphne.server.WebSocketFactory = ClosingWebSocketFactory
    CommandLineInterface().run(daphne_args(sys.argv[1:]))
