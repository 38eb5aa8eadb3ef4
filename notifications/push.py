"""Web Push: a notification reaches a person's devices when no tab of theirs is open.

Standard Web Push: RFC 8030 delivery, RFC 8291 payload encryption and RFC 8292
VAPID, done by pywebpush (an optional dependency, imported only here and only
when a push is sent). Push is on when NOTIFICATIONS_VAPID_PUBLIC_KEY and
_PRIVATE_KEY are set.

`notify()` calls `after_commit()`, which queues one Celery task for the batch
once the transaction commits and returns: no query and no push service is
waited on by the caller. The task calls `deliver()`, which picks, among the
recipients with a registered device, those with no socket open (presence.py)
whom their preferences let push reach (preferences.py), and posts to each of
their devices once (models.PushDelivery).
"""

import base64
import functools
import importlib.util
import json
import logging
import random
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import DatabaseError, IntegrityError, transaction
from django.utils.translation import gettext
from redis.exceptions import RedisError

from notifications import limits, preferences, presence, validation
from notifications.conf import app_settings
from notifications.models import Notification, PushDelivery, PushSubscription

log = logging.getLogger(__name__)

ENDPOINT_MAX = PushSubscription._meta.get_field("endpoint").max_length
USER_AGENT_MAX = PushSubscription._meta.get_field("user_agent").max_length
# A push message's plaintext: a service takes 4,096 bytes of ciphertext, of
# which the aes128gcm header, padding delimiter and tag take 103.
PAYLOAD_MAX_BYTES = 3_993
# Notification ids per task: a notify_all() to many people is several tasks.
TASK_CHUNK = 500
TASK_NAME = "notifications.push"


def enabled() -> bool:
    """Whether the server has a VAPID key pair, which turns push on."""
    return bool(app_settings.VAPID_PUBLIC_KEY and app_settings.VAPID_PRIVATE_KEY)


def library_missing() -> bool:
    return importlib.util.find_spec("pywebpush") is None


# Subscriptions: what the browser's pushManager.subscribe() gave the page.


class Taken(ValueError):
    """The endpoint is another account's, and the caller did not show its keys."""


def subscribe(user_id: int, data: object, user_agent: str = "") -> PushSubscription:
    """Register (or refresh) the caller's browser; ValueError says what is wrong.

    An endpoint held by another account moves to the caller only when the
    caller sends that subscription's own keys: the same browser profile, where
    someone else signed in since (pushManager gives them the same subscription).
    Knowing an endpoint alone takes nobody's device over (Taken, HTTP 409).
    The device cap is counted under a lock on the user's row (SQLite: the
    IMMEDIATE transaction's write lock), so concurrent requests cannot pass it.
    """
    endpoint, p256dh, auth = _subscription_fields(data)
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=user_id).exists()
        held = PushSubscription.objects.select_for_update().filter(endpoint=endpoint).first()
        if held and held.user_id != user_id and (held.p256dh, held.auth) != (p256dh, auth):
            raise Taken(gettext("this endpoint is registered to another account"))
        owned = PushSubscription.objects.filter(user_id=user_id).exclude(endpoint=endpoint)
        if owned.count() >= app_settings.PUSH_MAX_SUBSCRIPTIONS:
            raise ValueError(
                gettext("at most {count} devices; remove one first").format(
                    count=app_settings.PUSH_MAX_SUBSCRIPTIONS
                )
            )
        subscription, _ = PushSubscription.objects.update_or_create(
            endpoint=endpoint,
            defaults={
                "user_id": user_id,
                "p256dh": p256dh,
                "auth": auth,
                "user_agent": user_agent[:USER_AGENT_MAX],
            },
        )
    return subscription


def unsubscribe(user_id: int, subscription_id: int) -> bool:
    """Remove one of the user's devices; False when they have none by that id."""
    deleted, _ = PushSubscription.objects.filter(user_id=user_id, pk=subscription_id).delete()
    return bool(deleted)


