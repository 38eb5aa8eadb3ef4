"""The publish API: notifications saved, then pushed to their recipients' tabs.

A notification is saved first and sent to its recipient's group once the
transaction commits, so a browser that is away finds it later in the inbox,
and a rolled-back transaction never announces a row that does not exist.
The channel layer is only the fast path: when Redis is unreachable the row is
still saved, a warning is logged and the caller carries on.
"""

import logging
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Unpack

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from redis.exceptions import RedisError

from notifications import limits, messages, progress_state, push, sender, store, validation
from notifications.groups import copies_events, event, notification_events, user_group
from notifications.models import Notification
from notifications.users import active_users

User = get_user_model()
log = logging.getLogger(__name__)

# Recipients per commit of a notify_many() outside a transaction.
MANY_BATCH = 500


def notify(
    user_or_id: Any,
    title: str,
    *,
    dedupe_key: str | None = None,
    **options: Unpack[validation.Options],
) -> Notification:
    """Save a notification for one user and push it to their open tabs after commit.

    The options (validation.Options) are `body`, `level` ("info", "success",
    "warning", "error"), `url`, `data` (JSON), `task_id`, `kind`,
    `collapse_key` and `actions`. `kind` names what it is about ("export";
    the person's preferences choose channels per kind), `collapse_key` lets
    tabs show several close together as one toast, and `actions` are up to
    two buttons ([{"label": "Download", "url": "/files/1"}], http(s) or
    same-origin).

    With a `dedupe_key`, a second call with the same key for the same user
    saves nothing, sends the first notification again and returns it: the
    first caller may have died between saving and sending (clients drop
    duplicates by id).
    """
    fields = validation.fields(title, **options)
    notification, pairs = _save(user_or_id, fields, dedupe_key)
    sender.send_on_commit(pairs)
    push.after_commit([notification])
    return notification


async def anotify(
    user_or_id: Any,
    title: str,
    *,
    dedupe_key: str | None = None,
    **options: Unpack[validation.Options],
) -> Notification:
    """`notify()` for async code: saves in a thread, then sends on the running loop."""
    fields = validation.fields(title, **options)
    notification, pairs = await sync_to_async(_save)(user_or_id, fields, dedupe_key)
    await sender.send(pairs)
    if push.enabled():  # with push off, no thread hop
        await sync_to_async(push.after_commit)([notification])
    return notification


def _save(
    user_or_id: Any, fields: dict, dedupe_key: str | None
) -> tuple[Notification, list[tuple[str, dict]]]:
    """The saved notification (a new row, or the one saved before under
    `dedupe_key`) and the (group, event) that announces it."""
    (user_id,) = validation.as_ids([user_or_id])
    if dedupe_key is not None:
        validation.text("dedupe_key", dedupe_key, limits.DEDUPE_KEY_MAX)
    notification = Notification(recipient_id=user_id, dedupe_key=dedupe_key, **fields)
    if dedupe_key is None:
        previous = store.insert(notification)
    else:
        try:
            with transaction.atomic():
                previous = store.insert(notification)
        except IntegrityError:
            saved = Notification.objects.get(recipient_id=user_id, dedupe_key=dedupe_key)
            return saved, notification_events([saved])
    if previous is None:
        raise validation.unknown_users([user_id])
    return notification, [
        (user_group(user_id), event(messages.notification(notification), previous))
    ]


def notify_many(
    users: Iterable[Any],
    title: str,
    **options: Unpack[validation.Options],
) -> list[Notification]:
    """Save one notification per user and push each after commit.

    Inside the caller's transaction it is part of that transaction: all or
    nothing, sent when it commits. Outside one, every MANY_BATCH recipients
    (in id order) are one insert and one commit, sent at once, so the first
    tabs show a broadcast while the rest are written (to 5,000 users the last
    one came 0.3 s sooner, 1.8 s for 2.1 s); an error part-way leaves the earlier batches saved
    and sent. Wrap the call in transaction.atomic() to have it whole or not at all.
    """
    fields = validation.fields(title, **options)
    user_ids = sorted(set(validation.user_ids(users)))
    if transaction.get_connection().in_atomic_block:
        return _insert_and_send(user_ids, fields)
    created = []
    for start in range(0, len(user_ids), MANY_BATCH):
        created += _insert_and_send(user_ids[start : start + MANY_BATCH], fields)
    return created


def _insert_and_send(user_ids: list[int], fields: dict) -> list[Notification]:
    with transaction.atomic():
        store.lock_users(user_ids)
        created, previous = store.insert_many(user_ids, fields)
        sender.send_on_commit(copies_events(created, previous))
        push.after_commit(created)
    return created


def notify_all(title: str, **options: Unpack[validation.Options]) -> list[Notification]:
    """`notify_many()` to every active user."""
    return notify_many(list(active_users().values_list("pk", flat=True)), title, **options)


def send_stalled(user_id: int, task_id: str) -> None:
    """Tell the user's tabs that the worker running `task_id` is gone: its bar
    waits for a worker until the task's next progress (progress_state.claim_lost)."""
    stalled = messages.make("stalled", task_id=task_id, at=datetime.now(UTC).isoformat())
    sender.submit([(user_group(user_id), event(stalled))])


def send_progress(
    user_id: int, task_id: str, percent: float, message: str = "", seq: int = 0
) -> None:
    """Push a task's progress to its user's tabs, and keep it in Redis as the
    task's latest (progress_state.py) for tabs that open later.

    A message longer than limits.PROGRESS_MESSAGE_MAX is shortened, not refused:
    a task should not fail over the wording of its progress, nor over a Redis
    that cannot keep it (a warning is logged). Each report is numbered
    (`seq`, see progress_state.py) so tabs never show an older one after a
    newer; a caller that orders reports itself (a fan-out job's tally) passes
    its own rising `seq`.
    """
    (user_id,) = validation.as_ids([user_id])
    task_id = validation.text("task_id", str(task_id), limits.TASK_ID_MAX)
    percent = float(percent)
    if not math.isfinite(percent):
        raise ValueError(f"percent must be a finite number, not {percent}")
    percent = max(0, min(100, round(percent, 1)))
    message = limits.shorten(str(message), limits.PROGRESS_MESSAGE_MAX)
    message = message.encode(errors="replace").decode()  # no unpaired surrogates
    at = datetime.now(UTC).isoformat()
    try:
        numbered = progress_state.remember(user_id, task_id, percent, message, at, seq)
    except RedisError as exc:
        log.warning("progress of task %s not kept: %r", task_id, exc)
        numbered = seq  # 0 unless the caller numbered it: tabs show it as it comes
    else:
        if not numbered:
            return  # the task has ended or was cancelled, or a later report is out already
    progress = messages.make(
        "progress", task_id=task_id, percent=percent, message=message, at=at, seq=numbered
    )
    sender.submit([(user_group(user_id), event(progress))])
