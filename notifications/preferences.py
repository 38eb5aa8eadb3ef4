"""Which channels beyond the inbox a notification takes for each recipient.

The in-app channel (the inbox and open tabs) always applies. `push` (Web Push)
and `email` (the digest) apply as each person's preferences say: a channel
applies when both the notification's level and its kind allow it, and a level
or kind the person has not named allows every channel. Quiet hours (local
times in the person's time zone) hold back push only. A level the operator
marks critical (NOTIFICATIONS_CRITICAL_LEVELS) cannot be muted: its channels
and quiet hours do not apply to it, though a digest turned off still sends no
email (the unsubscribe link is always honoured).

Only push and email ask: the in-app path never reads preferences, so
`notify_many()` to thousands costs no extra query.
"""

import functools
import logging
import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, tzinfo
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from notifications import limits
from notifications.conf import app_settings
from notifications.models import Digest, Level, Preference
from notifications.validation import KIND_PATTERN

log = logging.getLogger(__name__)

CHANNELS = ("push", "email")
# Kinds one person may set channels for: enough for any app, small enough to
# keep the row and the panel bounded.
KINDS_MAX = 50
# Users asked about in one query; SQLite takes up to 32,766 parameters.
BATCH = 5_000
CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
FIELDS = ("levels", "kinds", "digest", "quiet_hours", "time_zone")
# Fields a PUT may leave out; one it leaves out keeps its value (older clients
# know nothing of them).
OPTIONAL_FIELDS = ("language",)


@dataclass(frozen=True)
class Choices:
    """One person's preferences, as stored (or the defaults, for no row)."""

    levels: dict[str, list[str]] = field(default_factory=dict)
    kinds: dict[str, list[str]] = field(default_factory=dict)
    digest: str = ""
    quiet_start: time | None = None
    quiet_end: time | None = None
    time_zone: str = "UTC"
    language: str = ""  # blank: the site's LANGUAGE_CODE

    @property
    def language_code(self) -> str:
        """The language to write to this person in."""
        return self.language or settings.LANGUAGE_CODE

    def allows(self, *, level: str, kind: str, channel: str, at: datetime) -> bool:
        if channel == "email" and self.digest == Digest.OFF:
            return False
        if level in critical_levels():
            return True
        if channel not in self.levels.get(level, CHANNELS):
            return False
        if kind and channel not in self.kinds.get(kind, CHANNELS):
            return False
        return not (channel == "push" and self.quiet_at(at))

    def quiet_at(self, at: datetime) -> bool:
        """Whether `at` falls in the quiet hours, read on the person's own clock."""
        if self.quiet_start is None or self.quiet_end is None:
            return False
        local = at.astimezone(_zone(self.time_zone)).time()
        if self.quiet_start < self.quiet_end:
            return self.quiet_start <= local < self.quiet_end
        return local >= self.quiet_start or local < self.quiet_end  # spans midnight


def critical_levels() -> tuple[str, ...]:
    return tuple(app_settings.CRITICAL_LEVELS)


def defaults() -> Choices:
    return Choices(digest=app_settings.DIGEST_DEFAULT)


def _choices(row: Preference) -> Choices:
    return Choices(
        levels=row.channels.get("levels", {}),
        kinds=row.channels.get("kinds", {}),
        digest=row.digest,
        quiet_start=row.quiet_start,
        quiet_end=row.quiet_end,
        time_zone=row.time_zone,
        language=row.language,
    )


def choices_of(user_ids: Iterable[int]) -> dict[int, Choices]:
    """Everyone's preferences, one query per BATCH users; the defaults for those with no row."""
    ids = list(dict.fromkeys(user_ids))
    found: dict[int, Choices] = {}
    for start in range(0, len(ids), BATCH):
        rows = Preference.objects.filter(user_id__in=ids[start : start + BATCH])
        found.update({row.user_id: _choices(row) for row in rows})
    default = defaults()
    return {user_id: found.get(user_id, default) for user_id in ids}


def recipients(
    user_ids: Iterable[int], *, level: str, kind: str, channel: str, at: datetime | None = None
) -> set[int]:
    """Those of `user_ids` whom `channel` reaches for a notification of this
    level and kind at time `at` (now when None)."""
    if channel not in CHANNELS:
        raise ValueError(
            f"unknown channel {limits.shown(channel)}: use one of {', '.join(CHANNELS)}"
        )
    if channel == "push" and level in critical_levels():
        return set(user_ids)  # nothing a person chose can hold it back: no query
    at = at or timezone.now()
    return {
        user_id
        for user_id, choices in choices_of(user_ids).items()
        if choices.allows(level=level, kind=kind, channel=channel, at=at)
    }