def devices(user_id: int) -> list[dict]:
    """The user's registered devices, oldest first, as the preferences list them."""
    return [
        {
            "id": s.pk,
            "endpoint": s.endpoint,
            "user_agent": s.user_agent,
            "created_at": s.created_at.isoformat(),
        }
        for s in PushSubscription.objects.filter(user_id=user_id)
    ]


def _subscription_fields(data: object) -> tuple[str, str, str]:
    if not isinstance(data, dict):
        raise ValueError(gettext("send the subscription as a JSON object"))
    endpoint, keys = data.get("endpoint"), data.get("keys")
    if not isinstance(endpoint, str) or not isinstance(keys, dict):
        raise ValueError(gettext("'endpoint' (a string) and 'keys' (an object) are required"))
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    if not isinstance(p256dh, str) or not isinstance(auth, str):
        raise ValueError(gettext("'keys' needs 'p256dh' and 'auth' strings"))
    endpoint = normal_endpoint(endpoint)
    check_endpoint(endpoint)
    public = _b64url("p256dh", p256dh, 100)
    if len(public) != 65 or public[0] != 4 or not _on_the_curve(public):
        raise ValueError(gettext("'p256dh' must be an uncompressed P-256 public key (65 bytes)"))
    if len(_b64url("auth", auth, 50)) != 16:
        raise ValueError(gettext("'auth' must be 16 bytes"))
    return endpoint, p256dh.rstrip("="), auth.rstrip("=")


def normal_endpoint(endpoint: str) -> str:
    """One spelling per endpoint, so a device is one row: no surrounding
    whitespace, scheme and host in lower case, no default port; a URL with
    whitespace or control characters inside is refused."""
    endpoint = endpoint.strip()
    if any(c.isspace() or ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in endpoint):
        raise ValueError(gettext("'endpoint' has whitespace or control characters"))
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        raise ValueError(gettext("'endpoint' is not a URL")) from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if "@" in parts.netloc or not host:
        return endpoint  # check_endpoint() says what is wrong
    netloc = host if port in (None, {"https": 443, "http": 80}.get(scheme)) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment))


def check_endpoint(endpoint: str) -> None:
    """A push service's https URL; anything else would have this server post
    to an address of the subscriber's choosing. The sender applies it again
    to every request it makes (HostCheckedSession)."""
    if len(endpoint) > ENDPOINT_MAX:
        raise ValueError(
            gettext("'endpoint' is longer than {count} characters").format(count=ENDPOINT_MAX)
        )
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        raise ValueError(gettext("'endpoint' is not a URL")) from None
    schemes = ("https", "http") if app_settings.PUSH_ALLOW_HTTP else ("https",)
    if parts.scheme not in schemes or not parts.hostname or parts.username or parts.password:
        raise ValueError(gettext("'endpoint' must be an https URL of a push service"))
    host = parts.hostname.lower()
    if not any(host == h or host.endswith("." + h) for h in app_settings.PUSH_SERVICE_HOSTS):
        raise ValueError(
            gettext("'endpoint' is not on a known push service ({host})").format(
                host=limits.shown(host)
            )
        )


def _on_the_curve(point: bytes) -> bool:
    """Whether the bytes are a point of P-256 (true when there is no library to ask:
    the encryption refuses such a key later, and the device is then never pushed to)."""
    try:
        from cryptography.hazmat.primitives.asymmetric import ec
    except ImportError:
        return True
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        return False
    return True


BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def _b64url(name: str, value: str, max_length: int) -> bytes:
    # Python's decoder skips characters outside the alphabet; a key must not.
    if len(value) > max_length or not BASE64URL.fullmatch(value) or len(value.rstrip("=")) % 4 == 1:
        raise ValueError(gettext("'{name}' is not base64url").format(name=name))
    return base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))


# Sending.


def after_commit(notifications: Iterable[Notification]) -> None:
    """Queue the push of these notifications once the transaction commits.

    The caller pays for nothing when push is off; otherwise, after its
    commit, for one indexed query (does any recipient have a device?) and,
    when one does, one broker message per TASK_CHUNK notifications. Which of
    them go out is decided by the task (deliver()), off the caller's path.
    """
    if not enabled():
        return
    notifications = list(notifications)
    if notifications:
        transaction.on_commit(lambda: _enqueue(notifications))


