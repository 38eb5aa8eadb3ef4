"""The publish API: the only module that sends to browsers.

A notification is saved first and sent to its recipient's group once the
transaction commits, so a browser that is away finds it later in the inbox,
and a rolled-back transaction never announces a row that does not exist.
The channel layer is only the fast path: when Redis is unreachable the row is
still saved, a warning is logged and the caller carries on.
"""

import asyncio
import atexit
import json
import logging
import math
import os
import threading
from collections import Counter, deque
from collections.abc import Iterable
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from notifications import limits, messages, metrics
from notifications.conf import app_settings
from notifications.models import Level, Notification

log = logging.getLogger(__name__)

# An event's "type" names the consumer method that relays it ("push" -> push()).
EVENT_TYPE = "push"

User = get_user_model()
ID_MAX = limits.INT_MAX  # the largest primary key a BigAutoField can hold


def user_group(user_id: int) -> str:
    """The channel-layer group of one user's open sockets."""
    return f"user.{int(user_id)}"


# --- Sending ---------------------------------------------------------------


class _Sender:
    """Sends for sync callers from one event loop thread per process, in call order.

    `async_to_sync(group_send)` per call builds a new event loop, and the
    channel layer keeps its Redis connections per loop, so every call would
    open a new connection (a few hundred sends a second at best). Sync callers
    hand their events to this long-lived loop instead, which keeps one
    connection pool for the life of the process.

    A caller does not wait for Redis either: its events join one FIFO queue,
    and a single sender task sends everything queued since its last round
    trip in one `group_send_many`. One queue and one sender keep every user's
    events in call order, and a burst costs a few round trips, not one each.
    `flush()` waits until the queue is sent; it runs at exit, and after each
    Celery task (worker/signals.py). When Redis is slower than the callers,
    a caller waits once MAX_PENDING events are queued, for at most the send
    timeout, and then its events are dropped with a warning (the rows stay).
    """

    MAX_PENDING = 10_000
    # Events per round trip: a few script calls of notifications.layers.SEND_CHUNK.
    BATCH = 5_000

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # each Celery prefork child its own
        atexit.register(self.flush)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: deque[list[tuple[str, dict]]] = deque()
        self._queued = 0  # events ever queued
        self._done = 0  # events ever sent or given up on
        self._sending = False

    def submit(self, pairs: list[tuple[str, dict]]) -> None:
        """Queue (group, event) pairs for sending and return at once."""
        timeout = app_settings.SEND_TIMEOUT
        with self._lock:
            room = self._changed.wait_for(
                lambda: self._queued - self._done < self.MAX_PENDING, timeout
            )
            if not room:
                log.warning(
                    "%d events wait for the channel layer; dropped %d", self.MAX_PENDING, len(pairs)
                )
                metrics.inc("notifications_publish_failures_total", len(pairs))
                return
            self._queue.append(pairs)
            self._queued += len(pairs)
            start, self._sending = not self._sending, True
            loop = self._running_loop()
        if start:
            asyncio.run_coroutine_threadsafe(self._drain(), loop)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is sent; False if that took too long."""
        timeout = app_settings.SEND_TIMEOUT if timeout is None else timeout
        with self._lock:
            target = self._queued
            return self._changed.wait_for(lambda: self._done >= target, timeout)

    async def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._sending = False
                    return
                batch: list[tuple[str, dict]] = []
                while self._queue and len(batch) < self.BATCH:
                    batch += self._queue.popleft()
            try:
                await asyncio.wait_for(_send(batch), app_settings.SEND_TIMEOUT)
            except TimeoutError:
                log.warning(
                    "channel layer did not answer within %ss; %d events not sent",
                    app_settings.SEND_TIMEOUT,
                    len(batch),
                )
                metrics.inc("notifications_publish_failures_total", len(batch))
            with self._lock:
                self._done += len(batch)
                self._changed.notify_all()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The sender's loop, started on first use (called with the lock held)."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            threading.Thread(
                target=self._loop.run_forever, name="notifications-sender", daemon=True
            ).start()
        return self._loop


_sender = _Sender()
flush = _sender.flush


def _event(message: dict, previous: int | None = None) -> dict:
    """The channel-layer event that relays `message` to the sockets of a group.

    A notification's event also says which notification of its recipient came
    before it (`previous`, 0 for none): a socket that has not sent that one yet
    knows it is still on its way, or lost, and reads it from the database.
    """
    event = {"type": EVENT_TYPE, "message": message}
    if previous is not None:
        event["previous"] = previous
    return event


def _notification_events(created: list[Notification]) -> list[tuple[str, dict]]:
    """(group, event) for notifications just saved, each with its `previous` id."""
    if not created:
        return []
    previous = _newest_below({n.recipient_id for n in created}, min(n.pk for n in created))
    return [
        (
            user_group(n.recipient_id),
            _event(messages.notification(n), previous.get(n.recipient_id, 0)),
        )
        for n in created
    ]


# Ids per query: well under every database's limit on query parameters.
ID_CHUNK = 1000


def _rows(sql: str, ids: list[int], *params: Any) -> list[tuple]:
    """Run `sql` (with `{ids}` for an IN list) over `ids` in chunks; plain SQL on
    purpose: on every publish the ORM spent more time building these small queries
    than the database spent answering them (notify() ran at 700 calls/s, 1,150 without)."""
    rows = []
    with connection.cursor() as cursor:
        for start in range(0, len(ids), ID_CHUNK):
            chunk = ids[start : start + ID_CHUNK]
            cursor.execute(sql.format(ids=", ".join(["%s"] * len(chunk))), [*chunk, *params])
            rows += cursor.fetchall()
    return rows


def _newest_below(recipients: set[int], below: int) -> dict[int, int]:
    """Each recipient's newest notification id below `below` (absent when none)."""
    table = connection.ops.quote_name(Notification._meta.db_table)
    sql = (
        f"SELECT recipient_id, MAX(id) FROM {table} "
        "WHERE recipient_id IN ({ids}) AND id < %s GROUP BY recipient_id"
    )
    return dict(_rows(sql, sorted(recipients), below))


