"""Put the notification client on any page of a project.

    {% load notifications_tags %}
    <head> … {% notifications_styles %} </head>
    <header> … {% notifications_widget %} </header>
    … {% notifications_script %}

The widget (bell, inbox, connection state, toasts and progress bars) renders
only for a signed-in user, so a shared base template can include it on the
login page too. It tells the scripts every URL through data attributes.
{% notifications_script %} loads text.js (the words, in the page's language),
transport.js (the socket), tabs.js (which tab
shows a toast), links.js (which urls become links), widget.js (the drawing),
preferences.js (the inbox's preferences panel), then push.js ("Notify me on
this device", when the server has VAPID keys); a page may also use
transport.js alone (see its header).
"""

from django import template
from django.conf import settings
from django.middleware.csrf import get_token
from django.shortcuts import resolve_url
from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from notifications import push, text
from notifications.conf import app_settings
from notifications.routing import websocket_path

register = template.Library()


@register.inclusion_tag("notifications/widget.html", takes_context=True)
def notifications_widget(context: template.Context) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"signed_in": False}
    return {
        "signed_in": True,
        "user_id": user.pk,
        "login_url": resolve_url(settings.LOGIN_URL),
        "api_url": reverse("notifications:list"),
        "preferences_url": reverse("notifications:preferences"),
        "ws_path": websocket_path(),
        # Marking read is a POST; the token also sets the CSRF cookie.
        "csrf_token": get_token(request),
        "cancel_url": cancel_url_pattern(),
        "language": text.client_language(),
        "text": text.client_catalogue(),
        **push_context(),
    }


def push_context() -> dict:
    """What push.js needs, when the server has VAPID keys (else no push section)."""
    if not push.enabled():
        return {}
    return {
        "push_key": app_settings.VAPID_PUBLIC_KEY,
        "push_url": reverse("notifications:push-subscriptions"),
        "push_worker": reverse("notifications:push-service-worker"),
    }


# Stands for the task id in the cancel URL the page is given; widget.js swaps it.
TASK_ID_SLOT = "TASK_ID"


def cancel_url_pattern() -> str:
    """Where a progress bar's Cancel button posts, or "" (no button) in a
    project that does not include notifications.celery.urls."""
    try:
        return reverse("notifications_celery:cancel", args=[TASK_ID_SLOT])
    except NoReverseMatch:
        return ""


@register.simple_tag
def notifications_styles() -> SafeString:
    return format_html(
        '<link rel="stylesheet" href="{}">', static("notifications/notifications.css")
    )


# In the order they must run.
SCRIPTS = (
    "text.js",
    "transport.js",
    "tabs.js",
    "links.js",
    "widget.js",
    "preferences.js",
    "push.js",
)


@register.simple_tag
def notifications_script() -> SafeString:
    # defer: the scripts run once the whole page (and the widget in it) is
    # parsed, and in the order they appear: the widget draws with the transport.
    return format_html_join(
        "",
        '<script src="{}" defer></script>',
        ((static(f"notifications/{name}"),) for name in SCRIPTS),
    )
