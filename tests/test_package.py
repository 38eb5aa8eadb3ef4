"""The package as a Django team gets it: a wheel, a fresh virtualenv, a new project.

The wheel built from this repository is installed with its `celery` extra into
a virtualenv of its own, next to a brand-new `django-admin startproject` with
a custom user model (email sign-in), the app under a non-default URL prefix
(alerts/) and WebSocket path (live/alerts/), and the lines the README tells a
user to add (tests/package_site/). Then real Redis, plain Daphne and a Celery
worker run it, and a WebSocket client sees what a browser would.
"""

import asyncio
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import websockets

from config.redis_server import RedisServer, free_port
from tests.stack import BASE_DIR, wait_for

pytestmark = [pytest.mark.package, pytest.mark.slow]

SITE_FILES = Path(__file__).parent / "package_site"
EMAIL = "ada@example.com"


class Site:
    def __init__(self, root: Path, venv: Path, env: dict[str, str]) -> None:
        self.root, self.venv, self.env = root, venv, env
        self.processes: list[subprocess.Popen] = []
        self.port = free_port()

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.venv / "bin" / args[0]), *args[1:]],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=check,
        )

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("python", "manage.py", *args, check=check)

    def shell(self, code: str) -> str:
        """Run `code` in the project's shell; the last line it printed."""
        output = self.manage("shell", "--verbosity", "0", "-c", code).stdout.strip()
        return output.splitlines()[-1] if output else ""

    def start(self, name: str, *args: str) -> None:
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 (lives as long as the process)
        self.processes.append(
            subprocess.Popen(
                [str(self.venv / "bin" / args[0]), *args[1:]],
                cwd=self.root,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    work = tmp_path_factory.mktemp("package")
    # Built from a copy: setuptools writes build/ into the tree it builds.
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(BASE_DIR / name, source / name)
    shutil.copytree(
        BASE_DIR / "notifications",
        source / "notifications",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work / "dist", source],
        check=True,
        timeout=300,
    )
    (wheel,) = (work / "dist").glob("django_celery_notify-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    # The newest releases the package allows, or the Django the matrix session names
    # (noxfile.py: PACKAGE_TEST_DJANGO="Django~=6.1.0").
    django = [os.environ["PACKAGE_TEST_DJANGO"]] if os.getenv("PACKAGE_TEST_DJANGO") else []
    subprocess.run(
        [
            venv / "bin" / "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            f"{wheel}[celery]",
            *django,
        ],
        check=True,
        timeout=600,
    )
    root = work / "site"
    root.mkdir()
    subprocess.run([venv / "bin" / "django-admin", "startproject", "mysite", root], check=True)
    shutil.copytree(SITE_FILES, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.md"))
    settings = root / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + (root / "mysite" / "settings_addon.py").read_text())
    init = root / "mysite" / "__init__.py"
    init.write_text("from mysite.celery import app as celery_app\n\n__all__ = ('celery_app',)\n")
    redis = RedisServer(work / "redis").start()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "REDIS_URL": redis.url, "HOME": str(work)}
    project = Site(root, venv, env)
    try:
        project.manage("makemigrations", "accounts")
        project.manage("migrate", "--verbosity", "0")
        project.shell(
            f"from accounts.models import User; User.objects.create_user({EMAIL!r}, 'pw')"
        )
        project.start(
            "daphne",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(project.port),
            "mysite.asgi:application",
        )
        project.start("worker", "celery", "-A", "mysite", "worker", "--pool", "solo", "-l", "INFO")
        wait_for(lambda: "Listening on TCP address" in project.log("daphne"), 60, "Daphne")
        wait_for(lambda: " ready." in project.log("worker"), 60, "the worker")
        yield project
    finally:
        project.stop()
        redis.stop()


def session_cookie(site: Site) -> str:
    key = site.shell(
        "from django.test import Client; from accounts.models import User\n"
        f"client = Client(); client.force_login(User.objects.get(email={EMAIL!r}))\n"
        "print(client.cookies['sessionid'].value)"
    )
    return f"sessionid={key}"


async def next_message(ws) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), 20))


def test_the_check_framework_is_content(site):
    assert "System check identified no issues" in site.manage("check").stdout


async def test_a_task_and_the_command_reach_the_socket_and_the_inbox_answers(site):
    cookie = await asyncio.to_thread(session_cookie, site)
    origin = f"http://127.0.0.1:{site.port}"
    url = f"ws://127.0.0.1:{site.port}/live/alerts/"
    async with websockets.connect(
        url, additional_headers={"Cookie": cookie, "Origin": origin}
    ) as ws:
        assert (await next_message(ws))["type"] == "hello"
        await asyncio.to_thread(
            site.shell,
            "from accounts.models import User; from jobs.tasks import export\n"
            f"print(export.delay(user_id=User.objects.get(email={EMAIL!r}).pk).id)",
        )
        progress = [await next_message(ws) for _ in range(3)]
        assert [m["percent"] for m in progress] == [33.3, 66.7, 100]
        done = await next_message(ws)
        assert (done["type"], done["title"], done["level"]) == (
            "notification",
            "Yearly export finished",
            "success",
        )
        assert (done["body"], done["url"]) == ("3 steps done", "/exports/1/")
        result = await asyncio.to_thread(site.manage, "notify", "Maintenance", "--user", EMAIL)
        assert result.stdout.strip() == "Notified 1 user."
        notice = await next_message(ws)
        assert (notice["type"], notice["title"]) == ("notification", "Maintenance")
    request = urllib.request.Request(f"{origin}/alerts/", headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=10) as response:
        inbox = json.load(response)
    assert [n["title"] for n in inbox["notifications"]] == ["Maintenance", "Yearly export finished"]
    assert inbox["unread"] == 2
