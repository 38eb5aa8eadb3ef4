"""Web Push and presence on the real stack: Daphne, a Celery worker, Redis, and a
stand-in push service that verifies and decrypts what the worker sends.

The stack is `push_stack` (conftest.py), shared with the Chromium push test.
"""

import subprocess
import sys

import pytest

from tests.push_service import PushService, call, notify, push_tasks_done, register
from tests.stack import BASE_DIR, wait_for
from tests.tab import Tab

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def service(push_vapid_keys):
    service = PushService(push_vapid_keys[0])
    yield service
    service.close()
    assert service.refused == []


def test_a_user_with_no_tab_open_gets_exactly_one_push(push_stack, service):
    register(push_stack, service, "alice")

    notify(push_stack, "alice", "Your export is ready", body="3 files", url="/files/3")

    wait_for(lambda: service.count("alice"), 30, "the push")
    (saved,) = push_stack.notifications("alice")
    wait_for(lambda: push_tasks_done(push_stack) >= 1, 30, "the push task to end")
    assert service.received["alice"] == [
        {
            "id": saved["id"],
            "title": "Your export is ready",
            "body": "3 files",
            "url": "/files/3",
            "level": "info",
        }
    ]


async def test_a_user_with_a_tab_open_gets_it_in_the_tab_and_no_push(push_stack, service):
    session = register(push_stack, service, "bob")
    tab = Tab(push_stack, session)
    await tab.connect()
    try:
        assert call(session, "GET", "/api/notifications/presence/") == {"online": True}
        before = push_tasks_done(push_stack)

        notify(push_stack, "bob", "Seen in the tab")

        await tab.until(lambda m: m.get("title") == "Seen in the tab")
        wait_for(lambda: push_tasks_done(push_stack) > before, 30, "the push task to end")
        assert service.attempts["bob"] == 0
    finally:
        await tab.ws.close()
    wait_for(
        lambda: call(session, "GET", "/api/notifications/presence/") == {"online": False},
        10,
        "presence to end with the socket",
    )


def test_a_tasks_progress_never_goes_by_push_its_outcome_does(push_stack, service):
    register(push_stack, service, "carol")
    before = push_tasks_done(push_stack)

    task_id = push_stack.send_task(
        "tasks.tasks.long_job", user_id=push_stack.user_ids["carol"], seconds=2.0
    )

    wait_for(lambda: service.count("carol"), 30, "the outcome's push")
    wait_for(
        lambda: (
            f"long_job[{task_id}] succeeded" in push_stack.log("worker")
            and push_tasks_done(push_stack) >= before + 2
        ),
        30,
        "the task and its push to end",
    )
    (outcome,) = push_stack.notifications("carol")
    assert outcome["task_id"] == task_id
    assert [m["id"] for m in service.received["carol"]] == [outcome["id"]]


SUBSCRIBE = """
import os, time
from pathlib import Path
from notifications import push
from tests.push_service import Browser

go = Path(os.environ["GO"])
Path(os.environ["READY"]).touch()
deadline = time.monotonic() + 60
while not go.exists() and time.monotonic() < deadline:  # a barrier: all start together
    time.sleep(0.005)
for n in range(int(os.environ["EACH"])):
    browser = Browser(f"https://fcm.googleapis.com/fcm/send/{os.environ['TAG']}-{n}")
    try:
        push.subscribe(int(os.environ["USER_ID"]), browser.subscription)
        print("registered")
    except ValueError:
        print("refused")
"""


def test_the_device_cap_holds_under_concurrent_requests_from_several_processes(
    push_stack, tmp_path
):
    """Ten processes register five devices each for one person at once: exactly
    the cap (20) is registered, whatever the database."""
    user_id, processes = push_stack.user_ids["frank"], []
    for tag in range(10):
        env = {
            **push_stack.env,
            "GO": str(tmp_path / "go"),
            "READY": str(tmp_path / f"ready-{tag}"),
            "EACH": "5",
            "TAG": str(tag),
            "USER_ID": str(user_id),
        }
        processes.append(
            subprocess.Popen(
                [sys.executable, "manage.py", "shell", "--no-imports", "-c", SUBSCRIBE],
                cwd=BASE_DIR,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    wait_for(lambda: len(list(tmp_path.glob("ready-*"))) == 10, 60, "every process to be ready")
    (tmp_path / "go").touch()
    said = "".join(p.communicate(timeout=60)[0] for p in processes).split()
    try:
        assert said.count("registered") == 20
        assert said.count("refused") == 30
        devices = push_stack.manage(
            "shell",
            "--no-imports",
            "-c",
            f"from notifications import push; print(len(push.devices({user_id})))",
        )
        assert devices.stdout.split() == ["20"]
    finally:
        push_stack.manage(
            "shell",
            "-c",
            "from notifications.models import PushSubscription as S; "
            f"S.objects.filter(user_id={user_id}).delete()",
        )
