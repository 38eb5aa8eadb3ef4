"""Seen state: which notifications a person's browser has actually shown them.

"Seen" is not "read": a toast that faded or an inbox that listed it counts. A
notification nobody saw is what an email digest may still carry.
"""

from collections.abc import Iterable

from asgiref.sync import sync_to_async
from django.utils import timezone

from notifications import limits
from notifications.models import Notification

# Ids per `seen` frame: 1,000 ids of up to 19 digits stay far below a frame.
SEEN_IDS_PER_FRAME = 1000


def mark_seen(user_id: int, ids: Iterable[int]) -> int:
    """Stamp `seen_at` on those of `ids` that are the user's and not seen yet.

    Other users' ids are ignored, and a first sighting is never moved later.
    Returns how many rows changed.
    """
    # An id past the 64-bit range names no row, and the driver raises on it.
    wanted = [i for i in ids if 0 < i <= limits.INT_MAX]
    if not wanted:
        return 0
    return Notification.objects.filter(
        recipient_id=user_id, pk__in=wanted, seen_at__isnull=True
    ).update(seen_at=timezone.now())


async def amark_seen(user_id: int, ids: Iterable[int]) -> int:
    """`mark_seen()` for async code."""
    return await sync_to_async(mark_seen)(user_id, list(ids))