# --- The JSON the API and the panel speak ------------------------------------


def as_json(choices: Choices) -> dict[str, Any]:
    """Preferences as the API shows them: every level spelled out, critical ones
    marked, and the operator's NOTIFICATIONS_KINDS beside the person's own kinds."""
    critical = critical_levels()
    quiet = None
    if choices.quiet_start is not None and choices.quiet_end is not None:
        quiet = {
            "start": choices.quiet_start.strftime("%H:%M"),
            "end": choices.quiet_end.strftime("%H:%M"),
        }
    return {
        "levels": {
            level: list(CHANNELS)
            if level in critical
            else list(choices.levels.get(level, CHANNELS))
            for level in Level.values
        },
        "kinds": {
            **{kind: list(CHANNELS) for kind in app_settings.KINDS},
            **{kind: list(channels) for kind, channels in choices.kinds.items()},
        },
        "critical": [level for level in Level.values if level in critical],
        "digest": choices.digest,
        "quiet_hours": quiet,
        "time_zone": choices.time_zone,
        "language": choices.language,
        # Read-only, like "critical": what "language" may be ("" is the site's).
        "languages": [{"code": code, "name": name} for code, name in app_settings.LANGUAGES],
    }


def language_of(user_id: int) -> str:
    """The language to write to this person in: their choice, or the site's."""
    return choices_of([user_id])[user_id].language_code


def preferences_of(user_id: int) -> dict[str, Any]:
    return as_json(choices_of([user_id])[user_id])


def set_preferences(user_id: int, payload: Any) -> dict[str, Any]:
    """Replace the person's preferences with `payload` (every field of `FIELDS`,
    any of `OPTIONAL_FIELDS`; "critical" and "languages" are read-only and
    ignored). Raises ValueError, changing nothing, when any part is wrong."""
    checked = _checked(payload)
    with transaction.atomic():
        Preference.objects.update_or_create(user_id=user_id, defaults=checked)
    return preferences_of(user_id)


def set_digest(user_id: int, digest: str) -> None:
    """Only the digest interval (the unsubscribe link); the rest stays as it is."""
    Preference.objects.update_or_create(user_id=user_id, defaults={"digest": digest})


def check_row(channels: Any, quiet_start: time | None, quiet_end: time | None, zone: Any) -> None:
    """The API's rules for a row edited elsewhere (the admin); raises ValueError."""
    if not isinstance(channels, dict) or not set(channels) <= {"levels", "kinds"}:
        raise ValueError(gettext('channels must be {"levels": {...}, "kinds": {...}}'))
    _checked(
        {
            "levels": channels.get("levels", {}),
            "kinds": channels.get("kinds", {}),
            "digest": Digest.OFF,
            "quiet_hours": None
            if quiet_start is None and quiet_end is None
            else {"start": _hhmm(quiet_start), "end": _hhmm(quiet_end)},
            "time_zone": zone,
        }
    )


def _hhmm(value: time | None) -> str | None:
    return None if value is None else value.strftime("%H:%M")