def _enqueue(notifications: list[Notification]) -> None:
    if not apps.is_installed("notifications.celery"):
        log.warning("push is configured but notifications.celery is not installed; not sent")
        return
    from notifications.celery.tasks import send_push

    if not _may_have_devices({n.recipient_id for n in notifications}):
        return
    ids = [n.pk for n in notifications]

    for start in range(0, len(ids), TASK_CHUNK):
        chunk = ids[start : start + TASK_CHUNK]
        try:
            # retry=False: with the broker away, fail now rather than hold notify().
            send_push.apply_async((chunk,), retry=False)
        except Exception as exc:
            log.warning("push of %d notification(s) not queued: %r", len(chunk), exc)


def _may_have_devices(users: set[int]) -> bool:
    """False when none of `users` has a device, so most notices cost no broker
    message. A larger set (an IN list that long may pass SQLite's limits) and a
    failed query are left to the task to sort out."""
    if len(users) > TASK_CHUNK:
        return True
    try:
        return PushSubscription.objects.filter(user_id__in=users).exists()
    except DatabaseError as exc:
        log.warning("could not tell whether %d user(s) have push devices: %r", len(users), exc)
        return True


class _Retry(Exception):
    """The push service took nothing (it said so, or was never reached): try later."""


def deliver(notification_ids: Iterable[int]) -> list[int]:
    """Push each notification to its recipient's devices when they have no
    socket open and their preferences allow; returns the ids to try again
    (a device's push service failed), each device already done is not redone."""
    if not enabled():
        return []
    rows = list(Notification.objects.filter(pk__in=list(notification_ids)))
    devices_of: dict[int, list[PushSubscription]] = {}
    for subscription in PushSubscription.objects.filter(user_id__in={n.recipient_id for n in rows}):
        devices_of.setdefault(subscription.user_id, []).append(subscription)
    rows = [n for n in rows if n.recipient_id in devices_of]
    reachable = _reachable(rows)
    retry = []
    for notification in rows:
        if notification.recipient_id not in reachable:
            continue
        body = payload(notification)
        devices = devices_of[notification.recipient_id]
        outcomes = [(s, _push_once(notification, s, body)) for s in devices]
        devices[:] = [s for s, outcome in outcomes if outcome != GONE]  # not tried again
        if any(outcome == RETRY for _, outcome in outcomes):
            retry.append(notification.pk)
    return retry


def _reachable(rows: list[Notification]) -> set[int]:
    """Recipients with no open socket whom push may reach for these notifications."""
    recipients = {n.recipient_id for n in rows}
    try:
        away = recipients - presence.online(recipients)
    except RedisError as exc:  # no presence means no live sockets either: push
        log.warning("presence unavailable, pushing to everyone: %r", exc)
        away = recipients
    allowed: set[int] = set()
    by_kind: dict[tuple[str, str], set[int]] = {}
    for n in rows:
        if n.recipient_id in away:
            by_kind.setdefault((n.level, n.kind), set()).add(n.recipient_id)
    for (level, kind), users in by_kind.items():
        allowed |= preferences.recipients(users, level=level, kind=kind, channel="push")
    return allowed


# What became of one push to one device.
DONE, RETRY, GONE = "done", "retry", "gone"


def _push_once(notification: Notification, subscription: PushSubscription, body: str) -> str:
    """Send unless already claimed: DONE (sent, sent before, or never to be
    sent), RETRY (try again later) or GONE (the subscription was deleted)."""
    try:
        with transaction.atomic():
            delivery = PushDelivery.objects.create(
                notification=notification, subscription=subscription
            )
    except IntegrityError:  # sent before, or being sent by another run
        return DONE
    try:
        send(subscription, body)
    except _Retry as exc:
        log.info("push to subscription %s failed, will retry: %s", subscription.pk, exc)
        delivery.delete()
        return RETRY
    except Gone:
        log.info("push subscription %s is gone; deleted", subscription.pk)
        subscription.delete()
        return GONE
    except Exception as exc:  # refused for good, or sent perhaps: never resent
        log.warning("push to subscription %s failed: %r", subscription.pk, exc)
        return DONE
    delivery.sent_at = datetime.now(UTC)
    delivery.save(update_fields=["sent_at"])
    return DONE


