"""SessionAuthMiddleware: the session cookie decides who a socket belongs to,
exactly as Django decides for an HTTP request."""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from notifications import flush, notify
from notifications.auth import SessionAuthMiddleware
from notifications.consumers import CLOSE_UNAUTHENTICATED
from tests.sockets import session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


async def scope_seen(cookie: bytes | None) -> dict:
    """The scope the app behind the middleware is called with."""
    seen = {}

    async def inner(scope, receive, send):
        seen.update(scope)

    headers = [(b"cookie", cookie)] if cookie is not None else []
    await SessionAuthMiddleware(inner)({"type": "websocket", "headers": headers}, None, None)
    return seen


async def test_a_valid_session_gives_its_user_its_key_and_nothing_else(alice):
    cookie = await session_cookie(alice)
    scope = await scope_seen(cookie)
    assert scope["user"] == alice
    assert scope["session_key"] == cookie.split(b"=", 1)[1].decode()
    assert scope.keys() == {"type", "headers", "user", "session_key"}


async def test_the_session_cookie_is_found_among_others(alice):
    cookie = b"csrftoken=abc; " + await session_cookie(alice) + b"; theme=dark"
    assert (await scope_seen(cookie))["user"] == alice


async def test_the_configured_cookie_name_is_read(alice, settings):
    key = (await session_cookie(alice)).split(b"=", 1)[1]
    settings.SESSION_COOKIE_NAME = "notify_sid"
    assert (await scope_seen(b"notify_sid=" + key))["user"] == alice
    assert (await scope_seen(b"sessionid=" + key))["user"].is_anonymous


async def test_no_cookie_is_anonymous():
    assert isinstance((await scope_seen(None))["user"], AnonymousUser)


def expire_sessions(user) -> None:
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))


def deactivate(user) -> None:
    user.is_active = False
    user.save()


def change_password(user) -> None:
    user.set_password("a-new-password-456")
    user.save()


def delete(user) -> None:
    user.delete()


@pytest.mark.parametrize("spoil", [expire_sessions, deactivate, change_password, delete])
async def test_a_session_that_no_longer_signs_in_is_closed_with_4401(sockets, alice, spoil):
    cookie = await session_cookie(alice)
    await sync_to_async(spoil)(alice)
    assert (await scope_seen(cookie))["user"].is_anonymous
    communicator, connected, _ = await sockets(cookie=cookie)
    assert connected
    assert await communicator.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": CLOSE_UNAUTHENTICATED,
    }


def log_out(client: Client) -> None:
    client.logout()


@pytest.mark.parametrize("spoil", [log_out, deactivate, change_password, delete])
async def test_an_open_socket_is_closed_with_4401_when_its_access_ends(sockets, alice, spoil):
    client = Client()
    await sync_to_async(client.force_login)(alice)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator, _, _ = await sockets(cookie=cookie)
    assert (await communicator.receive_json_from(timeout=5))["type"] == "hello"
    await sync_to_async(spoil)(client if spoil is log_out else alice)
    assert await communicator.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": CLOSE_UNAUTHENTICATED,
    }


async def test_logging_out_another_session_leaves_this_socket_open(sockets, alice):
    communicator, _, _ = await sockets(alice)
    assert (await communicator.receive_json_from(timeout=5))["type"] == "hello"
    other = Client()
    await sync_to_async(other.force_login)(alice)
    await sync_to_async(other.logout)()
    await sync_to_async(flush)()
    await sync_to_async(notify)(alice, "Still signed in here")
    assert (await communicator.receive_json_from(timeout=5))["title"] == "Still signed in here"


@pytest.mark.parametrize(
    "cookie", [b"", b"csrftoken=abc", b"sessionid=", b"sessionid=garbage", b"sessionid=%ff;;="]
)
async def test_a_missing_or_garbage_session_cookie_is_closed_with_4401(sockets, cookie):
    communicator, connected, _ = await sockets(cookie=cookie)
    assert connected
    assert await communicator.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": CLOSE_UNAUTHENTICATED,
    }
