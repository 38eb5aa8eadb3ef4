"""The benchmark's own stack: a private Redis, a temporary database with N users
and their sessions (PostgreSQL when one answers, as in production, or SQLite),
and a Daphne process serving bench.asgi.

Nothing here touches a Redis, database or port that the benchmark did not create.
"""

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from config.redis_server import RedisServer, free_port

BASE_DIR = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def bench_env(redis_url: str, database_url: str) -> dict[str, str]:
    """The environment every process of the benchmark runs with."""
    env = dict(os.environ)
    for name in ("CHANNEL_REDIS_URLS", "CELERY_BROKER_URL", "BENCH_TUTORIAL_REDIS_URL"):
        env.pop(name, None)
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="bench-secret-key-" + "x" * 40,
        DJANGO_ALLOWED_HOSTS=f"{HOST},localhost",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        LOG_LEVEL=os.getenv("BENCH_LOG_LEVEL", "WARNING"),
        PYTHONUNBUFFERED="1",
    )
    return env


def setup_django(env: dict[str, str]) -> None:
    """django.setup() in this process with the benchmark's environment."""
    os.environ.update(env)
    import django

    django.setup()


def create_users(count: int) -> list[tuple[int, str]]:
    """`count` users, each with a session row: [(user_id, session_key)], in bulk.

    Logging N users in over HTTP would measure the login view; the socket only
    needs a valid session, so the rows are written directly.
    """
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.core.management import call_command
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    call_command("migrate", verbosity=0)
    password = make_password("bench-password")  # one slow hash, shared by all
    User.objects.bulk_create(
        (User(username=f"bench{i:06d}", password=password) for i in range(count)),
        batch_size=2000,
    )
    users = list(User.objects.order_by("pk").values_list("pk", flat=True)[:count])
    auth_hash = User(password=password).get_session_auth_hash()
    backend = "django.contrib.auth.backends.ModelBackend"
    store = SessionStore()
    expire = timezone.now() + timezone.timedelta(days=1)
    sessions = []
    for user_id in users:
        key = get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789")
        data = {
            SESSION_KEY: str(user_id),
            BACKEND_SESSION_KEY: backend,
            HASH_SESSION_KEY: auth_hash,
        }
        sessions.append(
            Session(session_key=key, session_data=store.encode(data), expire_date=expire)
        )
    Session.objects.bulk_create(sessions, batch_size=2000)
    return [(user_id, s.session_key) for user_id, s in zip(users, sessions, strict=True)]


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (config.serve --workers runs Daphnes as children)."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            pids += process_tree(int(child))
    return pids


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Daphne:
    """One Daphne process serving bench.asgi on a free port.

    `module` is how it is started: `config.serve` for ours (the production
    command, Daphne with our limits and socket handling), `daphne` for the tutorial.
    """

    def __init__(
        self,
        workdir: Path,
        env: dict[str, str],
        name: str,
        module: str,
        workers: int = 1,
        server: str = "daphne",
    ) -> None:
        self.module = module
        self.workers = workers
        self.server = server
        self.port = free_port()
        self.log_path = workdir / f"daphne-{name}.log"
        self.env = env
        self.process: subprocess.Popen | None = None

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.port}"

    def listen_args(self) -> list[str]:
        if self.server != "daphne":  # config.serve --server uvicorn (its backlog: 2048)
            return [
                "--server",
                self.server,
                "--workers",
                str(self.workers),
                "-b",
                HOST,
                "-p",
                str(self.port),
            ]
        if self.workers > 1:  # config.serve binds once, with a backlog of 1024
            return ["--workers", str(self.workers), "-b", HOST, "-p", str(self.port)]
        # Twisted listens with a backlog of 50 by default; a reconnect storm
        # overflows it and clients wait for SYN retransmits.
        return ["-e", f"tcp:port={self.port}:interface={HOST}:backlog=1024"]

    def listening(self) -> bool:
        line = "Uvicorn running on" if self.server == "uvicorn" else "Listening on"
        return self.log_path.read_text(errors="replace").count(line) >= self.workers

    def start(self, timeout: float = 30) -> "Daphne":
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    self.module,
                    *self.listen_args(),
                    "bench.asgi:application",
                ],
                cwd=BASE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(self.origin + "/accounts/login/", timeout=2).read()
                if self.listening():
                    return self
                raise OSError("not every worker listens yet")
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("Daphne exited:\n" + self.log_path.read_text()) from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Daphne did not answer within {timeout}s") from None
                time.sleep(0.1)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss(self) -> int:
        """Resident memory of the server: every process of it."""
        return sum(rss_bytes(pid) for pid in process_tree(self.pid))

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in process_tree(self.pid))

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


__all__ = ["RedisServer", "Daphne", "bench_env", "create_users", "rss_bytes", "setup_django"]