async def _send(pairs: list[tuple[str, dict]]) -> None:
    """group_send each (group, event), all in a few round trips (notifications.layers)."""
    # A control event (sessions.py) carries no message for the browser.
    kinds = Counter(event.get("message", event)["type"] for _, event in pairs)
    try:
        await get_channel_layer().group_send_many(pairs)
    except Exception as exc:  # Redis down, timeouts: the rows are saved anyway
        counts = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
        log.warning("could not send %s message(s): %r", counts, exc)
        metrics.inc("notifications_publish_failures_total", len(pairs))
        return
    for kind, n in kinds.items():
        metrics.inc(f'notifications_published_total{{type="{kind}"}}', n)


def _send_on_commit(pairs: list[tuple[str, dict]]) -> None:
    transaction.on_commit(lambda: _sender.submit(pairs))


# --- Validation ------------------------------------------------------------


def _as_ids(users: Iterable[Any]) -> list[int]:
    ids = [getattr(u, "pk", u) for u in users]
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise ValueError("recipients must be users or integer user ids")
    out_of_range = [i for i in ids if not 0 < i <= ID_MAX]
    if out_of_range:
        raise _unknown_users(out_of_range)
    return ids


def _unknown_users(ids: list[int]) -> ValueError:
    return ValueError(f"unknown user id(s): {sorted(set(ids))}")


def _user_ids(users: Iterable[Any]) -> list[int]:
    ids = _as_ids(users)
    table = connection.ops.quote_name(User._meta.db_table)
    pk = connection.ops.quote_name(User._meta.pk.column)
    found = {row[0] for row in _rows(f"SELECT {pk} FROM {table} WHERE {pk} IN ({{ids}})", ids)}
    unknown = set(ids) - found
    if unknown:
        raise _unknown_users(list(unknown))
    return ids


# How deep `data` may nest: msgpack (the channel layer) refuses beyond 511.
DATA_MAX_DEPTH = 32


def _text(name: str, value: Any, limit: int) -> str:
    """A string field: a str of at most `limit` characters that every store can hold."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, not {type(value).__name__}")
    if len(value) > limit:
        raise ValueError(f"{name} is {len(value)} characters long; the limit is {limit}")
    _storable(name, value)
    return value


def _storable(name: str, value: str) -> None:
    # PostgreSQL refuses NUL in text and JSON, and a lone surrogate ("\ud800")
    # is not UTF-8, so the frame carrying it could not be encoded.
    if "\x00" in value:
        raise ValueError(f"{name} contains a NUL character")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError(f"{name} contains an unpaired surrogate, which is not UTF-8") from None


def _data(data: Any) -> dict:
    """`data` as plain JSON that fits DATA_MAX_BYTES and that every store and wire holds."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"data must be a JSON object (a dict), not {type(data).__name__}")
    try:
        # The round trip turns tuples into lists and proves the value is plain JSON.
        text = json.dumps(data, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"data is not JSON-serialisable: {exc}") from None
    except RecursionError:
        raise ValueError(f"data nests deeper than {DATA_MAX_DEPTH} levels") from None
    size = len(text.encode(errors="surrogatepass"))
    if size > limits.DATA_MAX_BYTES:
        raise ValueError(
            f"data is {size} bytes as JSON; the limit is {limits.DATA_MAX_BYTES} "
            "(keep large payloads elsewhere and put their url in the notification)"
        )
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > DATA_MAX_DEPTH:
            raise ValueError(f"data nests deeper than {DATA_MAX_DEPTH} levels")
        if isinstance(value, dict):
            for key in value:
                _storable("a key in data", key)
            pending += [(v, depth + 1) for v in value.values()]
        elif isinstance(value, list):
            pending += [(v, depth + 1) for v in value]
        elif isinstance(value, str):
            _storable("a string in data", value)
        elif isinstance(value, int) and not limits.INT_MIN <= value <= limits.INT_MAX:
            raise ValueError(f"data holds {value}, outside the 64-bit range JSON tools agree on")
    return data