class RedirectRefused(Exception):
    """The push service answered 3xx: a failed delivery, never followed elsewhere."""


class Gone(Exception):
    """The push service no longer knows the subscription (404 or 410)."""


def send(subscription: PushSubscription, body: str) -> None:
    """Encrypt `body` for the subscription's browser and post it, signed with VAPID.

    Raises Gone (404, 410), _Retry (429, 5xx, or no connection made), or
    another exception for an outcome that retrying cannot mend, or in which
    the push service may have taken the message (a timeout after sending).
    """
    import requests
    from pywebpush import WebPushException, webpush
    from urllib3.exceptions import NewConnectionError

    try:
        webpush(
            {
                "endpoint": subscription.endpoint,
                "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
            },
            data=body,
            vapid_private_key=app_settings.VAPID_PRIVATE_KEY,
            vapid_claims={"sub": app_settings.VAPID_SUBJECT},  # a new dict: webpush fills it in
            ttl=app_settings.PUSH_TTL,
            timeout=app_settings.PUSH_TIMEOUT,
            requests_session=_session(),
        )
    except WebPushException as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (404, 410):
            raise Gone() from exc
        if status == 429 or (status is not None and status >= 500):
            raise _Retry(f"push service answered {status}") from exc
        if status is not None and 300 <= status < 400:
            message = f"push service answered {status}; redirects are not followed"
            raise RedirectRefused(message) from exc
        raise
    except requests.ConnectTimeout as exc:
        raise _Retry("push service did not accept a connection") from exc
    except requests.ConnectionError as exc:
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        if isinstance(reason, NewConnectionError):
            raise _Retry(f"push service unreachable: {reason}") from exc
        raise


@functools.cache
def _session():
    """One HTTP session per process (made on first use, so in the worker child after
    the fork): connections to a push service are kept and reused between pushes."""
    import requests

    class HostCheckedSession(requests.Session):
        """Never a way into the network: no redirect is followed (a 3xx is a
        failed delivery), every request's URL passes check_endpoint(), and no
        proxy or netrc from the environment is used."""

        def request(self, method, url, *args, **kwargs):
            check_endpoint(url)
            kwargs["allow_redirects"] = False
            return super().request(method, url, *args, **kwargs)

    session = HostCheckedSession()
    session.trust_env = False
    return session


def payload(notification: Notification) -> str:
    """The JSON the service worker shows, shortened to fit one push message."""
    message = {
        "id": notification.pk,
        "title": notification.title,
        "body": notification.body,
        # A row saved before the link rule, or by hand, still opens no bad link.
        "url": notification.url if validation.link(notification.url) else "",
        "level": notification.level,
    }
    if app_settings.PUSH_ICON:
        message["icon"] = app_settings.PUSH_ICON
    text = _json(message)
    # Body first, then the url (a click then opens the site), then the title.
    for field in ("body", "url", "title"):
        while len(text.encode()) > PAYLOAD_MAX_BYTES and message[field]:
            excess = len(text.encode()) - PAYLOAD_MAX_BYTES
            value = message[field]
            keep = max(0, len(value) - max(1, excess // 4) - 1)
            # A cut URL would lead nowhere: it goes whole.
            message[field] = limits.shorten(value, keep) if keep > 1 and field != "url" else ""
            text = _json(message)
    return text


def _json(message: dict) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def backoff(retries: int) -> float:
    """Seconds before retry number `retries` + 1: 2, 4, 8… up to ten minutes, with
    jitter so that devices failed together are not retried together."""
    return min(600.0, 2.0 ** (retries + 1)) * random.uniform(0.75, 1.0)


def new_vapid_keys() -> tuple[str, str]:
    """A new VAPID key pair (public, private), base64url as the settings take them:
    the public key as browsers' applicationServerKey wants it (the uncompressed
    P-256 point), the private key as its raw 32 bytes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    private = key.private_numbers().private_value.to_bytes(32, "big")
    return _b64(public), _b64(private)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
