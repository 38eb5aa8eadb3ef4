"""Web Push and presence on the real stack: Daphne, a Celery worker, Redis, and a
stand-in push service that verifies and decrypts what the worker sends.

The stack is this module's own: push needs VAPID keys and an http endpoint on
127.0.0.1, which the shared stack does not turn on for every other test.
"""

import json
import urllib.request

import pytest

from notifications.push import new_vapid_keys
from tests.push_service import PushService
from tests.stack import Browserless, running, wait_for
from tests.tab import Tab

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def vapid_public_private():
    return new_vapid_keys()


@pytest.fixture(scope="module")
def push_stack(tmp_path_factory, vapid_public_private):
    public, private = vapid_public_private
    env = {
        "NOTIFICATIONS_VAPID_PUBLIC_KEY": public,
        "NOTIFICATIONS_VAPID_PRIVATE_KEY": private,
        "NOTIFICATIONS_VAPID_SUBJECT": "mailto:ops@example.com",
        "NOTIFICATIONS_PUSH_EXTRA_HOSTS": "127.0.0.1",
        "NOTIFICATIONS_PUSH_ALLOW_HTTP": "true",
    }
    with running(tmp_path_factory.mktemp("push-stack"), "push-stack", env=env) as stack:
        yield stack


@pytest.fixture
def service(vapid_public_private):
    service = PushService(vapid_public_private[0])
    yield service
    service.close()
    assert service.refused == []


def call(session: Browserless, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        session.base_url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "X-CSRFToken": session.cookies.get("csrftoken", ""),
            "Referer": session.base_url + "/",
        },
    )
    with session.opener.open(request, timeout=10) as response:
        return json.load(response)


def register(stack, service: PushService, username: str) -> Browserless:
    """Sign in and register a browser's subscription through the API, as push.js does."""
    session = Browserless(stack, username)
    browser = service.browser(username)
    call(session, "POST", "/api/notifications/push/subscriptions/", browser.subscription)
    return session


def push_tasks_done(stack) -> int:
    return stack.log("worker").count("] succeeded")


def notify(stack, username: str, title: str, **options: str) -> None:
    args = [f"--{name}={value}" for name, value in options.items()]
    stack.manage("notify", title, "--user", username, *args)


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
