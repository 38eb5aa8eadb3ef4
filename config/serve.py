"""`python -m config.serve [daphne options]`: Daphne serving config.asgi with our limits.

Plain `daphne` accepts WebSocket messages of up to 1 MiB; a notification client
never needs more than a few hundred bytes. The limit is enforced by the
WebSocket protocol layer (autobahn), which closes an oversized frame with 1009
before buffering it whole, so it must be given to Daphne, not to the consumer.
Options passed on the command line win over these defaults.
"""

import os
import sys

import daphne.server
from daphne.cli import CommandLineInterface
from daphne.ws_protocol import WebSocketFactory

APPLICATION = "config.asgi:application"


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
    if APPLICATION not in args:
        args.append(APPLICATION)
    return args


class ClosingWebSocketFactory(WebSocketFactory):
    """Fails a connection with a close frame (1009 for an oversized frame) rather
    than autobahn's default of dropping TCP, so the client can tell why."""

    def setProtocolOptions(self, **options) -> None:  # noqa: N802 (autobahn's name)
        super().setProtocolOptions(failByDrop=False, **options)


if __name__ == "__main__":
    daphne.server.WebSocketFactory = ClosingWebSocketFactory
    CommandLineInterface().run(daphne_args(sys.argv[1:]))
