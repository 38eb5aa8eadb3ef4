"""Short-lived, single-use, signed tickets for sockets that cannot send the session cookie.

A native app or a page on another origin asks `POST /api/notifications/ticket/`
(signed in, with CSRF) and connects with `ws/notifications/?ticket=...` within
NOTIFICATIONS_TICKET_TTL seconds. The ticket is the credential: signed with the
secret key, it cannot be forged; its nonce is burnt in Redis on first use, so a
ticket that leaks from a log cannot be replayed.
"""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing

from notifications.clients import redis_client

SALT = "notifications.ticket"


def issue(user_id: int) -> str:
    return signing.dumps({"user": user_id, "nonce": secrets.token_urlsafe(16)}, salt=SALT)


def redeem(ticket: str):
    """The active user a valid, unexpired, unused ticket names; None otherwise."""
    ttl = settings.NOTIFICATIONS_TICKET_TTL
    try:
        payload = signing.loads(ticket, salt=SALT, max_age=ttl)
    except signing.BadSignature:  # forged, tampered with, or expired
        return None
    burnt = redis_client(settings.REDIS_URL).set(
        f"ticket-used:{payload['nonce']}", 1, nx=True, ex=ttl + 5
    )
    if not burnt:
        return None
    return get_user_model().objects.filter(pk=payload["user"], is_active=True).first()