def _fields(title: str, body: str, level: str, url: str, data: Any, task_id: Any) -> dict:
    """Checked, normalised notification fields; ValueError names what is wrong.

    The limits (notifications/limits.py) keep every message within one frame.
    """
    if level not in Level.values:
        raise ValueError(f"unknown level {level!r}: use one of {', '.join(Level.values)}")
    if isinstance(title, str) and not title.strip():
        raise ValueError("title must be a non-empty string")
    return {
        "title": _text("title", title, limits.TITLE_MAX),
        "body": _text("body", body, limits.BODY_MAX),
        "level": level,
        "url": _text("url", url, limits.URL_MAX),
        "data": _data(data),
        "task_id": "" if task_id is None else _text("task_id", str(task_id), limits.TASK_ID_MAX),
    }


# --- The API ----------------------------------------------------------------


def notify(
    user_or_id: Any,
    title: str,
    *,
    body: str = "",
    level: str = "info",
    url: str = "",
    data: dict | None = None,
    task_id: str | None = None,
    dedupe_key: str | None = None,
) -> Notification:
    """Save a notification for one user and push it to their open tabs after commit.

    With a `dedupe_key`, a second call with the same key for the same user
    saves nothing, sends the first notification again and returns it: the
    first caller may have died between saving and sending (clients drop
    duplicates by id).
    """
    notification = _save(user_or_id, _fields(title, body, level, url, data, task_id), dedupe_key)
    _send_on_commit(_notification_events([notification]))
    return notification


async def anotify(
    user_or_id: Any,
    title: str,
    *,
    body: str = "",
    level: str = "info",
    url: str = "",
    data: dict | None = None,
    task_id: str | None = None,
    dedupe_key: str | None = None,
) -> Notification:
    """`notify()` for async code: saves in a thread, then sends on the running loop."""
    fields = _fields(title, body, level, url, data, task_id)
    notification = await sync_to_async(_save)(user_or_id, fields, dedupe_key)
    await _send(await sync_to_async(_notification_events)([notification]))
    return notification


def _save(user_or_id: Any, fields: dict, dedupe_key: str | None) -> Notification:
    """The saved notification: a new row, or the one saved before under `dedupe_key`."""
    (user_id,) = _as_ids([user_or_id])
    if dedupe_key is not None:
        _text("dedupe_key", dedupe_key, limits.DEDUPE_KEY_MAX)
    notification = Notification(recipient_id=user_id, dedupe_key=dedupe_key, **fields)
    if dedupe_key is None:
        saved = _insert(notification)
    else:
        try:
            with transaction.atomic():
                saved = _insert(notification)
        except IntegrityError:
            return Notification.objects.get(recipient_id=user_id, dedupe_key=dedupe_key)
    if not saved:
        raise _unknown_users([user_id])
    return notification


# Every column but the id, in the model's order.
_COLUMNS = [f for f in Notification._meta.concrete_fields if not f.primary_key]


# The first key of the per-user advisory locks (the second is the user id),
# so they cannot meet another application's locks on the same database.
LOCK_NAMESPACE = 0x6E6F7466  # "notf"


def _lock_users_sql(placeholder: str) -> str:
    """SQL that takes the per-user transaction lock of PostgreSQL for each id."""
    return f"pg_advisory_xact_lock({LOCK_NAMESPACE}, mod({placeholder}, 2147483647)::int)"


