"""Who a browser message goes to, and the channel-layer event that carries it.

Every socket of a user joins that user's group; a message reaches them as a
`push` event, which the consumer relays whatever the message's type, so a new
message type needs no change to the consumer.
"""

from notifications import messages, store
from notifications.models import Notification

# An event's "type" names the consumer method that relays it ("push" -> push()).
EVENT_TYPE = "push"


def user_group(user_id: int) -> str:
    """The channel-layer group of one user's open sockets."""
    return f"user.{int(user_id)}"


def event(message: dict, previous: int | None = None) -> dict:
    """The channel-layer event that relays `message` to the sockets of a group.

    A notification's event also says which notification of its recipient came
    before it (`previous`, 0 for none): a socket that has not sent that one yet
    knows it is still on its way, or lost, and reads it from the database.
    """
    envelope = {"type": EVENT_TYPE, "message": message}
    if previous is not None:
        envelope["previous"] = previous
    return envelope


def notification_events(created: list[Notification]) -> list[tuple[str, dict]]:
    """(group, event) for notifications just saved, each with its `previous` id."""
    if not created:
        return []
    previous = store.newest_below({n.recipient_id for n in created}, min(n.pk for n in created))
    return [
        (
            user_group(n.recipient_id),
            event(messages.notification(n), previous.get(n.recipient_id, 0)),
        )
        for n in created
    ]


def copies_events(created: list[Notification], previous: dict[int, int]) -> list[tuple[str, dict]]:
    """notification_events() for rows that differ only in id, recipient and
    time (notify_many's): the message is built once and copied, which for a
    broadcast to 5,000 users took a tenth of the time."""
    if not created:
        return []
    first = messages.notification(created[0])
    return [
        (
            user_group(n.recipient_id),
            event(
                {**first, "id": n.pk, "created_at": n.created_at.isoformat()},
                previous.get(n.recipient_id, 0),
            ),
        )
        for n in created
    ]
