"""`make run`: the whole stack on one machine, stopped cleanly by Ctrl-C.

Migrates, creates a demo user when debugging, uses the Redis at REDIS_URL when
it answers (else starts a private one, and starts it again should it die),
gives Web Push a development key pair (RUN_DIR/vapid) unless the environment
has one, then runs Daphne and a Celery worker.
"""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from config import run_env
from config.redis_server import RedisServer, answers

# The development conveniences (debug, the built-in key, the demo user) are
# switched on here, for this stack only; the settings' defaults keep them off.
os.environ.setdefault("DJANGO_DEBUG", "true")

BASE_DIR = Path(__file__).resolve().parent.parent
HOST, PORT = "127.0.0.1", int(os.getenv("PORT", "8000"))
DEMO_USER, DEMO_PASSWORD = "demo", "demo-password"


def ensure_redis() -> RedisServer | None:
    """Start a private redis-server unless the configured one answers."""
    url = urlsplit(os.getenv("REDIS_URL", "redis://127.0.0.1:6379/0"))
    if answers(url.hostname or "127.0.0.1", url.port or 6379):
        print(f"Using the Redis at {url.geturl()}")
        return None
    server = RedisServer(run_env.run_dir() / "redis").start()
    print(f"No Redis at {url.geturl()}; started one at {server.url}")
    os.environ["REDIS_URL"] = server.url
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.pop("CHANNEL_REDIS_URLS", None)
    return server


def prepare_database() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if settings.DEBUG:
        users = get_user_model().objects
        if not users.filter(username=DEMO_USER).exists():
            users.create_user(DEMO_USER, password=DEMO_PASSWORD)
        print(f"Demo login: {DEMO_USER} / {DEMO_PASSWORD}")


def ensure_vapid_keys() -> None:
    """A development Web Push key pair, kept in RUN_DIR/vapid so a browser registered
    once stays registered across runs; keys set in the environment win."""
    if os.getenv("NOTIFICATIONS_VAPID_PRIVATE_KEY"):
        return
    path = run_env.run_dir() / "vapid"
    try:
        public, private = path.read_text().split()
    except (OSError, ValueError):
        try:
            from notifications.push import new_vapid_keys
        except ImportError:
            return
        public, private = new_vapid_keys()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{public}\n{private}\n")
        path.chmod(0o600)
    os.environ["NOTIFICATIONS_VAPID_PUBLIC_KEY"] = public
    os.environ["NOTIFICATIONS_VAPID_PRIVATE_KEY"] = private


def main() -> int:
    redis = ensure_redis()
    prepare_database()
    ensure_vapid_keys()  # before the children start: they read it from the environment
    children = [
        subprocess.Popen([sys.executable, "-m", "config.serve", "-b", HOST, "-p", str(PORT)]),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "worker",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                "2",
                # Embedded beat runs the periodic pruning; production runs a beat service.
                "--beat",
                "--schedule",
                str(run_env.run_dir() / "celerybeat-schedule"),
                "--loglevel",
                "INFO",
            ]
        ),
    ]
    run_env.write()
    print(
        f"\n  Open http://{HOST}:{PORT}/  (Ctrl-C stops everything)\n"
        '  In another terminal, `python manage.py notify "Hello" --user demo` reaches this\n'
        f"  stack: manage.py reads {run_env.run_dir() / 'env'} while it runs.\n",
        flush=True,
    )

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    # Ctrl-C reaches the children too (same process group); we wait for them.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    status = 0
    try:
        # Whichever child ends first ends the run: a half-running stack misleads.
        while all(child.poll() is None for child in children):
            if redis and redis.process.poll() is not None:
                # Daphne and the worker reconnect to the same address by themselves.
                print(
                    f"The private Redis stopped (exit {redis.process.returncode}); "
                    f"starting it again at {redis.url}",
                    file=sys.stderr,
                    flush=True,
                )
                redis.start()
            with contextlib.suppress(subprocess.TimeoutExpired):
                children[0].wait(timeout=1)
        status = 1
        print("A process of the stack exited; stopping the rest.", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nStopping…")
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        run_env.remove()
        if redis:
            redis.stop()
    return status


if __name__ == "__main__":
    sys.exit(main())
