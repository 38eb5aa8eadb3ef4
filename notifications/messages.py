"""Every message the server sends to browsers, declared once with its fields.

Build messages only through `make()`: a missing or undeclared field is a bug and
fails where the message is built, not in somebody's browser. Values are plain
JSON (no datetimes, no models), because channel-layer events go through msgpack.

Every message is built by a `make("<type>", ...)` call, so
`grep -rn 'make("' notifications/` lists each place one is produced:
`notification` here (from a saved row, for live pushes and for replay),
`progress` and `stalled` in publish.py, `read` in reads.py, and `hello`,
`stalled`, `truncated` and `error` in consumers.py. The only other change
to a message is `fitted()`, which cuts down one already made. A new type is declared in SCHEMAS and
built with `make()`; the consumer relays every `push` event as it is.
"""

import json
from typing import Any

from notifications import limits

SCHEMAS: dict[str, frozenset[str]] = {
    # Sent once per connection, after authentication.
    "hello": frozenset({"unread", "last_id"}),
    # A saved notification (live, or replayed after ?after=ID).
    "notification": frozenset(
        {
            "id",
            "level",
            "title",
            "body",
            "url",
            "data",
            "task_id",
            "kind",
            "collapse_key",
            "actions",
            "created_at",
        }
    ),
    # Progress of a running task, reported at `at` (ISO 8601); the latest one
    # per task is kept a while (progress_state.py) and sent again after hello.
    # `seq` rises with each report of the task (0 when Redis could not number
    # it): a tab ignores one not above the last it showed.
    "progress": frozenset({"task_id", "percent", "message", "at", "seq"}),
    # The worker running the task is gone (found by a live worker's heartbeat,
    # and checked when a socket opens); the bar waits for the task to run again
    # elsewhere, whose next `progress` resumes it.
    "stalled": frozenset({"task_id", "at"}),
    # Notifications marked read (in this tab or another), with the new badge count.
    "read": frozenset({"ids", "unread"}),
    # Replay stopped at the limit; the rest are in the inbox (HTTP API).
    "truncated": frozenset({"after", "count"}),
    # A frame from the client was refused; nothing changed.
    "error": frozenset({"code", "detail"}),
}


def make(type_: str, **fields: Any) -> dict[str, Any]:
    """A browser message of a declared type, with exactly its declared fields."""
    expected = SCHEMAS[type_]
    if fields.keys() != expected:
        missing, extra = expected - fields.keys(), fields.keys() - expected
        raise TypeError(f"{type_} message: missing {sorted(missing)}, undeclared {sorted(extra)}")
    return {"type": type_, **fields}


def notification(n: Any) -> dict[str, Any]:
    """The `notification` message for a saved Notification."""
    fields = {
        "id": n.id,
        "level": n.level,
        "title": n.title,
        "body": n.body,
        "url": n.url,
        "data": n.data,
        "task_id": n.task_id or None,
        "kind": n.kind,
        "collapse_key": n.collapse_key,
        "actions": n.actions,
        "created_at": n.created_at.isoformat(),
    }
    return make("notification", **fields)


def wire(message: dict[str, Any]) -> str:
    """A message as the text of one WebSocket frame: compact JSON, UTF-8 as is."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def fitted(message: dict[str, Any]) -> dict[str, Any]:
    """`message` cut down to the limits of notifications.limits.

    Everything `notify()` accepts already fits; this is for rows saved before
    the limits existed, so that replaying them cannot kill a socket.
    """
    if message.get("type") != "notification":
        return message
    data = message["data"]
    if len(wire(data).encode()) > limits.DATA_MAX_BYTES:
        data = {"truncated": True}
    url = message["url"]
    return {
        **message,
        "title": limits.shorten(message["title"], limits.TITLE_MAX),
        "body": limits.shorten(message["body"], limits.BODY_MAX),
        "url": url if len(url) <= limits.URL_MAX else "",
        "data": data,
    }
