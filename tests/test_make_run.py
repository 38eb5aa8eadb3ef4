"""`make run` as a new user meets it: a second terminal's `manage.py notify` reaches the tabs."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import websockets

from config.redis_server import free_port
from tests.stack import BASE_DIR, Browserless, child_pids, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def make_run(tmp_path):
    """`python -m config.run` (what `make run` runs) with nothing set, as on a new machine:
    no Redis where it looks (so it starts a private one on a random port), its own files."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS", "CELERY"))}
    env.update(
        PORT=str(free_port()),
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        RUN_DIR=str(tmp_path / "run"),
        PYTHONUNBUFFERED="1",
    )
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "config.run"], cwd=BASE_DIR, env=env, stdout=out, stderr=out
        )
    try:
        wait_for(lambda: "Open http://" in log.read_text(), 90, "make run to be up")
        wait_for(lambda: answers_http(f"http://127.0.0.1:{env['PORT']}/healthz"), 60, "Daphne")
        yield env, log, process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def answers_http(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, which is all this asks
    except OSError:
        return False


class Here:
    """Browserless wants a stack; `make run` has one address."""

    def __init__(self, port: str) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def http_url(self, _daphne: str) -> str:
        return self.url


async def notify_from_a_second_terminal(env: dict[str, str], title: str) -> None:
    """`manage.py notify` as typed in another terminal of the same checkout: none of
    make run's variables (RUN_DIR only stands in for the checkout's .run/, which this
    test must not touch)."""
    second = {k: v for k, v in env.items() if k not in ("REDIS_URL", "DATABASE_URL", "PORT")}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "manage.py", "notify", title, "--user", "demo"],
        cwd=BASE_DIR,
        env=second,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


async def notice_in_the_demo_tab(env: dict[str, str], title: str) -> dict:
    """What an open tab of the demo user receives when a second terminal sends `title`."""
    here = Here(env["PORT"])
    demo = await asyncio.to_thread(Browserless, here, "demo", password="demo-password")
    headers = {"Cookie": demo.cookie_header, "Origin": here.url}
    url = f"ws://127.0.0.1:{env['PORT']}/ws/notifications/"
    async with websockets.connect(url, additional_headers=headers) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "hello"
        await notify_from_a_second_terminal(env, title)
        return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def test_a_second_terminals_notify_reaches_the_open_tab(make_run):
    env, log, _ = make_run
    text = log.read_text()
    assert "started one at redis://" in text  # a private Redis on a random port
    assert "python manage.py notify" in text  # the hint for a second terminal
    notice = await notice_in_the_demo_tab(env, "From the other terminal")
    assert (notice["type"], notice["title"]) == ("notification", "From the other terminal")


async def test_when_its_redis_dies_make_run_starts_it_again(make_run):
    env, log, run = make_run
    (redis_pid,) = [
        pid
        for pid in child_pids(run.pid)
        if b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    os.kill(redis_pid, signal.SIGKILL)
    await asyncio.to_thread(
        wait_for, lambda: "starting it again" in log.read_text(), 30, "the Redis to be restarted"
    )
    notice = await notice_in_the_demo_tab(env, "After the restart")
    assert notice["title"] == "After the restart"
    assert run.poll() is None  # the stack is still up, whole
    assert "Traceback" not in log.read_text()


def test_make_run_turns_web_push_on_with_a_development_key_pair_it_keeps(make_run):
    env, _, _ = make_run
    public, _private = (Path(env["RUN_DIR"]) / "vapid").read_text().split()
    demo = Browserless(Here(env["PORT"]), "demo", password="demo-password")

    with demo.opener.open(f"http://127.0.0.1:{env['PORT']}/", timeout=10) as response:
        page = response.read().decode()

    assert "Notify me on this device" in page
    assert f'data-push-key="{public}"' in page
