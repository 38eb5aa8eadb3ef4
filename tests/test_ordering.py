"""A user's notifications are numbered in commit order, so replay by id misses none.

On PostgreSQL two transactions draw ids in one order and may commit in the
other; replay asks for "ids after the newest I saw", so the one committed
later with the smaller id would never reach that tab.
"""

import threading

import pytest
from django.db import connection, transaction

from notifications import notify, notify_many
from notifications.inbox import missed
from tests.stack import wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="SQLite writes one transaction at a time: ids are in commit order there",
    ),
]


def waiting_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        return cursor.fetchone()[0] > 0


@pytest.mark.parametrize("second_call", ["notify", "notify_many"])
def test_the_later_commit_holds_the_larger_id(alice, bob, second_call):
    inserted, release = threading.Event(), threading.Event()
    committed: list[int] = []  # ids, in the order their transactions committed

    def long_transaction() -> None:
        """A caller's transaction.atomic() that saves a notification, then works on."""
        try:
            with transaction.atomic():
                first = notify(alice, "Inside a long transaction")
                inserted.set()
                release.wait(10)
            committed.append(first.pk)
        finally:
            connection.close()

    def quick_call() -> None:
        try:
            if second_call == "notify":
                committed.append(notify(alice, "Quick").pk)
            else:
                committed.append(notify_many([bob, alice], "Quick")[1].pk)
        finally:
            connection.close()

    slow = threading.Thread(target=long_transaction)
    slow.start()
    assert inserted.wait(10)
    quick = threading.Thread(target=quick_call)
    quick.start()
    # The quick call either commits at once (ids out of commit order) or waits
    # for the long transaction's lock on the user.
    wait_for(lambda: committed or waiting_for_a_lock(), 10, "the quick call to commit or wait")
    seen_before_release = list(committed)
    release.set()
    slow.join(10)
    quick.join(10)
    assert committed == sorted(committed), "a later commit got a smaller id"
    if seen_before_release:  # a tab that saw this id must get the other one by replay
        replay, _ = missed(alice.pk, seen_before_release[0], 100)
        assert [m["id"] for m in replay] == [i for i in committed if i > seen_before_release[0]]
