"""The raw SQL of the publish path: reading ids, inserting rows, per-user locks.

Plain SQL on purpose, each query where the ORM cost more than the database
did (the figures are on each function). Everything else uses the ORM.
"""

from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection

from notifications.models import Notification

User = get_user_model()

# Ids per query: well under every database's limit on query parameters.
ID_CHUNK = 1000

# The first key of the per-user advisory locks (the second is the user id),
# so they cannot meet another application's locks on the same database.
LOCK_NAMESPACE = 0x6E6F7466  # "notf"

# Every column but the id, in the model's order.
_COLUMNS = [f for f in Notification._meta.concrete_fields if not f.primary_key]


def _rows(sql: str, ids: list[int], *params: Any) -> list[tuple]:
    """Run `sql` (with `{ids}` for an IN list) over `ids` in chunks; plain SQL on
    purpose: on every publish the ORM spent more time building these small queries
    than the database spent answering them (notify() ran at 700 calls/s, 1,150 without)."""
    found = []
    with connection.cursor() as cursor:
        for start in range(0, len(ids), ID_CHUNK):
            chunk = ids[start : start + ID_CHUNK]
            cursor.execute(sql.format(ids=", ".join(["%s"] * len(chunk))), [*chunk, *params])
            found += cursor.fetchall()
    return found


def existing_users(ids: list[int]) -> set[int]:
    """Which of `ids` are users' primary keys."""
    table = connection.ops.quote_name(User._meta.db_table)
    pk = connection.ops.quote_name(User._meta.pk.column)
    return {row[0] for row in _rows(f"SELECT {pk} FROM {table} WHERE {pk} IN ({{ids}})", ids)}


def newest_below(recipients: set[int], below: int) -> dict[int, int]:
    """Each recipient's newest notification id below `below` (absent when none)."""
    table = connection.ops.quote_name(Notification._meta.db_table)
    sql = (
        f"SELECT recipient_id, MAX(id) FROM {table} "
        "WHERE recipient_id IN ({ids}) AND id < %s GROUP BY recipient_id"
    )
    return dict(_rows(sql, sorted(recipients), below))


def _lock_users_sql(placeholder: str) -> str:
    """SQL that takes the per-user transaction lock of PostgreSQL for each id."""
    return f"pg_advisory_xact_lock({LOCK_NAMESPACE}, mod({placeholder}, 2147483647)::int)"


def lock_users(user_ids: list[int]) -> None:
    """Take every user's lock on PostgreSQL, in id order, as insert() takes one.

    One order for every caller, so two of them never wait for each other in a
    circle. Call inside the transaction that inserts; elsewhere a no-op.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_lock_users_sql('u')} FROM unnest(%s::bigint[]) AS u ORDER BY u",
            [sorted(user_ids)],
        )


def insert(notification: Notification) -> int | None:
    """Insert the row if its recipient exists; the recipient's previous
    notification id (0 for none), or None when there is no such recipient.

    One round trip: save() after a lookup of the user took two statements, the
    ORM spent longer compiling the insert than the database took to run it
    (this took notify() from 1,360 to 1,720 calls/s on SQLite), and asking for
    the previous id apart cost PostgreSQL a second round trip (see below). The
    values go through each field's own conversion, as save() does.

    On PostgreSQL the statement first takes the recipient's transaction lock,
    so a user's ids are drawn in commit order: two transactions that each
    notify one user commit one after the other, and the later commit always
    holds the larger id, which is what replay by id needs (a tab that has seen
    id 11 must never miss an id 10 committed after it). SQLite writes one
    transaction at a time, so its ids are in commit order already.

    The previous id must be read after the lock is held: a statement reads the
    rows committed when it began, so one that waited for the lock would miss
    the row of the transaction it waited for. On PostgreSQL a second statement
    in the same query reads it (one query is one transaction in autocommit, so
    the lock is still held); psycopg sends both at once when it binds
    parameters itself, as Django's default cursor does.
    """
    qn = connection.ops.quote_name
    values = [f.get_db_prep_save(f.pre_save(notification, True), connection) for f in _COLUMNS]
    columns = ", ".join(qn(f.column) for f in _COLUMNS)
    users = qn(User._meta.db_table)
    table = qn(Notification._meta.db_table)
    pk = qn(Notification._meta.pk.column)
    lock, source, params = "", users, [*values, notification.recipient_id]
    if connection.vendor == "postgresql":
        # A volatile CTE runs before the row it joins is built, so before nextval().
        lock, source = f"WITH user_lock AS (SELECT {_lock_users_sql('%s')}) ", f"{users}, user_lock"
        params = [notification.recipient_id, *params]
    sql = (
        f"{lock}INSERT INTO {table} ({columns}) "
        f"SELECT {', '.join(['%s'] * len(values))} FROM {source} "
        f"WHERE {users}.{qn(User._meta.pk.column)} = %s "
        f"RETURNING {pk}"
    )
    previous_sql = f"SELECT MAX({pk}) FROM {table} WHERE recipient_id = %s AND {pk} < %s"
    with connection.cursor() as cursor:
        if _sends_many_statements(cursor):
            # Under the lock, the new row is the recipient's newest: the previous
            # one is the next below it.
            cursor.execute(
                f"{sql}; SELECT {pk} FROM {table} WHERE recipient_id = %s "
                f"ORDER BY {pk} DESC LIMIT 1 OFFSET 1",
                [*params, notification.recipient_id],
            )
            row = cursor.fetchone()
            cursor.nextset()
            previous = cursor.fetchone() or (0,)
        else:
            cursor.execute(sql, params)
            row = cursor.fetchone()
            if row:
                cursor.execute(previous_sql, [notification.recipient_id, row[0]])
                previous = cursor.fetchone() or (0,)
    if row is None:
        return None
    notification.pk = row[0]
    notification._state.adding = False
    notification._state.db = connection.alias
    return previous[0] or 0


def _sends_many_statements(cursor: Any) -> bool:
    """Whether the cursor can run two statements in one round trip: psycopg's
    client-side binding cursor (Django's default on PostgreSQL) can."""
    if connection.vendor != "postgresql":
        return False
    import psycopg

    return isinstance(cursor.cursor, psycopg.ClientCursor)
