"""The inbox over HTTP: JSON, login required, only the caller's own notifications.

Thin views over `inbox` (reading) and `reads.mark_read` (marking read, which
also tells the user's other tabs). CSRF applies to the writes as to any Django view.
Also a running task's progress, the socket ticket and the operator's /metrics.
"""

import hmac
import json
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from redis.exceptions import RedisError

from notifications import digest, inbox, limits, preferences, progress_state, reads, tickets
from notifications import metrics as metrics_module
from notifications.conf import app_settings

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def api_login_required(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
    """401 JSON for anonymous callers: a script cannot follow a login redirect."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> JsonResponse:
        if not request.user.is_authenticated:
            return JsonResponse({"error": gettext("login required")}, status=401)
        return view(request, *args, **kwargs)

    return wrapper


ERROR_MAX = 500


def error(message: str, status: int = 400) -> JsonResponse:
    """The API's error answer; bounded, whatever value the message quotes."""
    return JsonResponse({"error": limits.shorten(message, ERROR_MAX)}, status=status)


def whole_number(request: HttpRequest, name: str) -> int | None:
    """A query parameter that must be a non-negative integer when present."""
    value = request.GET.get(name)
    if value is None:
        return None
    if not value.isascii() or not value.isdigit():
        raise ValueError(
            gettext("'{name}' must be a non-negative integer, not {value}").format(
                name=name, value=limits.shown(value)
            )
        )
    return int(value)


@api_login_required
@require_GET
def notification_list(request: HttpRequest) -> JsonResponse:
    """`?limit=N` newest first, or `?after=ID&limit=N` the ones after ID, oldest first."""
    try:
        after = whole_number(request, "after")
        limit = whole_number(request, "limit")
    except ValueError as exc:
        return error(str(exc))
    limit = DEFAULT_LIMIT if limit is None else max(1, min(MAX_LIMIT, limit))
    user_id = request.user.pk
    return JsonResponse(
        {
            "notifications": inbox.page(user_id, after=after, limit=limit),
            "unread": inbox.unread_count(user_id),
        }
    )


@api_login_required
@require_GET
def unread_count(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"unread": inbox.unread_count(request.user.pk)})


@api_login_required
@require_POST
def mark_one_read(request: HttpRequest, notification_id: int) -> JsonResponse:
    user_id = request.user.pk
    # Another user's notification answers exactly as a missing one does.
    if not inbox.owns(user_id, notification_id):
        return error(gettext("no such notification"), status=404)
    reads.mark_read(user_id, [notification_id])
    return JsonResponse(
        {"id": notification_id, "read": True, "unread": inbox.unread_count(user_id)}
    )


@api_login_required
@require_POST
def mark_all_read(request: HttpRequest) -> JsonResponse:
    changed = reads.mark_read(request.user.pk, None)
    return JsonResponse({"ids": changed, "unread": inbox.unread_count(request.user.pk)})


@api_login_required
@require_GET
def task_progress(request: HttpRequest, task_id: str) -> JsonResponse:
    """The caller's running task's latest progress, and whether its worker is gone
    (`stalled`); 404 for anyone else's, and for a task that has ended or never
    reported (see progress_state.py)."""
    try:
        state = progress_state.of(request.user.pk, task_id)
        stalled = state is not None and bool(progress_state.stalled(request.user.pk, [task_id]))
    except RedisError:
        return error(gettext("progress is unavailable; retry later"), status=503)
    if state is None:
        return error(gettext("no such running task"), status=404)
    return JsonResponse(
        {
            "task_id": task_id,
            "percent": state["percent"],
            "message": state["message"],
            "updated_at": state["at"],
            "stalled": stalled,
        }
    )


@api_login_required
@require_POST
def ticket(request: HttpRequest) -> JsonResponse:
    """A socket ticket for a client that cannot send the session cookie (see tickets.py)."""
    try:
        ticket = tickets.issue(request)
    except RedisError:  # the socket could not be opened now either
        return error(gettext("the notification service is unavailable; retry later"), status=503)
    return JsonResponse({"ticket": ticket, "expires_in": app_settings.TICKET_TTL})


@api_login_required
@require_http_methods(["GET", "PUT"])
def user_preferences(request: HttpRequest) -> JsonResponse:
    """The caller's channels per level and kind, digest interval and quiet hours;
    PUT (JSON, CSRF) replaces them all, or answers 400 and changes nothing."""
    if request.method == "PUT":
        try:
            payload = json.loads(request.body)
        except (ValueError, RecursionError):
            return error(gettext("the body must be JSON"))
        try:
            return JsonResponse(preferences.set_preferences(request.user.pk, payload))
        except ValueError as exc:
            return error(str(exc))
    return JsonResponse(preferences.preferences_of(request.user.pk))


# The signed token in the link is the credential, so the mail client's one-click
# POST (RFC 8058), which carries no cookie nor CSRF token, must work; GET only
# asks, since link scanners fetch every link in an email.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """Turn the email digest off from the link in a digest, without signing in."""
    if digest.unsubscribed_user(token) is None:
        return render(request, "notifications/unsubscribe.html", {"invalid": True}, status=404)
    if request.method == "POST":
        if not digest.unsubscribe(token):
            return render(request, "notifications/unsubscribe.html", {"invalid": True}, status=404)
        return render(request, "notifications/unsubscribe.html", {"done": True})
    return render(request, "notifications/unsubscribe.html", {})


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, only for the bearer of METRICS_TOKEN.

    Without a token the page is open only in DEBUG: the figures name hosts and
    process ids, and a scrape costs Redis round trips, so a production server
    does not hand them to anyone who asks.
    """
    token = app_settings.METRICS_TOKEN
    if not token and not settings.DEBUG:
        return HttpResponse(
            "forbidden: set METRICS_TOKEN to enable /metrics\n",
            status=403,
            content_type="text/plain",
        )
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), token.encode()):
            return HttpResponse("unauthorized\n", status=401, content_type="text/plain")
    try:
        body = metrics_module.render()
    except Exception as exc:  # Redis away: say so rather than serve partial figures
        return HttpResponse(
            f"metrics unavailable: {exc!r}\n", status=503, content_type="text/plain"
        )
    return HttpResponse(body, content_type="text/plain; version=0.0.4; charset=utf-8")
