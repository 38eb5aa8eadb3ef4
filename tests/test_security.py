"""Who may connect and act: origins, tickets, CSRF, rate limits, production settings."""

import asyncio
import json
import os
import subprocess
import sys

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.core import signing
from django.test import Client

from notifications import notify, tickets
from notifications.consumers import (
    CLOSE_RATE_LIMITED,
    CLOSE_TOO_MANY_SOCKETS,
    CLOSE_UNAUTHENTICATED,
)
from tests.stack import BASE_DIR, Browserless
from tests.tab import Tab

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
    from config.asgi import application

    ticket = await sync_to_async(ticket_for)(alice)
    from channels.testing import WebsocketCommunicator

    communicator = WebsocketCommunicator(
        application,
        f"/ws/notifications/?ticket={ticket}",
        headers=[(b"host", b"127.0.0.1"), (b"origin", b"https://app.example.com")],
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


async def test_the_frame_budget_is_the_users_and_survives_a_reconnect(
    sockets, alice, settings, redis_client
):
    settings.NOTIFICATIONS_WS_BURST = 3
    settings.NOTIFICATIONS_WS_RATE = 0.01  # no token comes back during the test
    first, _, _ = await sockets(alice)
    await first.receive_json_from(timeout=5)
    for _ in range(3):
        await first.send_to(text_data="[]")
        assert (await first.receive_json_from(timeout=5))["code"] == "bad_frame"
    await first.disconnect()

    again, _, _ = await sockets(alice)
    await again.receive_json_from(timeout=5)
    await again.send_to(text_data="[]")
    assert (await again.receive_json_from(timeout=5))["code"] == "rate_limited"
    assert await closed_with(again) == CLOSE_RATE_LIMITED


async def test_another_users_frame_budget_is_their_own(sockets, alice, bob, settings, redis_client):
    settings.NOTIFICATIONS_WS_BURST = 1
    settings.NOTIFICATIONS_WS_RATE = 0.01
    for user in (alice, bob):
        communicator, _, _ = await sockets(user)
        await communicator.receive_json_from(timeout=5)
        await communicator.send_to(text_data="[]")
        assert (await communicator.receive_json_from(timeout=5))["code"] == "bad_frame"


async def hello_or_close(communicator) -> str | int:
    """ "hello" when the socket greets, or the code it is closed with."""
    output = await communicator.receive_output(timeout=5)
    if output["type"] == "websocket.close":
        return output["code"]
    return json.loads(output["text"])["type"]


async def test_sockets_beyond_the_cap_are_closed_with_4429(
    sockets, alice, bob, settings, redis_client
):
    settings.NOTIFICATIONS_MAX_SOCKETS_PER_USER = 3
    opened = []
    for _ in range(3):
        communicator, _, _ = await sockets(alice)
        assert await hello_or_close(communicator) == "hello"
        opened.append(communicator)
    extra, connected, _ = await sockets(alice)
    assert connected
    assert await hello_or_close(extra) == CLOSE_TOO_MANY_SOCKETS
    bobs, _, _ = await sockets(bob)
    assert await hello_or_close(bobs) == "hello"

    await opened[0].disconnect()
    replacement, _, _ = await sockets(alice)
    assert await hello_or_close(replacement) == "hello"


async def test_a_cookie_socket_from_a_sibling_subdomain_is_refused(sockets, alice, settings):
    settings.ALLOWED_HOSTS = [".example.com"]
    host = (b"host", b"app.example.com")
    _, connected, _ = await sockets(
        alice, origin=(b"origin", b"http://evil.example.com"), host=host
    )
    assert not connected
    same, connected, _ = await sockets(
        alice, origin=(b"origin", b"http://app.example.com"), host=host
    )
    assert connected
    assert await hello_or_close(same) == "hello"


async def test_a_cookie_socket_from_a_trusted_origin_is_accepted(sockets, alice, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://static.example.org"]
    communicator, connected, _ = await sockets(
        alice, origin=(b"origin", b"https://static.example.org")
    )
    assert connected
    assert await hello_or_close(communicator) == "hello"


async def test_a_cookie_socket_to_a_host_not_served_is_refused(sockets, alice):
    _, connected, _ = await sockets(
        alice, origin=(b"origin", b"http://evil.example"), host=(b"host", b"evil.example")
    )
    assert not connected


def handshake_status(url: str, origin: str, cookie: str) -> int:
    """101 when the server accepts the handshake, else the HTTP status it answers."""
    import websockets.sync.client

    try:
        with websockets.sync.client.connect(
            url, additional_headers={"Origin": origin, "Cookie": cookie}, open_timeout=10
        ):
            pass
    except websockets.InvalidStatus as refused:
        return refused.response.status_code
    return 101


@pytest.mark.e2e
@pytest.mark.parametrize(
    "origin",
    ["http://127.0.0.1:{other}", "https://127.0.0.1:{port}", "http://localhost:{port}"],
    ids=["other-port", "other-scheme", "other-allowed-host"],
)
def test_a_cookie_socket_from_another_origin_of_the_host_is_refused(stack, origin):
    session = Browserless(stack, "carol")
    port = stack.ports["daphne"]
    origin = origin.format(port=port, other=port + 1)
    assert handshake_status(stack.ws_url, origin, session.cookie_header) == 403
    assert handshake_status(stack.ws_url, stack.base_url, session.cookie_header) == 101


@pytest.mark.e2e
async def test_the_socket_cap_holds_across_daphne_processes(stack):
    if "daphne2" not in stack.processes:
        await asyncio.to_thread(stack.start_daphne, "daphne2")
    await asyncio.to_thread(stack.create_users, "cap-many")
    session = await asyncio.to_thread(Browserless, stack, "cap-many")
    tabs = [Tab(stack, session, ("daphne", "daphne2")[i % 2]) for i in range(20)]
    try:
        for tab in tabs:
            await tab.connect()
        extra = Tab(stack, session, "daphne2")
        with pytest.raises(websockets.ConnectionClosed) as refused:
            await extra.connect()
        assert refused.value.rcvd.code == CLOSE_TOO_MANY_SOCKETS
        await tabs.pop().close()
        tabs.append(extra)
        await extra.reconnect(attempts=10)  # as the browser would, once a tab is gone
    finally:
        for tab in tabs:
            await tab.close()


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
