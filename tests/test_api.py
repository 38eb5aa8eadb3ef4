"""The inbox's HTTP API: login, CSRF, ownership, paging, and tabs told of reads."""

import pytest
from django.test import Client

from notifications import mark_read, notify
from notifications.models import Notification
from tests.sockets import Listener

pytestmark = pytest.mark.django_db

LIST = "/api/notifications/"
COUNT = "/api/notifications/unread-count/"
READ_ALL = "/api/notifications/read-all/"


def read_url(notification_id: int) -> str:
    return f"/api/notifications/{notification_id}/read/"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def titles(response) -> list[str]:
    return [n["title"] for n in response.json()["notifications"]]


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", LIST), ("get", COUNT), ("post", read_url(1)), ("post", READ_ALL)],
)
def test_anonymous_callers_get_401_json_not_a_login_redirect(client, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 401
    assert response.json() == {"error": "login required"}


def test_list_is_newest_first_and_only_the_callers_own(alice, bob):
    for title in ("First", "Second", "Third"):
        notify(alice, title)
    notify(bob, "Bob's")
    response = signed_in(alice).get(LIST)
    assert response.status_code == 200
    assert titles(response) == ["Third", "Second", "First"]
    assert response.json()["unread"] == 3


def test_a_listed_notification_is_the_websocket_message_plus_read(alice):
    actions = [{"label": "Download", "url": "/r/1.pdf"}]
    n = notify(
        alice,
        "Report ready",
        body="6 regions",
        level="success",
        url="/r/1",
        task_id="t",
        kind="report",
        collapse_key="reports",
        actions=actions,
    )
    (listed,) = signed_in(alice).get(LIST).json()["notifications"]
    assert listed == {
        "type": "notification",
        "id": n.pk,
        "level": "success",
        "title": "Report ready",
        "body": "6 regions",
        "url": "/r/1",
        "data": {},
        "task_id": "t",
        "kind": "report",
        "collapse_key": "reports",
        "actions": actions,
        "created_at": n.created_at.isoformat(),
        "read": False,
    }


def test_after_lists_the_following_ones_oldest_first(alice, bob):
    first, *rest = [notify(alice, f"Notice {i}") for i in range(4)]
    notify(bob, "Bob's, in between")
    response = signed_in(alice).get(LIST, {"after": first.pk, "limit": 2})
    assert [n["id"] for n in response.json()["notifications"]] == [rest[0].pk, rest[1].pk]


def test_limit_defaults_to_20_and_is_clamped_to_1_and_100(alice):
    Notification.objects.bulk_create(
        Notification(recipient=alice, title=f"Bulk {i}") for i in range(105)
    )
    client = signed_in(alice)
    assert len(titles(client.get(LIST))) == 20
    assert len(titles(client.get(LIST, {"limit": 0}))) == 1
    assert len(titles(client.get(LIST, {"limit": 5000}))) == 100


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"after": "abc"}, "'after' must be a non-negative integer, not 'abc'"),
        ({"after": "-1"}, "'after' must be a non-negative integer, not '-1'"),
        ({"limit": "ten"}, "'limit' must be a non-negative integer, not 'ten'"),
        ({"limit": "١٠"}, "'limit' must be a non-negative integer"),
    ],
)
def test_bad_parameters_answer_400_with_the_reason(alice, params, message):
    response = signed_in(alice).get(LIST, params)
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)


def test_unread_count_counts_only_the_callers_unread(alice, bob):
    notify(alice, "One")
    mark_read(alice.pk, [notify(alice, "Two").pk])
    notify(bob, "Bob's")
    assert signed_in(alice).get(COUNT).json() == {"unread": 1}


def test_marking_one_read_changes_the_count_and_the_list(alice):
    keep, mark = notify(alice, "Keep"), notify(alice, "Mark")
    client = signed_in(alice)
    response = client.post(read_url(mark.pk))
    assert response.json() == {"id": mark.pk, "read": True, "unread": 1}
    listed = {n["id"]: n["read"] for n in client.get(LIST).json()["notifications"]}
    assert listed == {keep.pk: False, mark.pk: True}
    # Marking it again is harmless.
    assert client.post(read_url(mark.pk)).json()["unread"] == 1


@pytest.mark.parametrize("whose", ["another user's", "a missing", "an impossible"])
def test_another_users_notification_answers_404_like_a_missing_one(alice, bob, whose):
    bobs = notify(bob, "Bob's")
    notification_id = {"another user's": bobs.pk, "a missing": bobs.pk + 1000}.get(whose, 2**70)
    response = signed_in(alice).post(read_url(notification_id))
    assert response.status_code == 404
    assert response.json() == {"error": "no such notification"}
    bobs.refresh_from_db()
    assert bobs.read_at is None


def test_read_all_marks_only_the_callers_own(alice, bob):
    mine = [notify(alice, "A"), notify(alice, "B")]
    bobs = notify(bob, "Bob's")
    response = signed_in(alice).post(READ_ALL)
    assert sorted(response.json()["ids"]) == sorted(n.pk for n in mine)
    assert response.json()["unread"] == 0
    bobs.refresh_from_db()
    assert bobs.read_at is None


def test_writes_need_the_csrf_token(alice):
    n = notify(alice, "Unread")
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get("/")  # the page sets the CSRF cookie, as in a browser
    assert client.post(read_url(n.pk)).status_code == 403
    assert client.post(READ_ALL).status_code == 403
    n.refresh_from_db()
    assert n.read_at is None
    token = client.cookies["csrftoken"].value
    assert client.post(read_url(n.pk), headers={"X-CSRFToken": token}).status_code == 200


@pytest.mark.parametrize(("method", "path"), [("post", LIST), ("get", READ_ALL)])
def test_wrong_method_answers_405(alice, method, path):
    assert getattr(signed_in(alice), method)(path).status_code == 405


def test_read_all_tells_every_tab_of_the_user(
    alice, bob, redis_server, django_capture_on_commit_callbacks
):
    tabs = [Listener(alice.pk), Listener(alice.pk)]
    bobs_tab = Listener(bob.pk)
    with django_capture_on_commit_callbacks(execute=True):
        ids = [notify(alice, "A").pk, notify(alice, "B").pk]
    for tab in tabs:
        tab.receive(), tab.receive()  # the two notifications
    with django_capture_on_commit_callbacks(execute=True):
        signed_in(alice).post(READ_ALL)
    for tab in tabs:
        event = tab.receive()
        assert (event["type"], sorted(event["ids"]), event["unread"]) == ("read", ids, 0)
    assert bobs_tab.receives_nothing()
