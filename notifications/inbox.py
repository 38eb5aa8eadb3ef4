"""Reading a user's notifications: the badge, the inbox and replay after a drop."""

from django.db.models import Max

from notifications import messages
from notifications.models import Notification


def unread_count(user_id: int) -> int:
    return Notification.objects.filter(recipient_id=user_id, read_at__isnull=True).count()


def last_id(user_id: int) -> int:
    """The id of the user's newest notification, 0 when they have none."""
    newest = Notification.objects.filter(recipient_id=user_id).aggregate(newest=Max("pk"))
    return newest["newest"] or 0


def missed(user_id: int, after: int, limit: int) -> tuple[list[dict], int]:
    """The user's notifications with id > `after`, oldest first, at most `limit`.

    When there are more, the newest `limit` are returned with the number left
    out, which the client fetches from the inbox if it wants them.
    """
    newer = Notification.objects.filter(recipient_id=user_id, pk__gt=after)
    rows = list(newer.order_by("-pk")[: limit + 1])
    skipped = 0
    if len(rows) > limit:
        rows = rows[:limit]
        skipped = newer.count() - limit
    return [messages.notification(n) for n in reversed(rows)], skipped
