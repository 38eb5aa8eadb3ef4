"""Read state: marking a user's notifications read and telling all their tabs."""

from collections.abc import Iterable

from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone

from notifications import limits, messages, sender
from notifications.groups import event, user_group
from notifications.models import Notification

# Ids per `read` message: 1,000 ids of up to 19 digits stay far below a frame.
READ_IDS_PER_MESSAGE = 1000


def mark_read(user_id: int, ids: Iterable[int] | None = None) -> list[int]:
    """Mark some (or, with None, all) of a user's unread notifications read.

    Tells every tab of the user, so their badges agree. Ids of other users'
    notifications are ignored. Returns the ids that changed.
    """
    changed, receipts = _mark_read_rows(user_id, ids)
    if changed:
        sender.send_on_commit([(user_group(user_id), event(r)) for r in receipts])
    return changed


async def amark_read(user_id: int, ids: Iterable[int] | None = None) -> list[int]:
    """`mark_read()` for async code."""
    changed, receipts = await sync_to_async(_mark_read_rows)(user_id, ids)
    if changed:
        await sender.send([(user_group(user_id), event(r)) for r in receipts])
    return changed


def _mark_read_rows(user_id: int, ids: Iterable[int] | None) -> tuple[list[int], list[dict]]:
    """Mark the rows read; the ids that changed, and the `read` messages that say so.

    "Read all" of 15,000 notifications is 15 messages, each with the final
    unread count, so every frame fits and the badge is right after any of them.
    """
    unread = Notification.objects.filter(recipient_id=user_id, read_at__isnull=True)
    if ids is not None:
        # An id past the 64-bit range (JSON allows any size) names no row, and
        # in an `IN (...)` list the database driver raises on it instead.
        unread = unread.filter(pk__in=[i for i in ids if 0 < i <= limits.INT_MAX])
    with transaction.atomic():
        changed = list(unread.select_for_update().values_list("pk", flat=True))
        Notification.objects.filter(pk__in=changed).update(read_at=timezone.now())
    count = Notification.objects.filter(recipient_id=user_id, read_at__isnull=True).count()
    receipts = [
        messages.make("read", ids=changed[i : i + READ_IDS_PER_MESSAGE], unread=count)
        for i in range(0, len(changed), READ_IDS_PER_MESSAGE)
    ]
    return changed, receipts
