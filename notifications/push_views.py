"""Presence and Web Push over HTTP: the caller's own state and devices only.

Writes are POST/DELETE under Django's CSRF protection, like every view here;
anonymous callers get 401 JSON (views.api_login_required).
"""

import json
from pathlib import Path

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods
from redis.exceptions import RedisError

from notifications import presence, push
from notifications.views import api_login_required, error

STATIC = Path(__file__).parent / "static" / "notifications"
SERVICE_WORKER = STATIC / "push-sw.js"
LINKS = STATIC / "links.js"  # the link rule, which the worker applies to a click
BODY_MAX_BYTES = 4_096  # a subscription is well under 1 KB


@api_login_required
@require_GET
def presence_view(request: HttpRequest) -> JsonResponse:
    """Whether the caller has a notification socket open now, on any process."""
    try:
        online = presence.is_online(request.user.pk)
    except RedisError:
        return error(gettext("presence is unavailable; retry later"), status=503)
    return JsonResponse({"online": online})


@api_login_required
@require_http_methods(["GET", "POST"])
def subscriptions(request: HttpRequest) -> JsonResponse:
    """GET: the caller's devices. POST: register this browser's subscription
    ({endpoint, keys: {p256dh, auth}}, as PushSubscription.toJSON() gives it)."""
    if request.method == "GET":
        return JsonResponse({"enabled": push.enabled(), "devices": push.devices(request.user.pk)})
    if not push.enabled():
        return error(gettext("push is not configured on this server"), status=404)
    if len(request.body) > BODY_MAX_BYTES:
        return error(gettext("the subscription is too large"))
    try:
        data = json.loads(request.body)
        subscription = push.subscribe(request.user.pk, data, request.headers.get("User-Agent", ""))
    except push.Taken as exc:
        return error(str(exc), status=409)
    except (ValueError, RecursionError) as exc:  # json errors are ValueErrors too
        unreadable = (json.JSONDecodeError, UnicodeDecodeError, RecursionError)
        return error(
            gettext("send the subscription as JSON") if isinstance(exc, unreadable) else str(exc)
        )
    return JsonResponse({"id": subscription.pk}, status=201)


@api_login_required
@require_http_methods(["DELETE"])
def subscription(request: HttpRequest, subscription_id: int) -> JsonResponse:
    # Another user's device answers exactly as a missing one does.
    if not push.unsubscribe(request.user.pk, subscription_id):
        return error(gettext("no such device"), status=404)
    return JsonResponse({"id": subscription_id, "deleted": True})


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    """The push service worker, served from the app's URLs but allowed to control
    the whole site (`Service-Worker-Allowed: /`), so a project adds no route.
    links.js goes in front of it: the worker follows the page's link rule."""
    body = LINKS.read_bytes() + b"\n" + SERVICE_WORKER.read_bytes()
    response = HttpResponse(body, content_type="text/javascript")
    response["Service-Worker-Allowed"] = "/"
    response["Cache-Control"] = "no-cache"  # a new version is picked up at once
    return response
