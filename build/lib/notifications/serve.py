"""`python -m notifications.serve [--workers N] [daphne options] project.asgi:application`.

Daphne, N times over one socket. The frame limit, close frames and the other
Daphne fixes come from `notifications.asgi.websocket_application()` and
work with plain `daphne` too; this launcher adds the processes. An
application given on the command line wins; without one, the project's
ASGI_APPLICATION setting is used.

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

from daphne.cli import CommandLineInterface

IMPORT_PATH = re.compile(r"^[\w.]+:[\w.]+$")


def with_application(argv: list[str], default: str | None) -> list[str]:
    """`argv` with an application path: the one given, `default`, or ASGI_APPLICATION."""
    if any(IMPORT_PATH.match(arg) for arg in argv):
        return list(argv)
    if default is None:
        from django.conf import settings

        module, _, attribute = settings.ASGI_APPLICATION.rpartition(".")
        default = f"{module}:{attribute}"
    return [*argv, default]


def serve_workers(workers: int, argv: list[str]) -> int:
    """Bind once, run `workers` Daphnes on the socket, stop them all when one stops."""
    args = list(argv)
    if {"-e", "--endpoint", "-u", "--unix-socket", "--fd"} & {a.partition("=")[0] for a in args}:
        sys.exit("notifications.serve: with --workers, give the address as -b HOST -p PORT")
    host = _take(args, ("-b", "--bind"), "127.0.0.1")
    port = int(_take(args, ("-p", "--port"), "8000"))
    listener = socket.create_server((host, port), backlog=1024)
    fd = listener.fileno()
    command = [sys.executable, "-m", "notifications.serve", "--workers", "1", "--fd", str(fd)]
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


def main(argv: list[str], default_application: str | None = None) -> int:
    args = with_application(argv, default_application)
    workers = int(_take(args, ("--workers",), os.getenv("SERVE_WORKERS", "1")))
    if workers > 1:
        return serve_workers(workers, args)
    CommandLineInterface().run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
