"""`python -m config.serve [--workers N] [daphne options]`: Daphne with our limits.

Plain `daphne` accepts WebSocket messages of up to 1 MiB; a notification client
never needs more than a few hundred bytes. The limit is enforced by the
WebSocket protocol layer (autobahn), which closes an oversized frame with 1009
before buffering it whole, so it must be given to Daphne, not to the consumer.
Options passed on the command line win over these defaults, and an application
given there (`module:attribute`, as the benchmark does) replaces config.asgi.

One Daphne process uses one core. `--workers N` (or SERVE_WORKERS) binds the
address once and runs N Daphne processes that accept from the same socket;
the kernel spreads connections over them, and each has its own channel-layer
queue. If one exits, the others are stopped and its exit status is returned,
so the supervisor (systemd, Docker) restarts the whole set.
"""

import os
import re
import signal
import socket
import subprocess
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


def serve_workers(workers: int, argv: list[str]) -> int:
    """Bind once, run `workers` Daphnes on the socket, stop them all when one stops."""
    args = list(argv)
    if {"-e", "--endpoint", "-u", "--unix-socket", "--fd"} & {a.partition("=")[0] for a in args}:
        sys.exit("config.serve: with --workers, give the address as -b HOST -p PORT")
    host = _take(args, ("-b", "--bind"), "127.0.0.1")
    port = int(_take(args, ("-p", "--port"), "8000"))
    listener = socket.create_server((host, port), backlog=1024)
    fd = listener.fileno()
    command = [sys.executable, "-m", "config.serve", "--workers", "1", "--fd", str(fd), *args]
    children = [subprocess.Popen(command, pass_fds=[fd]) for _ in range(workers)]
    listener.close()  # the children hold it now

    def stop(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    _, status = os.wait()
    stop(signal.SIGTERM, None)
    for child in children:
        child.wait()
    return os.waitstatus_to_exitcode(status)


def _take(args: list[str], names: tuple[str, ...], default: str) -> str:
    """Remove an option and its value from args (`-p 80`, `--port=80`); its value."""
    for i, arg in enumerate(args):
        if arg in names and i + 1 < len(args):
            value = args[i + 1]
            del args[i : i + 2]
            return value
        name, _, value = arg.partition("=")
        if value and name in names:
            del args[i]
            return value
    return default


def main(argv: list[str]) -> int:
    args = list(argv)
    workers = int(_take(args, ("--workers",), os.getenv("SERVE_WORKERS", "1")))
    if workers > 1:
        return serve_workers(workers, args)
    daphne.server.WebSocketFactory = ClosingWebSocketFactory
    CommandLineInterface().run(daphne_args(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
