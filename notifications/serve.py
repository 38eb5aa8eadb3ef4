"""`python -m notifications.serve [--server daphne|uvicorn] [--workers N] [options] app`.

`app` is the project's ASGI application (project.asgi:application).

Daphne (the default) or uvicorn, N times over one socket. The frame limit,
close frames and the other Daphne fixes come from
`notifications.asgi.websocket_application()` and work with plain `daphne` too;
this launcher adds the processes. An application given on the command line
wins; without one, the project's ASGI_APPLICATION setting is used.

`--server uvicorn` (or SERVE_SERVER=uvicorn; `pip install django-celery-notify[uvicorn]`)
runs uvicorn with its websockets-sansio implementation and the same socket rules:
frames over NOTIFICATIONS_WS_MAX_MESSAGE_BYTES closed with 1009, pings every
20 s and a peer that does not answer within 30 s dropped (Daphne's defaults),
and a graceful shutdown that lets every socket leave its groups. Its options
here are -b/--bind, -p/--port and --fd; the slow-reader bound, which Daphne
gets from daphne_patches.py, is the consumer's own under any server.

One Daphne process uses one core. `--workers N` (or SERVE_WORKERS) binds the
address once and runs N Daphne processes that accept from the same socket;
the kernel spreads connections over them, and each has its own channel-layer
queue. If one exits, the others are stopped and its exit status is returned,
so the supervisor (systemd, Docker) restarts the whole set.
"""

import importlib
import os
import re
import signal
import socket
import subprocess
import sys

from daphne.cli import CommandLineInterface

IMPORT_PATH = re.compile(r"^[\w.]+:[\w.]+$")
SERVERS = ("daphne", "uvicorn")
# Daphne's own defaults, so both servers find a dead peer alike.
PING_INTERVAL, PING_TIMEOUT = 20.0, 30.0
# Seconds uvicorn waits for sockets to close at shutdown before cancelling them.
SHUTDOWN_SECONDS = 10.0


def with_application(argv: list[str], default: str | None) -> list[str]:
    """`argv` with an application path: the one given, `default`, or ASGI_APPLICATION."""
    if any(IMPORT_PATH.match(arg) for arg in argv):
        return list(argv)
    if default is None:
        from django.conf import settings

        module, _, attribute = settings.ASGI_APPLICATION.rpartition(".")
        default = f"{module}:{attribute}"
    return [*argv, default]


def serve_workers(workers: int, argv: list[str], server: str = "daphne") -> int:
    """Bind once, run `workers` Daphnes on the socket, stop them all when one stops."""
    args = list(argv)
    if {"-e", "--endpoint", "-u", "--unix-socket", "--fd"} & {a.partition("=")[0] for a in args}:
        sys.exit("notifications.serve: with --workers, give the address as -b HOST -p PORT")
    host = _take(args, ("-b", "--bind"), "127.0.0.1")
    port = int(_take(args, ("-p", "--port"), "8000"))
    listener = socket.create_server((host, port), backlog=1024)
    fd = listener.fileno()
    command = [sys.executable, "-m", "notifications.serve", "--server", server, "--workers", "1"]
    command += ["--fd", str(fd)]
    command += args
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


def serve_uvicorn(args: list[str]) -> int:
    """One uvicorn process with the socket rules of the module docstring."""
    try:
        import uvicorn
    except ImportError:
        sys.exit("notifications.serve: --server uvicorn needs uvicorn[standard] installed")
    host = _take(args, ("-b", "--bind"), "127.0.0.1")
    port = int(_take(args, ("-p", "--port"), "8000"))
    fd = _take(args, ("--fd",), "")
    paths = [arg for arg in args if IMPORT_PATH.match(arg)]
    unknown = [arg for arg in args if arg not in paths]
    if unknown or len(paths) != 1:
        sys.exit(f"notifications.serve: under uvicorn, options not taken: {' '.join(unknown)}")
    module, _, name = paths[0].partition(":")
    application = getattr(importlib.import_module(module), name)  # sets Django up
    from notifications.conf import app_settings

    uvicorn.run(
        application,
        **({"fd": int(fd)} if fd else {"host": host, "port": port}),
        ws="websockets-sansio",  # the maintained implementation; it waits while a client is full
        ws_max_size=app_settings.WS_MAX_MESSAGE_BYTES,
        ws_ping_interval=PING_INTERVAL,
        ws_ping_timeout=PING_TIMEOUT,
        lifespan="off",
        timeout_graceful_shutdown=SHUTDOWN_SECONDS,
        server_header=False,
    )
    return 0


def main(argv: list[str], default_application: str | None = None) -> int:
    args = with_application(argv, default_application)
    server = _take(args, ("--server",), os.getenv("SERVE_SERVER", "daphne"))
    if server not in SERVERS:
        sys.exit(f"notifications.serve: --server must be one of {', '.join(SERVERS)}")
    workers = int(_take(args, ("--workers",), os.getenv("SERVE_WORKERS", "1")))
    if workers > 1:
        return serve_workers(workers, args, server)
    if server == "uvicorn":
        return serve_uvicorn(args)
    CommandLineInterface().run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
