"""The service behind a real nginx running the example config of deploy/nginx/.

Two deployments, each a stack whose Daphne is `config.serve --workers 2`:
plain http, as compose.yaml runs it, and https ending at nginx with
DJANGO_HTTPS=true, as production runs. Clients are real: urllib for the
login, websockets for the sockets, and one Chromium.

The socket timeout is not proved by waiting out nginx's default 60 s: the
same config with the timeout cut to 2 s shows that the directive is the one
governing the socket (nginx closes it, and says why), while a socket on the
shipped config, idle at least as long, still gets its notification.
"""

import asyncio
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from tests.proxy import NGINX, Front, self_signed
from tests.stack import BASE_DIR, Browserless, running

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    # Decided before any fixture starts a stack that no nginx would front.
    pytest.mark.skipif(
        not NGINX.exists(),
        reason=f"PROXY TESTS NOT RUN: no nginx at {NGINX}. "
        "Install Debian's `nginx` package (.ci/run does) to run them.",
    ),
]

SOCKET_PATH = "/ws/notifications/"


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Iterator[Front]:
    """Plain http through nginx's port-80 server."""
    workdir = tmp_path_factory.mktemp("proxy")
    with running(workdir, "proxy", workers=2) as stack, Front(stack, "nginx") as front:
        yield front


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("certificate"))


@pytest.fixture(scope="module")
def https(tmp_path_factory, certificate) -> Iterator[Front]:
    """TLS ends at nginx (notify-tls.conf); Django runs with DJANGO_HTTPS=true."""
    workdir = tmp_path_factory.mktemp("proxy-https")
    options = {"workers": 2, "env": {"DJANGO_HTTPS": "true"}}
    with (
        running(workdir, "proxy-https", **options) as stack,
        Front(stack, "nginx", certificate=certificate) as front,
    ):
        yield front


@pytest.fixture(scope="module")
def trusting(certificate) -> ssl.SSLContext:
    """A client that trusts the test certificate, and verifies it as any other."""
    return ssl.create_default_context(cafile=certificate[0])


def socket_url(base_url: str) -> str:
    return base_url.replace("http", "ws", 1) + SOCKET_PATH


async def open_socket(url: str, origin: str, session: Browserless | None = None, **options):
    """A WebSocket as a browser opens it: with an Origin and the session cookie."""
    headers = {"Origin": origin, **options.pop("headers", {})}
    if session is not None:
        headers["Cookie"] = session.cookie_header
    return await websockets.connect(url, additional_headers=headers, max_queue=None, **options)


async def next_message(socket, timeout: float = 10) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), timeout))


async def notified(front: Front, socket, username: str, title: str) -> dict:
    """Send `title` to `username` as an operator does; the message the socket gets."""
    await asyncio.to_thread(front.stack.manage, "notify", title, "--user", username)
    message = await next_message(socket, timeout=30)
    assert message["type"] == "notification", message
    assert message["title"] == title
    return message


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """Hands a redirect back as an HTTPError instead of following it."""

    def redirect_request(self, *args, **kwargs):
        return None


async def refused(url: str, origin: str, **options) -> int:
    """The HTTP status a handshake from `origin` is refused with."""
    with pytest.raises(websockets.InvalidStatus) as refusal:
        await open_socket(url, origin, **options)
    return refusal.value.response.status_code


# --- Plain http, as compose.yaml runs it ---------------------------------


async def test_sign_in_and_a_socket_through_nginx_get_a_notification(plain):
    session = await asyncio.to_thread(Browserless, plain.stack, "alice", base_url=plain.http_url)
    socket = await open_socket(socket_url(plain.http_url), plain.http_url, session)
    try:
        hello = await next_message(socket)
        assert hello["type"] == "hello"
        await notified(plain, socket, "alice", "Through nginx")
    finally:
        await socket.close()


async def test_an_origin_of_another_scheme_host_or_port_is_refused_at_the_handshake(plain):
    session = await asyncio.to_thread(Browserless, plain.stack, "bob", base_url=plain.http_url)
    url = socket_url(plain.http_url)
    for origin in (
        f"https://127.0.0.1:{plain.port}",  # the scheme: nginx said http
        plain.stack.http_url(),  # Daphne's own port, behind nginx
        f"http://localhost:{plain.port}",  # another host name for the same machine
    ):
        assert await refused(url, origin, session=session) == 403, origin


