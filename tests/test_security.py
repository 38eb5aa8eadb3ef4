"""Who may connect and act: origins, tickets, CSRF, rate limits, production settings."""

import os
import subprocess
import sys

import pytest
from asgiref.sync import sync_to_async
from django.core import signing
from django.test import Client

from notifications import notify, tickets
from notifications.consumers import CLOSE_RATE_LIMITED, CLOSE_UNAUTHENTICATED
from tests.stack import BASE_DIR

pytestmark = pytest.mark.django_db(transaction=True)

FOREIGN = (b"origin", b"https://evil.example")


async def closed_with(communicator) -> int | None:
    output = await communicator.receive_output(timeout=5)
    while output["type"] != "websocket.close":
        output = await communicator.receive_output(timeout=5)
    return output.get("code")


def ticket_for(user) -> str:
    client = Client()
    client.force_login(user)
    response = client.post("/api/notifications/ticket/")
    assert response.status_code == 200
    return response.json()["ticket"]


async def test_cookie_socket_from_a_foreign_origin_is_refused(sockets, alice):
    _, connected, _ = await sockets(alice, origin=FOREIGN)
    assert not connected


async def test_cookie_socket_without_an_origin_is_refused(sockets, alice):
    _, connected, _ = await sockets(alice, origin=None)
    assert not connected


async def test_ticket_socket_from_a_native_app_without_origin(sockets, alice):
    ticket = await sync_to_async(ticket_for)(alice)
    communicator, connected, _ = await sockets(
        path=f"/ws/notifications/?ticket={ticket}", origin=None
    )
    assert connected
    assert (await communicator.receive_json_from(timeout=5))["type"] == "hello"
    await sync_to_async(notify)(alice, "Via ticket")
    assert (await communicator.receive_json_from(timeout=5))["title"] == "Via ticket"


async def test_ticket_socket_from_a_listed_origin(sockets, alice, settings):
    settings.NOTIFICATIONS_TICKET_ORIGINS = ["https://app.example.com"]
    from config import asgi

    # The validators read the origin lists when the stack is built.
    application = asgi.TicketOrSession(asgi.URLRouter(asgi.websocket_urlpatterns))
    ticket = await sync_to_async(ticket_for)(alice)
    from channels.testing import WebsocketCommunicator

    communicator = WebsocketCommunicator(
        application,
        f"/ws/notifications/?ticket={ticket}",
        headers=[(b"origin", b"https://app.example.com")],
    )
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    assert (await communicator.receive_json_from(timeout=5))["type"] == "hello"
    await communicator.disconnect()


async def test_ticket_socket_from_an_unlisted_origin_is_refused(sockets, alice):
    ticket = await sync_to_async(ticket_for)(alice)
    _, connected, _ = await sockets(path=f"/ws/notifications/?ticket={ticket}", origin=FOREIGN)
    assert not connected


async def test_reused_ticket_is_closed_with_4401(sockets, alice):
    ticket = await sync_to_async(ticket_for)(alice)
    first, _, _ = await sockets(path=f"/ws/notifications/?ticket={ticket}")
    assert (await first.receive_json_from(timeout=5))["type"] == "hello"
    second, connected, _ = await sockets(path=f"/ws/notifications/?ticket={ticket}")
    assert connected
    assert await closed_with(second) == CLOSE_UNAUTHENTICATED


async def test_forged_ticket_is_closed_with_4401(sockets, alice):
    forged = signing.dumps({"user": alice.pk, "nonce": "x"}, salt=tickets.SALT, key="not-our-key")
    communicator, _, _ = await sockets(path=f"/ws/notifications/?ticket={forged}")
    assert await closed_with(communicator) == CLOSE_UNAUTHENTICATED


async def test_expired_ticket_is_closed_with_4401(sockets, alice, settings):
    ticket = await sync_to_async(ticket_for)(alice)
    settings.NOTIFICATIONS_TICKET_TTL = -1  # every ticket is already past its age
    communicator, _, _ = await sockets(path=f"/ws/notifications/?ticket={ticket}")
    assert await closed_with(communicator) == CLOSE_UNAUTHENTICATED


async def test_ticket_ignores_the_session_cookie(sockets, alice, bob):
    """A bad ticket never falls back to the cookie a browser attached."""
    communicator, _, _ = await sockets(bob, path="/ws/notifications/?ticket=garbage")
    assert await closed_with(communicator) == CLOSE_UNAUTHENTICATED


def test_ticket_needs_login_and_csrf(alice):
    assert Client().post("/api/notifications/ticket/").status_code == 401
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post("/api/notifications/ticket/").status_code == 403


def test_starting_a_task_needs_login_and_csrf(alice):
    assert Client().post("/tasks/start/", {"task": "quick"}).status_code == 401
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post("/tasks/start/", {"task": "quick"}).status_code == 403


async def test_a_flood_of_frames_is_told_then_closed_with_4008(sockets, alice, settings):
    settings.NOTIFICATIONS_WS_BURST = 5
    settings.NOTIFICATIONS_WS_RATE = 1
    communicator, _, _ = await sockets(alice)
    await communicator.receive_json_from(timeout=5)
    for _ in range(6):
        await communicator.send_to(text_data='{"type": "read", "ids": [1]}')
    error = None
    for _ in range(6):
        message = await communicator.receive_json_from(timeout=5)
        if message.get("code") == "rate_limited":
            error = message
            break
    assert error == {"type": "error", "code": "rate_limited", "detail": error["detail"]}
    assert await closed_with(communicator) == CLOSE_RATE_LIMITED


def test_deploy_check_is_clean_with_the_documented_production_settings():
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "k" * 20 + "-production-like-secret-" + "q" * 30,
        "DJANGO_ALLOWED_HOSTS": "notify.example.com",
        "DJANGO_HTTPS": "true",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def bare_environment() -> dict[str, str]:
    """The environment of a machine where nobody set anything for this project."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    return env


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "manage.py", "check"],
        [sys.executable, "-m", "daphne", "-p", "0", "config.asgi:application"],
        [sys.executable, "-m", "config.serve", "-p", "0"],
        [sys.executable, "-m", "celery", "-A", "worker", "worker", "--pool", "solo"],
    ],
    ids=["check", "daphne", "serve", "celery"],
)
def test_with_no_environment_nothing_starts_and_the_error_names_the_key(command):
    result = subprocess.run(
        command, cwd=BASE_DIR, env=bare_environment(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr + result.stdout


def test_with_no_environment_debug_is_off():
    script = "from django.conf import settings; print(settings.DEBUG)"
    env = {**bare_environment(), "DJANGO_SECRET_KEY": "x" * 50}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr
