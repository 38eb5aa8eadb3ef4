"""What a second terminal needs to reach the stack that `make run` started.

`make run` switches debug on and may start a private Redis on a random port;
a `python manage.py notify …` typed in another terminal would otherwise run
without either, and save a notice that no tab hears of. So `make run` writes
RUN_DIR/env (RUN_DIR: $RUN_DIR, or .run/ in the checkout) with those variables
and its own pid, and manage.py reads it while that process lives. Variables
the second terminal sets itself win; nothing is read once `make run` stops.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
# What `make run` may set for its own processes that a shell would not have.
VARIABLES = (
    "DJANGO_DEBUG",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "DATABASE_URL",
    # Web Push's development pair: a notify() from another terminal pushes too.
    "NOTIFICATIONS_VAPID_PUBLIC_KEY",
    "NOTIFICATIONS_VAPID_PRIVATE_KEY",
)


def run_dir() -> Path:
    return Path(os.getenv("RUN_DIR", BASE_DIR / ".run"))


def write() -> Path:
    """Record this process and the variables its stack runs with."""
    path = run_dir() / "env"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"RUN_PID={os.getpid()}"]
    lines += [f"{name}={os.environ[name]}" for name in VARIABLES if name in os.environ]
    path.write_text("\n".join(lines) + "\n")
    return path


def remove() -> None:
    (run_dir() / "env").unlink(missing_ok=True)


def load() -> bool:
    """Take the running stack's variables (those not already set); False when none runs."""
    path = run_dir() / "env"
    try:
        values = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        os.kill(int(values.pop("RUN_PID")), 0)
    except (OSError, KeyError, ValueError):
        return False  # no file, or the `make run` that wrote it has stopped
    for name, value in values.items():
        if name in VARIABLES:
            os.environ.setdefault(name, value)
    return True
