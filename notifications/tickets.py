"""Short-lived, single-use tickets for sockets that cannot send the session cookie.

A native app or a page on another origin asks `POST /api/notifications/ticket/`
(signed in, with CSRF) and connects with `ws/notifications/?ticket=...` within
NOTIFICATIONS_TICKET_TTL seconds. The ticket is the credential: signed with the
secret key, it cannot be forged; its nonce is burnt in Redis on first use, so a
ticket that leaks from a log cannot be replayed.

A ticket is only as good as the session it was minted from: it is refused once
that session has logged out or the password has changed since, and the socket
it opens ends with that session (sessions.py). The session key stays in Redis
beside the nonce, never in the ticket: a ticket in a log must not hand out the
session cookie.
"""

import json
import secrets

from django.core import signing
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare

from notifications.clients import app_redis
from notifications.conf import app_settings
from notifications.sessions import user_of_session

SALT = "notifications.ticket"


def _nonce_key(nonce: str) -> str:
    return f"ticket:{nonce}"


def issue(request: HttpRequest) -> str:
    """A ticket for the signed-in user of `request`, bound to its session.

    Raises redis.RedisError when Redis is unreachable.
    """
    nonce = secrets.token_urlsafe(16)
    binding = json.dumps([request.session.session_key, request.user.get_session_auth_hash()])
    ttl = app_settings.TICKET_TTL
    app_redis().set(_nonce_key(nonce), binding, ex=max(1, ttl) + 5)
    return signing.dumps({"user": request.user.pk, "nonce": nonce}, salt=SALT)


def redeem(ticket: str) -> tuple:
    """(user, session key) for a valid, unexpired, unused ticket whose session
    still signs its user in with the same password; (None, None) otherwise.

    Raises redis.RedisError when Redis is unreachable.
    """
    try:
        payload = signing.loads(ticket, salt=SALT, max_age=app_settings.TICKET_TTL)
    except signing.BadSignature:  # forged, tampered with, or expired
        return None, None
    binding = app_redis().getdel(_nonce_key(payload["nonce"]))
    if binding is None:  # used already
        return None, None
    key, auth_hash = json.loads(binding)
    user = user_of_session(key)
    if user.pk != payload["user"] or not constant_time_compare(
        user.get_session_auth_hash(), auth_hash
    ):
        return None, None
    return user, key
