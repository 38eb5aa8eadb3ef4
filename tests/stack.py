"""The real stack for end-to-end tests: private Redis, Daphne and a Celery worker.

Each process writes its log to the stack's directory, which the tests keep
under test-artifacts/ so a failure can be read afterwards. When the test run
uses PostgreSQL (DATABASE_URL), the stack gets a database of its own on that
server, created at start and dropped at stop; otherwise a SQLite file.
"""

import contextlib
import http.client
import http.cookiejar
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from celery import Celery

from config.postgres_database import PostgresDatabase
from config.redis_server import RedisServer, free_port

BASE_DIR = Path(__file__).resolve().parent.parent
ARTIFACTS = BASE_DIR / "test-artifacts"
PASSWORD = "a-long-test-password"
USERS = ("alice", "bob", "carol", "dave", "erin", "frank")


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll `predicate` until it returns a truthy value, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Stack:
    """Redis, Daphne and Celery processes on a database of their own.

    `env` adds settings for every process of the stack; with `shards=2` the
    channel layer is sharded over two Redis servers (the first is also the broker);
    `workers` is how many Daphnes the first one runs behind its port; `server`
    is the ASGI server config.serve runs ("daphne" or "uvicorn"). An `env`
    naming REDIS_SENTINELS gets no Redis of the stack's own: the settings take
    the layer, the broker and the app's Redis from the sentinels.
    """

    def __init__(
        self,
        workdir: Path,
        redis_url: str | None = None,
        *,
        env: dict[str, str] | None = None,
        shards: int = 1,
        workers: int = 1,
        server: str = "daphne",
    ) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.redis_servers: list[RedisServer] = []
        self.redis_url = redis_url
        self.shards = shards
        self.workers = workers
        self.server = server
        self.database: PostgresDatabase | None = None
        self.ports: dict[str, int] = {}
        self.processes: dict[str, subprocess.Popen] = {}
        self.celery_workers: set[str] = set()
        self.user_ids: dict[str, int] = {}
        self.env = dict(os.environ)
        self.extra_env = env or {}

    @property
    def redis(self) -> RedisServer | None:
        """The Redis server the broker and the layer's first shard use (when the stack owns it)."""
        return self.redis_servers[0] if self.redis_servers else None

    def http_url(self, daphne: str = "daphne") -> str:
        return f"http://127.0.0.1:{self.ports[daphne]}"

    def ws_url_of(self, daphne: str) -> str:
        return f"ws://127.0.0.1:{self.ports[daphne]}/ws/notifications/"

    @property
    def base_url(self) -> str:
        return self.http_url()

    @property
    def ws_url(self) -> str:
        return self.ws_url_of("daphne")

    def start(self) -> "Stack":
        behind_sentinel = "REDIS_SENTINELS" in self.extra_env
        if self.redis_url is None and not behind_sentinel:
            for shard in range(self.shards):
                self.redis_servers.append(RedisServer(self.workdir / f"redis-{shard}").start())
            self.redis_url = self.redis_servers[0].url
        self.env.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            DJANGO_DEBUG="false",
            DJANGO_SECRET_KEY="e2e-secret-key-" + "x" * 40,
            DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
            DATABASE_URL=self._database_url(),
            PYTHONUNBUFFERED="1",
        )
        for name in ("CHANNEL_REDIS_URLS", "REDIS_URL", "CELERY_BROKER_URL", "REDIS_SENTINELS"):
            self.env.pop(name, None)  # the test run's own, if any, are not the stack's
        if self.redis_url:
            self.env.update(REDIS_URL=self.redis_url, CELERY_BROKER_URL=self.redis_url)
        if len(self.redis_servers) > 1:
            self.env["CHANNEL_REDIS_URLS"] = ",".join(s.url for s in self.redis_servers)
        self.env.update(self.extra_env)
        self.manage("migrate", "--verbosity", "0")
        self.create_users(*USERS)
        self.start_daphne(workers=self.workers)
        self.start_worker()
        return self

    def _database_url(self) -> str:
        server = os.environ.get("DATABASE_URL", "")
        if server.startswith(("postgres://", "postgresql://")):
            self.database = PostgresDatabase(server)
            return self.database.create()
        return f"sqlite:///{self.workdir / 'db.sqlite3'}"

    def create_users(self, *names: str) -> None:
        """Users who log in with PASSWORD; their ids go into `user_ids`."""
        created = self.shell_json(
            "from django.contrib.auth.models import User\n"
            f"users = [User.objects.create_user(n, password={PASSWORD!r}) for n in {names!r}]\n"
            "result = {user.username: user.pk for user in users}"
        )
        self.user_ids.update(created)

    @property
    def broker_url(self) -> str:
        """Celery's broker: the stack's Redis, unless `env` names another."""
        return self.env["CELERY_BROKER_URL"]

    def send_task(self, name: str, **kwargs: Any) -> str:
        """Send task `name` to the stack's broker, as any producer would; returns its id."""
        app = Celery(broker=self.broker_url, set_as_current=False)
        try:
            return app.send_task(name, kwargs=kwargs).id
        finally:
            app.close()

    def notifications(self, username: str) -> list[dict]:
        """The user's saved notifications, oldest first, as the database holds them."""
        return self.shell_json(
            "from notifications.models import Notification\n"
            f"rows = Notification.objects.filter(recipient__username={username!r})\n"
            "result = list(rows.order_by('id').values('id', 'title', 'level', 'task_id'))"
        )

    def shell_json(self, code: str) -> Any:
        """Run `code` in `manage.py shell` against the stack's database; returns
        the JSON of the `result` it assigns."""
        output = self.manage(
            "shell", "--verbosity", "0", "-c", f"{code}\nimport json\nprint(json.dumps(result))"
        )
        return json.loads(output.stdout)

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
        )

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        with open(self.workdir / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                args, cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start_daphne(
        self, name: str = "daphne", port: int | None = None, workers: int = 1, plain: bool = False
    ) -> None:
        """Start (or restart, on the same port) a Daphne process called `name`,
        or with `workers`, that many behind one socket (config.serve --workers);
        `plain` runs `daphne config.asgi:application` as the README allows."""
        port = port or self.ports.get(name) or free_port()
        self.ports[name] = port
        if plain:
            command = [sys.executable, "-m", "daphne", "config.asgi:application"]
        else:
            command = [sys.executable, "-m", "config.serve", "--workers", str(workers)]
            command += ["--server", self.server]
        self._spawn(name, [*command, "-b", "127.0.0.1", "-p", str(port)])
        listening = (
            "Uvicorn running on"
            if self.server == "uvicorn" and not plain
            else ("Listening on TCP address")
        )
        wait_for(
            lambda: self.log(name).count(listening) >= workers,
            30,
            f"{name} to listen",
        )
        wait_for(lambda: self._http_up(name), 30, f"{name} to answer HTTP")

    def _http_up(self, name: str) -> bool:
        # Any answer but an error will do: with DJANGO_HTTPS it is a redirect
        # to https, which this plain-HTTP Daphne cannot follow.
        connection = http.client.HTTPConnection("127.0.0.1", self.ports[name], timeout=1)
        try:
            connection.request("GET", "/accounts/login/")
            return connection.getresponse().status < 500
        except OSError:
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited:\n" + self.log(name)) from None
            return False
        finally:
            connection.close()

    def start_worker(self, name: str = "worker") -> None:
        self.celery_workers.add(name)
        self._spawn(
            name,
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
                "--loglevel",
                "INFO",
                "--hostname",
                f"{name}@%h",
                "--without-mingle",
                "--without-gossip",
            ],
        )
        wait_for(lambda: " ready." in self.log(name), 60, f"Celery {name} to be ready")

    def kill(self, name: str) -> None:
        """SIGKILL a process and all its children at once, as when its machine dies."""
        process = self.processes.pop(name)
        for pid in [process.pid, *child_pids(process.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(10)

    def stop_process(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name)
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop(self) -> None:
        # Workers get a cold shutdown (SIGQUIT): a warm one would wait for
        # whatever long task a test left running, and the stack is thrown away.
        for name in list(self.processes):
            self.stop_process(
                name, signal.SIGQUIT if name in self.celery_workers else signal.SIGTERM
            )
        for server in self.redis_servers:
            server.stop()
        if self.database:
            self.database.drop()


def child_pids(pid: int) -> list[int]:
    """The ids of a process's children (any of its threads may have forked them)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(child) for child in (task / "children").read_text().split()]
    return children


@contextlib.contextmanager
def running(workdir: Path, name: str, **options: Any) -> Iterator[Stack]:
    """A started Stack (see Stack for `options`), stopped afterwards even if starting
    failed; its logs are kept in test-artifacts/<name>."""
    stack = Stack(workdir, **options)
    try:
        yield stack.start()
    finally:
        stack.stop()
        keep_logs(workdir, name)


def keep_logs(workdir: Path, name: str) -> None:
    # Under pytest-xdist each worker process has stacks of the same names.
    target = ARTIFACTS / "-".join(filter(None, [os.environ.get("PYTEST_XDIST_WORKER"), name]))
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(workdir, target, ignore=shutil.ignore_patterns("*.sqlite3*", "dump.rdb"))


class Browserless:
    """A signed-in HTTP session (cookies and CSRF), as a browser would hold one,
    talking to one Daphne of the stack, or to `base_url` (a proxy in front of
    it; `tls` is the context for an https one)."""

    def __init__(
        self,
        stack: Stack,
        username: str,
        daphne: str = "daphne",
        *,
        base_url: str | None = None,
        tls: ssl.SSLContext | None = None,
        password: str = PASSWORD,
    ) -> None:
        self.base_url = base_url or stack.http_url(daphne)
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), urllib.request.HTTPSHandler(context=tls)
        )
        self.opener.open(self.base_url + "/accounts/login/", timeout=10)
        response = self.post(
            "/accounts/login/", {"username": username, "password": password, "next": "/"}
        )
        if "sessionid" not in self.cookies:
            raise RuntimeError(f"login as {username} failed: {response.status}")

    @property
    def cookies(self) -> dict[str, str]:
        return {cookie.name: cookie.value for cookie in self.jar}

    @property
    def cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())

    def post(self, path: str, form: dict) -> urllib.response.addinfourl:
        request = urllib.request.Request(
            self.base_url + path,
            data=urllib.parse.urlencode(form).encode(),
            headers={
                "X-CSRFToken": self.cookies.get("csrftoken", ""),
                "Referer": self.base_url + "/",
            },
        )
        return self.opener.open(request, timeout=10)

    def start_task(self, name: str) -> str:
        with self.post("/tasks/start/", {"task": name}) as response:
            return json.load(response)["task_id"]