def _checked(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ValueError(gettext("preferences must be a JSON object"))
    unknown = set(payload) - set(FIELDS) - set(OPTIONAL_FIELDS) - {"critical", "languages"}
    if unknown:
        raise ValueError(
            gettext("unknown field(s): {names}").format(names=", ".join(sorted(unknown)))
        )
    missing = [name for name in FIELDS if name not in payload]
    if missing:
        raise ValueError(gettext("missing field(s): {names}").format(names=", ".join(missing)))
    levels = _channel_map("levels", payload["levels"], _level)
    for level in critical_levels():
        if set(levels.get(level, CHANNELS)) != set(CHANNELS):
            raise ValueError(
                gettext("level {level} is critical and cannot be muted").format(
                    level=limits.shown(level)
                )
            )
    # A kind with every channel is the same as one not named: not kept, not counted
    # (the panel sends back each of the operator's NOTIFICATIONS_KINDS).
    kinds = {
        kind: channels
        for kind, channels in _channel_map("kinds", payload["kinds"], _kind).items()
        if set(channels) != set(CHANNELS)
    }
    if len(kinds) > KINDS_MAX:
        raise ValueError(
            gettext("at most {most} kinds with fewer channels, not {count}").format(
                most=KINDS_MAX, count=len(kinds)
            )
        )
    digest = payload["digest"]
    if digest not in Digest.values:
        raise ValueError(
            gettext("digest must be one of {choices}, not {value}").format(
                choices=", ".join(Digest.values), value=limits.shown(digest)
            )
        )
    quiet_start, quiet_end = _quiet_hours(payload["quiet_hours"])
    checked = {
        "channels": {"levels": levels, "kinds": kinds},
        "digest": digest,
        "quiet_start": quiet_start,
        "quiet_end": quiet_end,
        "time_zone": _time_zone(payload["time_zone"]),
    }
    if "language" in payload:
        checked["language"] = _language(payload["language"])
    return checked


def _language(value: Any) -> str:
    codes = [code for code, _ in app_settings.LANGUAGES]
    if value != "" and value not in codes:
        raise ValueError(
            gettext("language must be '' (the site's) or one of {choices}, not {value}").format(
                choices=", ".join(codes), value=limits.shown(value)
            )
        )
    return value


def _level(name: str) -> str:
    if name not in Level.values:
        raise ValueError(
            gettext("unknown level {level}: use one of {choices}").format(
                level=limits.shown(name), choices=", ".join(Level.values)
            )
        )
    return name


def _kind(name: str) -> str:
    if len(name) > limits.KIND_MAX or not KIND_PATTERN.fullmatch(name):
        raise ValueError(
            gettext("kind {kind} must be 1-{most} characters of a-z, 0-9, '.', '_', '-'").format(
                kind=limits.shown(name), most=limits.KIND_MAX
            )
        )
    return name


def _channel_map(what: str, value: Any, key: Any) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        raise ValueError(
            gettext("{field} must be an object of name -> list of channels").format(field=what)
        )
    checked = {}
    for name, channels in value.items():
        key(name)
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise ValueError(
                gettext("{field}[{name}] must be a list of channels").format(
                    field=what, name=limits.shown(name)
                )
            )
        unknown = [c for c in channels if c not in CHANNELS]
        if unknown:
            raise ValueError(
                gettext(
                    "unknown channel {channel} in {field}[{name}]: "
                    "use {choices} (the inbox always applies)"
                ).format(
                    channel=limits.shown(unknown[0]),
                    field=what,
                    name=limits.shown(name),
                    choices=", ".join(CHANNELS),
                )
            )
        checked[name] = [c for c in CHANNELS if c in channels]
    return checked


def _quiet_hours(value: Any) -> tuple[time | None, time | None]:
    if value is None:
        return None, None
    if not isinstance(value, dict) or set(value) != {"start", "end"}:
        raise ValueError(gettext('quiet_hours must be null or {"start": "HH:MM", "end": "HH:MM"}'))
    start, end = (_clock(name, value[name]) for name in ("start", "end"))
    if start == end:
        raise ValueError(gettext("quiet_hours start and end must differ"))
    return start, end


def _clock(name: str, value: Any) -> time:
    match = CLOCK.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(
            gettext("quiet_hours {name} must be a 24-hour time HH:MM, not {value}").format(
                name=name, value=limits.shown(value)
            )
        )
    return time(int(match[1]), int(match[2]))


# In the tz database's folder but not zones of the IANA list: the machine's own
# clock, a placeholder, and copies of every zone under other rules.
NOT_ZONES = {"localtime", "Factory", "posixrules"}


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(
        name
        for name in zoneinfo.available_timezones()
        if name not in NOT_ZONES and not name.startswith(("posix/", "right/"))
    )


def _zone(name: str) -> tzinfo:
    """The person's zone; one that cannot be read (a row saved before the rule,
    a machine without it) is UTC for that person alone, never an error for others."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        log.warning("time zone %s cannot be read (%r); using UTC", limits.shown(name), exc)
        return UTC


def _time_zone(value: Any) -> str:
    if not isinstance(value, str) or value not in _time_zones():
        raise ValueError(
            gettext(
                "time_zone must be an IANA time zone name such as 'Europe/Berlin', not {value}"
            ).format(value=limits.shown(value))
        )
    return value