def _insert(notification: Notification) -> bool:
    """Insert the row if its recipient exists, in one statement; False if not.

    save() after a lookup of the user took two statements, and the ORM spent
    longer compiling the insert than the database took to run it: this took
    notify() from 1,360 to 1,720 calls/s on SQLite. The values go through each field's own
    conversion, as save() does.

    On PostgreSQL the statement first takes the recipient's transaction lock,
    so a user's ids are drawn in commit order: two transactions that each
    notify one user commit one after the other, and the later commit always
    holds the larger id, which is what replay by id needs (a tab that has seen
    id 11 must never miss an id 10 committed after it). SQLite writes one
    transaction at a time, so its ids are in commit order already.
    """
    qn = connection.ops.quote_name
    values = [f.get_db_prep_save(f.pre_save(notification, True), connection) for f in _COLUMNS]
    columns = ", ".join(qn(f.column) for f in _COLUMNS)
    users = qn(User._meta.db_table)
    lock, source, params = "", users, [*values, notification.recipient_id]
    if connection.vendor == "postgresql":
        # A volatile CTE runs before the row it joins is built, so before nextval().
        lock, source = f"WITH user_lock AS (SELECT {_lock_users_sql('%s')}) ", f"{users}, user_lock"
        params = [notification.recipient_id, *params]
    sql = (
        f"{lock}INSERT INTO {qn(Notification._meta.db_table)} ({columns}) "
        f"SELECT {', '.join(['%s'] * len(values))} FROM {source} "
        f"WHERE {users}.{qn(User._meta.pk.column)} = %s "
        f"RETURNING {qn(Notification._meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    notification.pk = row[0]
    notification._state.adding = False
    notification._state.db = connection.alias
    return True


def notify_many(
    users: Iterable[Any],
    title: str,
    *,
    body: str = "",
    level: str = "info",
    url: str = "",
    data: dict | None = None,
    task_id: str | None = None,
) -> list[Notification]:
    """Save one notification per user in one insert and push each after commit."""
    fields = _fields(title, body, level, url, data, task_id)
    user_ids = list(dict.fromkeys(_user_ids(users)))
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Every recipient's lock, in one order, as _insert() takes one.
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT {_lock_users_sql('u')} FROM unnest(%s::bigint[]) AS u ORDER BY u",
                    [sorted(user_ids)],
                )
        created = Notification.objects.bulk_create(
            Notification(recipient_id=user_id, **fields) for user_id in user_ids
        )
        _send_on_commit(_notification_events(created))
    return created


def notify_all(title: str, **options: Any) -> list[Notification]:
    """`notify_many()` to every active user."""
    users = User.objects.filter(is_active=True).values_list("pk", flat=True)
    return notify_many(list(users), title, **options)


def send_progress(user_id: int, task_id: str, percent: float, message: str = "") -> None:
    """Push a task's progress to its user's tabs; progress is not saved.

    A message longer than limits.PROGRESS_MESSAGE_MAX is shortened, not refused:
    a task should not fail over the wording of its progress.
    """
    (user_id,) = _as_ids([user_id])
    task_id = _text("task_id", str(task_id), limits.TASK_ID_MAX)
    percent = float(percent)
    if not math.isfinite(percent):
        raise ValueError(f"percent must be a finite number, not {percent}")
    percent = max(0, min(100, round(percent, 1)))
    message = limits.shorten(str(message), limits.PROGRESS_MESSAGE_MAX)
    message = message.encode(errors="replace").decode()  # no unpaired surrogates
    progress = messages.make("progress", task_id=task_id, percent=percent, message=message)
    _sender.submit([(user_group(user_id), _event(progress))])


def mark_read(user_id: int, ids: Iterable[int] | None = None) -> list[int]:
    """Mark some (or, with None, all) of a user's unread notifications read.

    Tells every tab of the user, so their badges agree. Ids of other users'
    notifications are ignored. Returns the ids that changed.
    """
    changed, receipts = _mark_read_rows(user_id, ids)
    if changed:
        _send_on_commit([(user_group(user_id), _event(r)) for r in receipts])
    return changed


async def amark_read(user_id: int, ids: Iterable[int] | None = None) -> list[int]:
    """`mark_read()` for async code."""
    changed, receipts = await sync_to_async(_mark_read_rows)(user_id, ids)
    if changed:
        await _send([(user_group(user_id), _event(r)) for r in receipts])
    return changed


# Ids per `read` message: 1,000 ids of up to 19 digits stay far below a frame.
READ_IDS_PER_MESSAGE = 1000


def _mark_read_rows(user_id: int, ids: Iterable[int] | None) -> tuple[list[int], list[dict]]:
    """Mark the rows read; the ids that changed, and the `read` messages that say so.

    "Read all" of 15,000 notifications is 15 messages, each with the final
    unread count, so every frame fits and the badge is right after any of them.
    """
    unread = Notification.objects.filter(recipient_id=user_id, read_at__isnull=True)
    if ids is not None:
        # An id past the 64-bit range (JSON allows any size) names no row, and
        # in an `IN (...)` list the database driver raises on it instead.
        unread = unread.filter(pk__in=[i for i in ids if 0 < i <= ID_MAX])
    with transaction.atomic():
        changed = list(unread.select_for_update().values_list("pk", flat=True))
        Notification.objects.filter(pk__in=changed).update(read_at=timezone.now())
    count = Notification.objects.filter(recipient_id=user_id, read_at__isnull=True).count()
    receipts = [
        messages.make("read", ids=changed[i : i + READ_IDS_PER_MESSAGE], unread=count)
        for i in range(0, len(changed), READ_IDS_PER_MESSAGE)
    ]
    return changed, receipts
