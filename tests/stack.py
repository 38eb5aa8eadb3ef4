"""The real stack for end-to-end tests: private Redis, Daphne and a Celery worker.

Each process writes its log to the stack's directory, which the tests keep
under test-artifacts/ so a failure can be read afterwards.
"""

import http.cookiejar
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from config.redis_server import RedisServer, free_port

BASE_DIR = Path(__file__).resolve().parent.parent
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
    def __init__(self, workdir: Path, redis_url: str | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.redis: RedisServer | None = None
        self.redis_url = redis_url
        self.ports: dict[str, int] = {}
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = dict(os.environ)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['daphne']}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ports['daphne']}/ws/notifications/"

    def start(self) -> "Stack":
        if self.redis_url is None:
            self.redis = RedisServer(self.workdir / "redis").start()
            self.redis_url = self.redis.url
        self.env.update(
            DJANGO_DEBUG="false",
            DJANGO_SECRET_KEY="e2e-secret-key-" + "x" * 40,
            DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
            DATABASE_URL=self.env.get("E2E_DATABASE_URL")
            or f"sqlite:///{self.workdir / 'db.sqlite3'}",
            REDIS_URL=self.redis_url,
            CELERY_BROKER_URL=self.redis_url,
            PYTHONUNBUFFERED="1",
        )
        self.env.pop("CHANNEL_REDIS_URLS", None)
        self.manage("migrate", "--verbosity", "0")
        self.manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import User\n"
            f"for name in {USERS!r}:\n"
            f"    User.objects.create_user(name, password={PASSWORD!r})",
        )
        self.start_daphne()
        self.start_worker()
        return self

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

    def start_daphne(self, name: str = "daphne", port: int | None = None) -> None:
        """Start (or restart, on the same port) a Daphne process called `name`."""
        port = port or self.ports.get(name) or free_port()
        self.ports[name] = port
        self._spawn(
            name, [sys.executable, "-m", "config.serve", "-b", "127.0.0.1", "-p", str(port)]
        )
        wait_for(lambda: self._http_up(name), 30, f"{name} to answer HTTP")

    def _http_up(self, name: str) -> bool:
        try:
            urllib.request.urlopen(
                f"http://127.0.0.1:{self.ports[name]}/accounts/login/", timeout=1
            )
            return True
        except OSError:
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited:\n" + self.log(name)) from None
            return False

    def start_worker(self, name: str = "worker") -> None:
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
        for name in list(self.processes):
            self.stop_process(name)
        if self.redis:
            self.redis.stop()


class Browserless:
    """A signed-in HTTP session (cookies and CSRF), as a browser would hold one."""

    def __init__(self, stack: Stack, username: str) -> None:
        self.stack = stack
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.opener.open(stack.base_url + "/accounts/login/", timeout=10)
        response = self.post(
            "/accounts/login/", {"username": username, "password": PASSWORD, "next": "/"}
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
            self.stack.base_url + path,
            data=urllib.parse.urlencode(form).encode(),
            headers={
                "X-CSRFToken": self.cookies.get("csrftoken", ""),
                "Referer": self.stack.base_url + "/",
            },
        )
        return self.opener.open(request, timeout=10)

    def start_task(self, name: str) -> str:
        with self.post("/tasks/start/", {"task": name}) as response:
            return json.load(response)["task_id"]
