"""The raw SQL of the publish path: reading ids, inserting rows, per-user locks.

Plain SQL on purpose, each query where the ORM cost more than the database
did (the figures are on each function). Everything else uses the ORM.
"""

import copy
from functools import cache
from typing import Any
from weakref import WeakSet

from django.contrib.auth import get_user_model
from django.db import connection

from notifications.models import Notification

try:
    import psycopg
except ImportError:  # a project on SQLite only
    psycopg = None

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
    parameters itself, as Django's default cursor does. In autocommit both are
    prepared once per connection (`_execute_prepared`).
    """
    qn = connection.ops.quote_name
    values = [f.get_db_prep_save(f.pre_save(notification, True), connection) for f in _COLUMNS]
    user = notification.recipient_id
    with connection.cursor() as cursor:
        if _sends_many_statements(cursor):
            if connection.in_atomic_block:
                cursor.execute(_postgresql_sql(), [user, *values, user, user])
            else:
                _execute_prepared(cursor, [user, *values])
            row = cursor.fetchone()
            cursor.nextset()
            previous = cursor.fetchone() or (0,)
        else:
            users, table = qn(User._meta.db_table), qn(Notification._meta.db_table)
            pk = qn(Notification._meta.pk.column)
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(qn(f.column) for f in _COLUMNS)}) "
                f"SELECT {', '.join(['%s'] * len(values))} FROM {users} "
                f"WHERE {users}.{qn(User._meta.pk.column)} = %s RETURNING {pk}",
                [*values, user],
            )
            row = cursor.fetchone()
            if row:
                cursor.execute(
                    f"SELECT MAX({pk}) FROM {table} WHERE recipient_id = %s AND {pk} < %s",
                    [user, row[0]],
                )
                previous = cursor.fetchone() or (0,)
    if row is None:
        return None
    notification.pk = row[0]
    notification._state.adding = False
    notification._state.db = connection.alias
    return previous[0] or 0


def insert_many(user_ids: list[int], fields: dict) -> tuple[list[Notification], dict[int, int]]:
    """One row of `fields` per user, in one statement; call under lock_users().
    Returns the rows and each recipient's previous notification id (absent
    when none).

    bulk_create() built the statement through the ORM, field by field and row
    by row: for a broadcast to 5,000 users that took longer than the database
    took to insert them. On PostgreSQL one INSERT ... SELECT over the array of
    ids sends the shared values once, and reads the previous ids in the same
    statement (its snapshot, taken under the locks, holds none of the new
    rows). The ids are drawn in user id order, as the locks were taken.
    """
    if connection.vendor != "postgresql" or not user_ids:
        created = Notification.objects.bulk_create(
            Notification(recipient_id=user_id, **fields) for user_id in user_ids
        )
        below = min((n.pk for n in created), default=0)
        return created, newest_below(set(user_ids), below) if created else {}
    qn = connection.ops.quote_name
    template = Notification(recipient_id=0, **fields)
    shared = [f for f in _COLUMNS if f.column != "recipient_id"]
    values = [f.get_db_prep_save(f.pre_save(template, True), connection) for f in shared]
    table, pk = qn(Notification._meta.db_table), qn(Notification._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH recipients AS (SELECT u, (SELECT MAX({pk}) FROM {table} "
            f"WHERE recipient_id = u) AS previous FROM unnest(%s::bigint[]) AS u), "
            f"inserted AS (INSERT INTO {table} "
            f"(recipient_id, {', '.join(qn(f.column) for f in shared)}) "
            f"SELECT u, {', '.join(['%s'] * len(values))} FROM recipients "
            f"ORDER BY u RETURNING {pk}, recipient_id) "
            "SELECT inserted.*, previous FROM inserted JOIN recipients ON u = recipient_id",
            [sorted(user_ids), *values],
        )
        rows = cursor.fetchall()
    template._state.adding = False
    template._state.db = connection.alias
    created, previous = [], {}
    for pk_value, user_id, before in rows:
        notification = copy.copy(template)  # a tenth of the cost of Notification(...)
        notification.pk, notification.recipient_id = pk_value, user_id
        created.append(notification)
        if before is not None:
            previous[user_id] = before
    created.sort(key=lambda n: n.pk)
    return created, previous


@cache
def _postgresql_sql(param: str = "%s") -> str:
    """The insert under the recipient's lock, then the recipient's previous id.

    Parameters: the user id, each column's value, the user id again (for the
    insert), then the user id (for the previous id); `param` names them.
    A volatile CTE runs before the row it joins is built, so the lock is taken
    before nextval(). Under the lock the new row is the recipient's newest:
    the previous one is the next below it.
    """
    qn = connection.ops.quote_name
    users, table = qn(User._meta.db_table), qn(Notification._meta.db_table)
    pk = qn(Notification._meta.pk.column)
    numbered = param != "%s"
    first, values, again, last = (
        ("$1", [f"${i}" for i in range(2, len(_COLUMNS) + 2)], "$1", "$1")
        if numbered
        else ("%s", ["%s"] * len(_COLUMNS), "%s", "%s")
    )
    return (
        f"WITH user_lock AS (SELECT {_lock_users_sql(first)}) "
        f"INSERT INTO {table} ({', '.join(qn(f.column) for f in _COLUMNS)}) "
        f"SELECT {', '.join(values)} FROM {users}, user_lock "
        f"WHERE {users}.{qn(User._meta.pk.column)} = {again} RETURNING {pk}; "
        f"SELECT {pk} FROM {table} WHERE recipient_id = {last} ORDER BY {pk} DESC LIMIT 1 OFFSET 1"
    )


# PostgreSQL connections (psycopg's) on which _execute_prepared has prepared its statements.
_prepared: WeakSet = WeakSet()
_STATEMENTS = ("notifications_insert", "notifications_previous")


def _execute_prepared(cursor: Any, params: list) -> None:
    """Run the statements of `_postgresql_sql` as ones prepared on this connection.

    Planning them on every call cost more than running them: measured alone on
    PostgreSQL 15, 0.65 ms a call planned each time, 0.50 ms prepared. A
    prepared statement lives as long as its server session; one that is gone
    (a pooler in transaction mode, DISCARD ALL) is prepared again, which is
    safe here because in autocommit the failed call changed nothing.
    """
    raw = connection.connection
    run = _execute_sql(len(params))
    for attempt in (1, 2):
        if raw not in _prepared:
            insert_sql, previous_sql = _postgresql_sql("$").split("; ")
            types = ", ".join(["bigint", *(f.db_type(connection) for f in _COLUMNS)])
            # A session this process did not see begin (behind a pooler) may hold them.
            cursor.execute(
                "SELECT name FROM pg_prepared_statements WHERE name = ANY(%s)", [list(_STATEMENTS)]
            )
            for (name,) in cursor.fetchall():
                cursor.execute(f"DEALLOCATE {name}")
            cursor.execute(
                f"PREPARE notifications_insert({types}) AS {insert_sql}; "
                f"PREPARE notifications_previous(bigint) AS {previous_sql}"
            )
            _prepared.add(raw)
        try:
            cursor.execute(run, [*params, params[0]])
            return
        except Exception as exc:
            if attempt == 2 or not isinstance(
                exc.__cause__, psycopg.errors.InvalidSqlStatementName
            ):
                raise
            _prepared.discard(raw)


@cache
def _execute_sql(count: int) -> str:
    args = ", ".join(["%s"] * count)
    return f"EXECUTE notifications_insert({args}); EXECUTE notifications_previous(%s)"


def _sends_many_statements(cursor: Any) -> bool:
    """Whether the cursor can run two statements in one round trip: psycopg's
    client-side binding cursor (Django's default on PostgreSQL) can."""
    return (
        connection.vendor == "postgresql"
        and psycopg is not None
        and isinstance(cursor.cursor, psycopg.ClientCursor)
    )
