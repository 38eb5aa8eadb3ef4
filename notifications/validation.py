"""Checks on what callers pass to the publish API, before anything is saved.

Each check raises ValueError naming what is wrong, so a bad call fails in the
caller's code rather than in the database, the channel layer or a browser.
The limits (notifications/limits.py) keep every message within one frame.
"""

import json
import re
from collections.abc import Iterable
from typing import Any, TypedDict
from urllib.parse import urlsplit

from notifications import limits, store
from notifications.models import Level

# How deep `data` may nest: msgpack (the channel layer) refuses beyond 511.
DATA_MAX_DEPTH = 32

# A kind is a short name, safe in a URL, a CSS class and a preference key.
KIND_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*")


class Options(TypedDict, total=False):
    """What notify(), anotify() and notify_many() take besides the title."""

    body: str
    level: str
    url: str
    data: dict | None
    task_id: str | None
    kind: str
    collapse_key: str
    actions: list[dict[str, str]] | None


def fields(
    title: str,
    *,
    body: str = "",
    level: str = "info",
    url: str = "",
    data: Any = None,
    task_id: Any = None,
    kind: str = "",
    collapse_key: str = "",
    actions: Any = None,
) -> dict:
    """Checked, normalised notification fields (the defaults are the API's)."""
    if level not in Level.values:
        raise ValueError(
            f"unknown level {limits.shown(level)}: use one of {', '.join(Level.values)}"
        )
    if isinstance(title, str) and not title.strip():
        raise ValueError("title must be a non-empty string")
    return {
        "title": text("title", title, limits.TITLE_MAX),
        "body": text("body", body, limits.BODY_MAX),
        "level": level,
        "url": _url(url),
        "data": _data(data),
        "task_id": "" if task_id is None else text("task_id", str(task_id), limits.TASK_ID_MAX),
        "kind": _kind(kind),
        "collapse_key": text("collapse_key", collapse_key, limits.COLLAPSE_KEY_MAX),
        "actions": _actions(actions),
    }


def _url(url: Any) -> str:
    """The notification's link: empty, or one that link() allows; anything else
    is refused, as an action's url is, so no client ever has to guess."""
    url = text("url", url, limits.URL_MAX)
    if url and not link(url):
        raise ValueError(f"url {limits.shown(url)} must be http(s):// or a path on this site")
    return url


def _kind(kind: Any) -> str:
    kind = text("kind", kind, limits.KIND_MAX)
    if kind and not KIND_PATTERN.fullmatch(kind):
        raise ValueError(f"kind {limits.shown(kind)} may hold only a-z, 0-9, '.', '_' and '-'")
    return kind


def _actions(actions: Any) -> list[dict[str, str]]:
    """Up to ACTIONS_MAX buttons, each {"label", "url"} with an http(s) or
    same-origin url: anything else (javascript:, data:, //host) is refused here,
    and the browser client checks again before it draws a link."""
    if actions is None:
        return []
    if not isinstance(actions, list | tuple):
        raise ValueError(f"actions must be a list, not {type(actions).__name__}")
    if len(actions) > limits.ACTIONS_MAX:
        raise ValueError(f"at most {limits.ACTIONS_MAX} actions, not {len(actions)}")
    checked = []
    for action in actions:
        if not isinstance(action, dict) or action.keys() != {"label", "url"}:
            raise ValueError('each action must be {"label": ..., "url": ...}')
        label = text("action label", action["label"], limits.ACTION_LABEL_MAX)
        if not label.strip():
            raise ValueError("an action label must not be empty")
        url = text("action url", action["url"], limits.ACTION_URL_MAX)
        if not link(url):
            raise ValueError(
                f"action url {limits.shown(url)} must be http(s):// or a path on this site"
            )
        checked.append({"label": label, "url": url})
    return checked


def link(url: str) -> bool:
    """Whether `url` may become a link: absolute http(s) with a host, or a path
    on this site. Never `//host` (another site that reads as a path), a scheme
    without `//` (`https:host`), `javascript:` or `data:`, nor anything holding
    whitespace, control characters or a backslash (browsers read it as `/`).
    The one rule for every link: notify(), the digest, push payloads, and in
    the browser links.js (the widget, toasts, desktop alerts, the service worker)."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url) or "\\" in url:
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises for a port no browser would take
    except ValueError:  # "https://[::1", "https://host:99999"
        return False
    if parts.scheme:
        return (
            parts.scheme in ("http", "https")
            and url[len(parts.scheme) :].startswith("://")
            and bool(parts.hostname)
        )
    return url.startswith("/") and not url.startswith("//")


def text(name: str, value: Any, limit: int) -> str:
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
        encoded = json.dumps(data, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
        data = json.loads(encoded)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"data is not JSON-serialisable: {exc}") from None
    except RecursionError:
        raise ValueError(f"data nests deeper than {DATA_MAX_DEPTH} levels") from None
    size = len(encoded.encode(errors="surrogatepass"))
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


def as_ids(users: Iterable[Any]) -> list[int]:
    """Users or user ids as ids, without asking the database whether they exist."""
    ids = [getattr(u, "pk", u) for u in users]
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise ValueError("recipients must be users or integer user ids")
    out_of_range = [i for i in ids if not 0 < i <= limits.INT_MAX]
    if out_of_range:
        raise unknown_users(out_of_range)
    return ids


def user_ids(users: Iterable[Any]) -> list[int]:
    """`as_ids()`, and every one of them an existing user."""
    ids = as_ids(users)
    unknown = set(ids) - store.existing_users(ids)
    if unknown:
        raise unknown_users(list(unknown))
    return ids


def unknown_users(ids: list[int]) -> ValueError:
    return ValueError(f"unknown user id(s): {sorted(set(ids))}")
