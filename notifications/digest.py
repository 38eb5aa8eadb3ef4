"""The email digest: what nobody saw, in one email per person per interval.

A notification goes into a digest when no tab showed it (`seen_at`), nobody
read it, no digest took it before (`emailed_at`), it is older than
NOTIFICATIONS_DIGEST_AFTER_MINUTES and younger than LOOKBACK, and its
recipient's preferences let email through for its level and kind. A person's
digest is due when their interval (hourly, daily) has passed since their last
one. The rows are claimed (`emailed_at` set) in a transaction that skips rows
another run holds, before anything is sent, so two runs never email one
notification twice; a send that fails gives them back for the next run.

Celery beat runs `send_due()` (notifications.celery.tasks.send_digests).
"""

import logging
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Max
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import ngettext

from notifications import limits, preferences, validation
from notifications.conf import app_settings
from notifications.models import Digest, Level, Notification
from notifications.users import has_field

log = logging.getLogger(__name__)

INTERVALS = {Digest.HOURLY: timedelta(hours=1), Digest.DAILY: timedelta(days=1)}
# Older unseen notifications are left to the inbox: a person who comes back
# after a month needs no email about it, and each run scans a bounded range.
LOOKBACK = timedelta(days=7)
# Notifications one email lists; more wait for the next digest.
MAX_ITEMS = 200
BODY_SNIPPET = 200
UNSUBSCRIBE_SALT = "notifications.digest.unsubscribe"


def send_due(now: datetime) -> int:
    """Send every digest that is due at `now`; returns how many emails went out."""
    site = app_settings.SITE_URL.rstrip("/")
    if not site:
        log.warning("no email digest: set NOTIFICATIONS_SITE_URL so its links can work")
        return 0
    if not has_field(email_field()):
        log.warning("no email digest: the user model has no %r field", email_field())
        return 0
    due = _due_users(now)
    sent = 0
    for user_id, choices in due.items():
        try:
            sent += _send_one(user_id, choices, now, site)
        except Exception:
            log.exception("the digest for user %s failed; it is retried next run", user_id)
    return sent


def _candidates(now: datetime):
    rows = Notification.objects.filter(
        read_at=None,
        seen_at=None,
        emailed_at=None,
        created_at__lte=now - timedelta(minutes=app_settings.DIGEST_AFTER_MINUTES),
        created_at__gt=now - LOOKBACK,
    )
    # A person without an address is skipped and their rows left as they are:
    # once they add one, what is still unseen (within LOOKBACK) goes out.
    rows = rows.exclude(**{f"recipient__{email_field()}": ""})
    if has_field("is_active"):
        rows = rows.filter(recipient__is_active=True)
    return rows


def _due_users(now: datetime) -> dict[int, preferences.Choices]:
    """The people with candidates whose interval has passed since their last digest."""
    user_ids = set(_candidates(now).values_list("recipient_id", flat=True).distinct())
    choices = {
        user_id: c
        for user_id, c in preferences.choices_of(sorted(user_ids)).items()
        if c.digest in INTERVALS
    }
    last = dict(
        Notification.objects.filter(
            recipient_id__in=list(choices), emailed_at__gt=now - max(INTERVALS.values())
        )
        .values("recipient_id")
        .annotate(last=Max("emailed_at"))
        .values_list("recipient_id", "last")
    )
    return {
        user_id: c
        for user_id, c in choices.items()
        if user_id not in last or now - last[user_id] >= INTERVALS[c.digest]
    }


def _send_one(user_id: int, choices: preferences.Choices, now: datetime, site: str) -> int:
    claimed = _claim(user_id, choices, now)
    if not claimed:
        return 0
    user = get_user_model().objects.get(pk=user_id)
    try:
        with translation.override(choices.language_code):
            email = message(user, claimed, site)
        email.send()
    except Exception:
        Notification.objects.filter(id__in=[n.id for n in claimed], emailed_at=now).update(
            emailed_at=None
        )
        raise
    return 1


def _claim(user_id: int, choices: preferences.Choices, now: datetime) -> list[Notification]:
    """This person's notifications for the digest, in the email's order, marked as emailed."""
    with transaction.atomic():
        rows = list(
            _candidates(now)
            .filter(recipient_id=user_id)
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("-created_at", "-id")
        )
        rows = [
            n for n in rows if choices.allows(level=n.level, kind=n.kind, channel="email", at=now)
        ]
        rows = in_digest_order(rows)[:MAX_ITEMS]
        Notification.objects.filter(id__in=[n.id for n in rows]).update(emailed_at=now)
    return rows


def in_digest_order(rows: list[Notification]) -> list[Notification]:
    """Errors of the person's own tasks first, then the rest; newest first in each."""
    newest = sorted(rows, key=lambda n: (n.created_at, n.id), reverse=True)
    own_errors = [n for n in newest if n.level == Level.ERROR and n.task_id]
    return own_errors + [n for n in newest if not (n.level == Level.ERROR and n.task_id)]


def message(user, rows: list[Notification], site: str) -> EmailMultiAlternatives:
    """The email: plain text and HTML, with a one-click unsubscribe (RFC 8058)."""
    unsubscribe = site + reverse("notifications:unsubscribe", args=[unsubscribe_token(user.pk)])
    context = {
        "items": [
            {
                "title": n.title,
                "body": limits.shorten(n.body, BODY_SNIPPET),
                "level": n.level,
                "link": absolute_link(n.url, site),
                "created_at": n.created_at,
            }
            for n in rows
        ],
        "site": site,
        "unsubscribe_url": unsubscribe,
    }
    count = len(rows)
    email = EmailMultiAlternatives(
        subject=ngettext(
            "%(count)d notification you have not seen",
            "%(count)d notifications you have not seen",
            count,
        )
        % {"count": count},
        body=render_to_string("notifications/digest.txt", context),
        to=[getattr(user, email_field())],
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    email.attach_alternative(render_to_string("notifications/digest.html", context), "text/html")
    return email


def absolute_link(url: str, site: str) -> str:
    """The notification's link as a full address; the site itself when it has none."""
    if url and validation.link(url):
        return site + url if url.startswith("/") else url
    return site + "/"


def email_field() -> str:
    return get_user_model().get_email_field_name()


def unsubscribe_token(user_id: int) -> str:
    """A token that turns this person's digest off, and nothing else; it does not
    expire, since an old email's link must still work."""
    return signing.dumps(user_id, salt=UNSUBSCRIBE_SALT, compress=False)


def unsubscribed_user(token: str) -> int | None:
    """The user a token was made for, or None when it is not one of ours."""
    try:
        user_id = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    return user_id if isinstance(user_id, int) and not isinstance(user_id, bool) else None


def unsubscribe(token: str) -> bool:
    """Turn the digest off for the token's user; False for a token that is not valid."""
    user_id = unsubscribed_user(token)
    if user_id is None or not get_user_model().objects.filter(pk=user_id).exists():
        return False
    preferences.set_digest(user_id, Digest.OFF)
    return True
