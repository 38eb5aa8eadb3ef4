"""The size limits of everything the server sends to a browser, and why they fit.

A WebSocket message is refused by Daphne when it is larger than the frame
limit (NOTIFICATIONS_WS_MAX_MESSAGE_BYTES, 64 KiB; see daphne_patches.py), and
the socket dies with 1011. A notification that does not fit would then kill every socket
that replays it, on every reconnect. So the input is bounded where it enters
(`notify()`, the command, a task's completion and progress), and the bounds
are chosen so that the largest message the server can build stays well below
the smaller of the two frame limits, even when every character is one that
JSON escapes as `\\uXXXX` (6 bytes each):

    title 200 + body 4,000 + url 2,000 + task id 255 chars   -> 6,455 chars * 6 = 38,730 bytes
    data: at most 8,192 bytes of compact JSON, escaped as it is   ->  8,192 bytes
    collapse key 255 + 2 actions (label 40 + url 500) chars  -> 1,335 chars * 6 =  8,010 bytes
    kind: 64 characters of [a-z0-9._-], never escaped        ->     64 bytes
    the envelope (keys, level, id, timestamps)               ->    < 400 bytes
                                                               total < 56 KiB < 64 KiB

tests/test_limits.py builds that worst case and sends it through a real Daphne.
"""

from notifications.models import Notification

TITLE_MAX = Notification._meta.get_field("title").max_length  # 200 characters
BODY_MAX = 4_000  # characters
URL_MAX = Notification._meta.get_field("url").max_length  # 2,000 characters
TASK_ID_MAX = Notification._meta.get_field("task_id").max_length  # 255 characters
KIND_MAX = Notification._meta.get_field("kind").max_length  # 64 characters
COLLAPSE_KEY_MAX = Notification._meta.get_field("collapse_key").max_length  # 255 characters
ACTIONS_MAX = 2  # buttons per notification
ACTION_LABEL_MAX = 40  # characters
ACTION_URL_MAX = 500  # characters
DEDUPE_KEY_MAX = Notification._meta.get_field("dedupe_key").max_length  # 255 characters
DATA_MAX_BYTES = 8_192  # `data` as compact JSON (UTF-8 bytes)
PROGRESS_MESSAGE_MAX = 500  # characters; a longer progress message is shortened
# The integers every part of the path holds: msgpack (the channel layer) and
# PostgreSQL's bigint stop at 64 bits. (A browser rounds beyond 2**53, but
# the frame still arrives.)
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
# The largest frame the server sends: the limit above, with room to spare.
FRAME_MAX_BYTES = 64 * 1024


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, ending in an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


ECHO_MAX = 80


def shown(value: object) -> str:
    """A caller's value as an error text quotes it: its repr, at most ECHO_MAX
    characters, so a 200 KB input never comes back whole."""
    return shorten(repr(value), ECHO_MAX)
