"""The template tags that put the client on any page."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import engines
from django.test import RequestFactory

PAGE = (
    "{% load notifications_tags %}{% notifications_styles %}"
    "<header>{% notifications_widget %}</header>{% notifications_script %}"
)


def render(user) -> str:
    request = RequestFactory().get("/any/page/")
    request.user = user
    return engines["django"].from_string(PAGE).render({}, request)


def test_anonymous_visitors_get_no_widget_but_pages_still_render():
    html = render(AnonymousUser())
    assert "data-notifications" not in html
    transport = html.index('<script src="/static/notifications/transport.js" defer></script>')
    tabs = html.index('<script src="/static/notifications/tabs.js" defer></script>')
    widget = html.index('<script src="/static/notifications/widget.js" defer></script>')
    preferences = html.index('<script src="/static/notifications/preferences.js" defer></script>')
    push = html.index('<script src="/static/notifications/push.js" defer></script>')
    # Deferred scripts run in order: the widget needs the transport and the tabs.
    assert transport < tabs < widget < preferences < push


@pytest.mark.django_db
def test_widget_tells_the_script_every_url_it_needs(alice):
    html = render(alice)
    for attribute in (
        f'data-user-id="{alice.pk}"',
        'data-login-url="/accounts/login/"',
        'data-api-url="/api/notifications/"',
        'data-ws-path="/ws/notifications/"',
        'data-preferences-url="/api/notifications/preferences/"',
        "data-csrf-token=",
        'aria-live="polite"',
    ):
        assert attribute in html
    assert 'href="/static/notifications/notifications.css"' in html
