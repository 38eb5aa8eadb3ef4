"""notify() and friends on a real channels-redis layer backed by the private Redis."""

import logging

import pytest
from django.db import connection, transaction

from notifications import flush, mark_read, metrics, notify, notify_all, notify_many, publish
from notifications.models import Notification
from tests.sockets import Listener

pytestmark = pytest.mark.django_db(transaction=True)


def test_notify_saves_then_sends_to_the_users_group(alice, redis_server):
    listener = Listener(alice.pk)
    n = notify(alice, "Report ready", body="6 regions", level="success", url="/r/1", data={"k": 1})
    assert Notification.objects.get(pk=n.pk).title == "Report ready"
    message = listener.receive()
    assert message == {
        "type": "notification",
        "id": n.pk,
        "level": "success",
        "title": "Report ready",
        "body": "6 regions",
        "url": "/r/1",
        "data": {"k": 1},
        "task_id": None,
        "kind": "",
        "collapse_key": "",
        "actions": [],
        "created_at": n.created_at.isoformat(),
    }


def test_notify_accepts_a_user_id(alice, redis_server):
    assert notify(alice.pk, "By id").recipient_id == alice.pk


def test_user_never_receives_another_users_notice(alice, bob, redis_server):
    bobs = Listener(bob.pk)
    notify(alice, "For Alice only")
    assert bobs.receives_nothing()


def test_nothing_is_sent_before_commit_nor_after_rollback(alice, redis_server):
    listener = Listener(alice.pk)
    with pytest.raises(RuntimeError), transaction.atomic():
        notify(alice, "Rolled back")
        raise RuntimeError
    assert listener.receives_nothing()
    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"level": "urgent"}, "unknown level 'urgent'"),
        ({"title": "x" * 201}, "title is 201 characters long"),
        ({"title": "  "}, "title must be a non-empty string"),
        ({"data": {"when": object()}}, "data is not JSON-serialisable"),
        ({"data": {"nan": float("nan")}}, "data is not JSON-serialisable"),
        ({"data": ["a", "list"]}, "data must be a JSON object"),
    ],
)
def test_invalid_input_raises_a_clear_error_and_saves_nothing(alice, options, error):
    arguments = {"title": "Fine", **options}
    with pytest.raises(ValueError, match=error):
        notify(alice, arguments.pop("title"), **arguments)
    assert not Notification.objects.exists()


def test_unknown_user_is_a_clear_error(db):
    with pytest.raises(ValueError, match=r"unknown user id\(s\): \[999\]"):
        notify(999, "Nobody")


def test_notify_many_and_all_reach_each_user_once(alice, bob, stranger, redis_server):
    listeners = {user.pk: Listener(user.pk) for user in (alice, bob, stranger)}
    sent = notify_many([alice, bob.pk, alice], "Maintenance at 22:00")
    assert sorted(n.recipient_id for n in sent) == sorted([alice.pk, bob.pk])
    for user in (alice, bob):
        assert listeners[user.pk].receive()["title"] == "Maintenance at 22:00"
    assert listeners[stranger.pk].receives_nothing()

    stranger.is_active = False
    stranger.save()
    assert {n.recipient_id for n in notify_all("Hello everyone")} == {alice.pk, bob.pk}


def test_notify_many_commits_in_batches_outside_a_transaction_and_whole_inside_one(
    alice, bob, redis_server, monkeypatch
):
    monkeypatch.setattr(publish, "MANY_BATCH", 1)
    committed = []  # the recipients of each commit, when it happens
    monkeypatch.setattr(
        publish.sender,
        "submit",
        lambda pairs: committed.append([group for group, _ in pairs]),
    )
    notify_many([bob, alice], "In batches")
    assert committed == [[f"user.{alice.pk}"], [f"user.{bob.pk}"]]  # in id order

    committed.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        notify_many([bob, alice], "Whole")
        assert committed == []  # nothing sent before the caller's commit
        raise RuntimeError
    assert committed == []
    assert not Notification.objects.filter(title="Whole").exists()


def test_each_event_of_notify_many_names_its_recipients_previous_notification(
    alice, bob, redis_server
):
    """A tab that has not received `previous` yet reads it from the database."""
    earlier = notify(alice, "Earlier")
    listeners = {user.pk: Listener(user.pk) for user in (alice, bob)}
    sent = {n.recipient_id: n for n in notify_many([bob, alice], "Maintenance at 22:00")}
    alices, bobs = listeners[alice.pk].receive_event(), listeners[bob.pk].receive_event()
    assert (alices["message"]["id"], alices["previous"]) == (sent[alice.pk].pk, earlier.pk)
    assert (bobs["message"]["id"], bobs["previous"]) == (sent[bob.pk].pk, 0)
    assert alices["message"]["created_at"] == sent[alice.pk].created_at.isoformat()


def test_notify_reuses_one_redis_connection(alice, redis_server, redis_client):
    def connections() -> int:
        # The metrics flusher's own connection (notifications/metrics.py) opens
        # on its first flush, whenever that falls; it is not the send path's.
        return sum(1 for c in redis_client.client_list() if c["name"] != metrics.CLIENT_NAME)

    notify(alice, "Warm up")
    before = connections()
    for i in range(50):
        notify(alice, f"Notice {i}")
    assert connections() <= before


def test_unreachable_redis_still_saves_and_warns(alice, caplog, redis_server):
    from config.redis_server import free_port
    from tests.conftest import use_redis

    use_redis(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with caplog.at_level(logging.WARNING, logger="notifications.sender"):
            n = notify(alice, "Saved anyway")
            flush()
    finally:
        use_redis(redis_server.url)
    assert Notification.objects.filter(pk=n.pk).exists()
    # Refused at once (redis-py 8), or retried until the send timeout (redis-py 5.0).
    given_up = ("could not send 1 notification message(s)", "1 events not sent")
    assert any(text in caplog.text for text in given_up), caplog.text


def test_a_redis_that_is_down_is_tried_once_then_calls_queue(alice, caplog, redis_server):
    """The first failed direct send pauses them: later calls do not each wait on Redis."""
    from config.redis_server import free_port
    from tests.conftest import use_redis

    use_redis(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with caplog.at_level(logging.WARNING, logger="notifications.sender"):
            saved = [notify(alice, f"Saved anyway {i}") for i in range(20)]
            flush()
    finally:
        use_redis(redis_server.url)
    assert Notification.objects.filter(pk__in=[n.pk for n in saved]).count() == 20
    assert caplog.text.count("sending directly failed") == 1
    listener = Listener(alice.pk)
    notify(alice, "Redis is back")
    assert listener.receive()["title"] == "Redis is back"


def test_a_prepared_statement_that_is_gone_is_prepared_again(alice, redis_server):
    """As when a pooler hands the next call another server session (store.py)."""
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL's notify() uses prepared statements")
    listener = Listener(alice.pk)
    first = notify(alice, "Prepared")
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    second = notify(alice, "Prepared again")
    assert [listener.receive()["id"] for _ in range(2)] == [first.pk, second.pk]


def test_mark_read_ignores_ids_no_database_can_hold(alice, redis_server):
    n = notify(alice, "Unread")
    assert mark_read(alice.pk, [2**70, -1, n.pk]) == [n.pk]