def test_static_files_come_from_disk_when_collected_and_from_daphne_otherwise(plain):
    (plain.static / "collected.txt").write_text("served by nginx")
    with urllib.request.urlopen(plain.http_url + "/static/collected.txt", timeout=10) as answer:
        assert answer.read() == b"served by nginx"  # Daphne has no such file
    shipped = BASE_DIR / "notifications/static/notifications/transport.js"
    url = plain.http_url + "/static/notifications/transport.js"
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.read() == shipped.read_bytes()


async def test_the_socket_timeout_in_the_config_is_the_one_that_governs_the_socket(plain):
    session = await asyncio.to_thread(Browserless, plain.stack, "carol", base_url=plain.http_url)
    short = Front(
        plain.stack, "nginx-short", locations={"proxy_read_timeout 1h;": "proxy_read_timeout 2s;"}
    )
    # No pings from the client either: the sockets are silent both ways.
    quiet = {"ping_interval": None}
    with short:
        shipped = await open_socket(socket_url(plain.http_url), plain.http_url, session, **quiet)
        cut = await open_socket(socket_url(short.http_url), short.http_url, session, **quiet)
        try:
            assert (await next_message(shipped))["type"] == "hello"
            assert (await next_message(cut))["type"] == "hello"
            await asyncio.wait_for(cut.wait_closed(), 15)
            assert "upstream timed out" in short.error_log()
            # Quiet for longer than the socket nginx just cut, and still there.
            await notified(plain, shipped, "carol", "Still here")
        finally:
            await shipped.close()
            await cut.close()


# --- https ending at nginx, DJANGO_HTTPS=true -----------------------------


async def test_behind_tls_the_https_origin_is_accepted_and_the_http_one_refused(https, trusting):
    session = await asyncio.to_thread(
        Browserless, https.stack, "alice", base_url=https.https_url, tls=trusting
    )
    url = socket_url(https.https_url)
    http_origin = https.https_url.replace("https", "http", 1)
    assert await refused(url, http_origin, session=session, ssl=trusting) == 403
    socket = await open_socket(url, https.https_url, session, ssl=trusting)
    try:
        assert (await next_message(socket))["type"] == "hello"
        await notified(https, socket, "alice", "Over wss")
    finally:
        await socket.close()


async def test_a_client_cannot_claim_https_past_nginx(https):
    """Django believes X-Forwarded-Proto, so nginx must set it, not pass it on."""
    claim = {"headers": {"X-Forwarded-Proto": "https"}}
    # Straight to Daphne, the claim is believed...
    daphne = https.stack.http_url().replace("http", "https", 1)
    direct = await open_socket(socket_url(https.stack.http_url()), daphne, **claim)
    await direct.close()
    # ...through nginx's plain server it is replaced with the truth.
    origin = f"https://127.0.0.1:{https.port}"
    assert await refused(socket_url(https.http_url), origin, **claim) == 403

    # And plain http is sent to https, by Django, which was told http.
    opener = urllib.request.build_opener(NoRedirects)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(https.http_url + "/accounts/login/", timeout=10)
    assert redirect.value.code == 301
    assert redirect.value.headers["Location"].startswith("https://127.0.0.1:")


# --- A real browser over https --------------------------------------------


@pytest.fixture
def chromium():
    """tests/test_browser.py's headless Chromium and helpers, taking the test certificate."""
    browser_tests = pytest.importorskip("tests.test_browser")  # skips there without Playwright
    if not browser_tests.CHROMIUM.exists():
        pytest.skip(f"BROWSER TESTS NOT RUN: no Chromium at {browser_tests.CHROMIUM}")
    with browser_tests.sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(browser_tests.CHROMIUM),
            headless=True,
            args=[*browser_tests.CHROMIUM_ARGS, "--ignore-certificate-errors"],
        )
        yield browser_tests, browser
        browser.close()


@pytest.mark.browser
def test_chromium_signs_in_over_https_and_a_task_it_starts_ends_in_a_toast(https, chromium):
    browser_tests, browser = chromium
    context = browser.new_context()
    errors: list[str] = []
    context.on("weberror", lambda error: errors.append(str(error.error)))
    # The login form, the socket (wss), the task's POST (CSRF over https)
    # and the toast all go through nginx.
    page = browser_tests.sign_in(context, https, "dave")
    assert page.url.startswith(https.https_url)
    page.get_by_role("button", name="Warm cache").click()
    toast = browser_tests.toast(page, "Cache warm-up finished")
    browser_tests.expect(toast).to_be_visible(timeout=browser_tests.TASK_TIMEOUT)
    context.close()
    assert not errors, f"JavaScript errors: {errors}"
