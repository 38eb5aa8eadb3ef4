"""Hardening of the task path: starting a task, and the notice that ends it.

The in-process Celery app publishes to the private Redis (conftest.py), so
the broker's queue shows whether a task was enqueued.
"""

import json

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from notifications import anotify, notify
from notifications.models import Notification

QUEUE = "celery"  # Celery's default queue: a Redis list of that name

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client_of_alice(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def queued(redis_client) -> list[dict]:
    """The headers of the task messages waiting in the broker."""
    return [json.loads(raw)["headers"] for raw in redis_client.lrange(QUEUE, 0, -1)]


def post_json(client: Client, body: str | bytes):
    return client.post("/tasks/start/", body, content_type="application/json")


def test_a_json_body_starts_the_task_it_names(client_of_alice, alice, redis_client):
    response = post_json(client_of_alice, json.dumps({"task": "import"}))
    assert response.status_code == 202
    assert response.json()["task"] == "import"
    (headers,) = queued(redis_client)
    assert headers["task"] == "tasks.tasks.import_contacts"
    assert headers["id"] == response.json()["task_id"]
    assert headers["kwargsrepr"] == repr({"user_id": alice.pk})


def test_the_demo_pages_form_still_starts_its_task(client_of_alice, redis_client):
    # jobs.js posts the form as FormData (multipart), always with its hidden `task` field.
    response = client_of_alice.post("/tasks/start/", {"task": "quick"})
    assert response.status_code == 202
    assert [h["task"] for h in queued(redis_client)] == ["tasks.tasks.warm_cache"]


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        b'{"task": "import"\xff}',  # not UTF-8
        "[" * 100_000,  # nesting deep enough to exhaust the parser's recursion
        '["import"]',
        '"import"',
        "null",
        "{}",
        '{"task": null}',
        '{"task": 1}',
        '{"task": ["import"]}',
        '{"task": "nope"}',
        '{"task": ""}',
    ],
)
def test_a_json_body_that_names_no_known_task_is_400_and_starts_nothing(
    client_of_alice, redis_client, body
):
    response = post_json(client_of_alice, body)
    assert response.status_code == 400
    assert isinstance(response.json()["error"], str)
    assert queued(redis_client) == []


@pytest.mark.parametrize("form", [{}, {"other": "import"}, {"task": "nope"}])
def test_a_form_that_names_no_known_task_is_400_and_starts_nothing(
    client_of_alice, redis_client, form
):
    response = client_of_alice.post("/tasks/start/", form)
    assert response.status_code == 400
    assert isinstance(response.json()["error"], str)
    assert queued(redis_client) == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", ""])
def test_another_content_type_is_415_and_starts_nothing(
    client_of_alice, redis_client, content_type
):
    response = client_of_alice.post(
        "/tasks/start/", '{"task": "import"}', content_type=content_type
    )
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]
    assert queued(redis_client) == []


# --- A dedupe hit pushes the saved notification again ------------------------


@pytest.mark.parametrize("publish", [sync_to_async(notify), anotify], ids=["notify", "anotify"])
async def test_a_dedupe_hit_pushes_the_saved_notification_again(sockets, alice, publish):
    # A worker died after saving the notice and before pushing it; its re-run
    # hits the key, and the tab must still get the notice.
    saved = await sync_to_async(Notification.objects.create)(
        recipient=alice, title="Report finished", dedupe_key="task:t-1", task_id="t-1"
    )
    tab, _, _ = await sockets(alice)
    assert (await tab.receive_json_from(timeout=5))["type"] == "hello"
    again = await publish(alice, "Report finished", task_id="t-1", dedupe_key="task:t-1")
    message = await tab.receive_json_from(timeout=5)
    assert (message["type"], message["id"], message["title"]) == (
        "notification",
        saved.pk,
        "Report finished",
    )
    assert again.pk == saved.pk
    assert await Notification.objects.filter(recipient=alice).acount() == 1
