"""The browser experience in a real Chromium, checked as a person would see it.

Each test signs in as its own user, so no test sees another's notifications.
Playwright drives Debian's Chromium (/usr/bin/chromium); where there is none,
every test here is skipped with a reason that says so. A failing test leaves a
screenshot of each of its pages under test-artifacts/screenshots/.
"""

import http.server
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.stack import ARTIFACTS, PASSWORD, Browserless, Stack, running

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="BROWSER TESTS NOT RUN: Playwright is missing (pip install -r requirements/dev.txt)",
)
Browser, BrowserContext, Page = sync_api.Browser, sync_api.BrowserContext, sync_api.Page
expect = sync_api.expect

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    # Decided before any fixture starts a stack that no browser would use.
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"BROWSER TESTS NOT RUN: no Chromium at {CHROMIUM}. "
        "Install Debian's `chromium` package (.ci/run does) to run them.",
    ),
]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1200, "height": 760}
SCREENSHOTS = ARTIFACTS / "screenshots"
README_SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "screenshot.png"
# The long demo task takes about five seconds on an idle machine.
TASK_TIMEOUT = 30_000

expect.set_options(timeout=10_000)


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Debian Chromium; the test is skipped where there is none."""
    if not CHROMIUM.exists():
        pytest.skip(f"BROWSER TESTS NOT RUN: no Chromium at {CHROMIUM}.")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole module; each test gets a fresh context."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)  # evidence of an earlier run misleads
    with chromium() as launched:
        yield launched


@pytest.fixture
def context(browser: Browser, request: pytest.FixtureRequest) -> Iterator[BrowserContext]:
    """A fresh browser profile (cookies, storage) that keeps evidence of a failure."""
    with evidence_kept(browser, request) as context:
        yield context


@contextmanager
def evidence_kept(
    browser: Browser, request: pytest.FixtureRequest, **options: Any
) -> Iterator[BrowserContext]:
    """A new context (with `options` for new_context) whose pages are captured
    when the test failed, and which fails the test on a JavaScript error."""
    context = browser.new_context(viewport=VIEWPORT, **options)
    console: list[str] = []
    page_errors: list[str] = []
    context.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    context.on("weberror", lambda error: page_errors.append(str(error.error)))
    yield context
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for number, page in enumerate(context.pages, start=1):
            page.screenshot(path=SCREENSHOTS / f"{request.node.name}-page{number}.png")
        (SCREENSHOTS / f"{request.node.name}-console.txt").write_text("\n".join(console))
    context.close()
    # An uncaught exception in the client is a bug even when the page looked right.
    assert not page_errors, f"JavaScript errors: {page_errors}"


# --- What a person does and sees ------------------------------------------


def sign_in(context: BrowserContext, stack: Stack, username: str) -> Page:
    """Open the demo page, get sent to the login form, sign in, and wait until live."""
    page = context.new_page()
    page.goto(stack.base_url + "/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Background jobs")).to_be_visible()
    expect(status(page)).to_have_attribute("data-state", "connected")
    return page


def open_tab(context: BrowserContext, stack: Stack) -> Page:
    """Another tab of an already signed-in browser, once it is live."""
    page = context.new_page()
    page.goto(stack.base_url + "/")
    expect(status(page)).to_have_attribute("data-state", "connected")
    return page


def status(page: Page):
    return page.locator("[data-nw-status]")


def toasts(page: Page):
    return page.get_by_role("region", name="New notifications").locator(".nw-toast")


def toast(page: Page, title: str):
    return toasts(page).filter(has_text=title)


def bell(page: Page):
    return page.get_by_role("button", name=re.compile(r"^Notifications"))


def badge(page: Page):
    return page.locator("[data-nw-badge]")


def open_inbox(page: Page):
    bell(page).click()
    inbox = page.get_by_role("region", name="Notifications", exact=True)
    expect(inbox).to_be_visible()
    return inbox


def inbox_item(inbox, title: str):
    return inbox.get_by_role("listitem").filter(has_text=title)


def percent_shown(page: Page, title: str) -> float:
    """Wait until the task's bar is part-way (0 < p < 100); return that percentage.

    requestAnimationFrame polling sees every frame, so the assertion cannot
    miss a step of the task, which lasts under a second.
    """
    handle = page.wait_for_function(
        """title => {
            const bar = document.querySelector(`progress[aria-label="${title}"]`);
            return bar && bar.value > 0 && bar.value < 100 && bar.value;
        }""",
        arg=title,
        timeout=TASK_TIMEOUT,
    )
    return handle.json_value()


def notify(stack: Stack, username: str, *titles: str) -> None:
    """Send notices the way an operator does: `manage.py notify`, one per title."""
    for title in titles:
        stack.manage("notify", title, "--user", username)


def notify_in_one_process(stack: Stack, username: str, titles: list[str]) -> None:
    """Several notices from one process, quicker than one command each."""
    stack.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User\n"
        "from notifications import notify\n"
        f"user = User.objects.get(username={username!r})\n"
        f"for title in {json.dumps(titles)}:\n"
        "    notify(user, title)",
    )


# --- Tasks: progress and toasts -------------------------------------------


def test_long_task_shows_a_moving_progress_bar_then_a_success_toast(stack, context):
    page = sign_in(context, stack, "alice")
    page.get_by_role("button", name="Generate report").click()

    bar = page.get_by_role("progressbar", name="Quarterly sales report")
    expect(bar).to_be_visible()
    first = percent_shown(page, "Quarterly sales report")
    page.wait_for_function(
        """([title, before]) => {
            const bar = document.querySelector(`progress[aria-label="${title}"]`);
            return bar && bar.value > before;
        }""",
        arg=["Quarterly sales report", first],
        timeout=TASK_TIMEOUT,
    )

    done = toast(page, "Quarterly sales report finished")
    expect(done).to_be_visible(timeout=TASK_TIMEOUT)
    expect(done).to_contain_text("6 regions summarised")
    expect(bar).to_have_count(0)  # the toast replaced the bar
    expect(badge(page)).to_have_text("1")


def test_a_reload_brings_a_running_tasks_bar_back_at_once(stack, context):
    page = sign_in(context, stack, "bob")
    # The report job, slowed so that its steps are further apart than the
    # second the bar has to come back in.
    task_id = stack.send_task(
        "tasks.tasks.generate_report", user_id=stack.user_ids["bob"], step_seconds=3
    )
    bar = page.locator(f'.nw-progress[data-task="{task_id}"] progress')
    shown = page.wait_for_function(
        """bar => bar && bar.value > 0 && bar.value""",
        arg=bar.element_handle(timeout=TASK_TIMEOUT),
        timeout=TASK_TIMEOUT,
    ).json_value()

    page.reload()
    expect(bar).to_be_visible(timeout=1000)
    expect(bar).to_have_js_property("value", shown, timeout=1000)
    # Leave nothing running for whoever uses this stack next.
    page.locator(f'.nw-progress[data-task="{task_id}"]').get_by_role(
        "button", name="Cancel"
    ).click()
    expect(toast(page, "Quarterly sales report cancelled")).to_be_visible(timeout=TASK_TIMEOUT)
    expect(bar).to_have_count(0)


def test_a_bar_with_no_report_for_a_while_says_the_task_is_still_working(stack, context):
    # A task that last reported a minute ago, as its worker left it.
    stack.manage(
        "shell",
        "-c",
        "from datetime import UTC, datetime, timedelta\n"
        "from notifications import progress_state\n"
        "at = (datetime.now(UTC) - timedelta(seconds=60)).isoformat()\n"
        f"progress_state.remember({stack.user_ids['carol']}, 'quiet-task', 40, 'Working', at)",
    )
    page = sign_in(context, stack, "carol")
    row = page.locator('.nw-progress[data-task="quiet-task"]')
    expect(row.locator(".nw-progress-message")).to_have_text("Still working…")
    expect(row.locator(".nw-progress-percent")).to_have_text("40%")
    stack.manage(
        "shell",
        "-c",
        "from notifications import progress_state\n"
        f"progress_state.forget({stack.user_ids['carol']}, 'quiet-task')",
    )


def test_error_toast_stays_while_good_news_fades_and_the_keyboard_dismisses_it(stack, context):
    # The page's clock stands still until the test moves it: "fades after a
    # few seconds" is checked without waiting, and nothing fades too early.
    context.clock.install()
    page = sign_in(context, stack, "bob")
    page.clock.pause_at(time.time() + 1)
    page.get_by_role("button", name="Warm cache").click()
    page.get_by_role("button", name="Import contacts").click()

    success = toast(page, "Cache warm-up finished")
    failure = toast(page, "Contact import failed")
    expect(success).to_be_visible()
    expect(failure).to_be_visible()
    expect(failure).to_contain_text(
        "Nothing was imported. Row 3: 'grace@' is not a valid e-mail address."
    )
    expect(failure).to_have_attribute("role", "alert")

    page.mouse.move(0, 0)  # a toast under the pointer is held
    page.clock.run_for(10_000)
    expect(success).to_have_count(0)
    expect(failure).to_be_visible()

    # A flood of notices shows only a handful, and never pushes out the error.
    notify_in_one_process(stack, "bob", [f"Notice {i}" for i in range(1, 7)])
    expect(toast(page, "Notice 6")).to_be_visible()
    expect(toasts(page)).to_have_count(4)
    expect(failure).to_be_visible()

    failure.get_by_role("button", name="Dismiss").focus()
    page.keyboard.press("Escape")
    expect(failure).to_have_count(0)
    expect(toasts(page)).to_have_count(3)


def test_notification_markup_is_shown_as_text_and_runs_nothing(stack, context):
    page = sign_in(context, stack, "carol")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    hostile = "<img src=x onerror=alert(1)>"
    stack.manage(
        "notify",
        hostile,
        "--user",
        "carol",
        "--body",
        "<script>alert(2)</script>",
    )
    # Each toast is checked before the next command: a toast leaves after 6 s,
    # and starting manage.py can take longer than that on a loaded machine.
    shown = toast(page, hostile)
    expect(shown).to_be_visible()
    expect(shown).to_contain_text("<script>alert(2)</script>")
    expect(shown.get_by_role("link")).to_have_count(0)  # no url, no link

    stack.manage("notify", "Report #42 is ready", "--user", "carol", "--url", "/reports/42")
    safe = toast(page, "Report #42 is ready").get_by_role("link", name="Report #42 is ready")
    expect(safe).to_have_attribute("href", stack.base_url + "/reports/42")

    inbox = open_inbox(page)
    expect(inbox_item(inbox, hostile)).to_be_visible()
    assert page.locator("[data-notifications] img, [data-notifications] script").count() == 0
    assert dialogs == []


# --- The inbox across tabs and visits ---------------------------------------


def test_marking_read_in_one_tab_updates_the_badge_in_the_other(stack, context):
    first = sign_in(context, stack, "erin")
    second = open_tab(context, stack)
    notify(stack, "erin", "Invoice #1042 paid", "New comment on the Q3 plan")
    for tab in (first, second):
        expect(badge(tab)).to_have_text("2")

    first.bring_to_front()  # the person switches back to the first tab
    inbox = open_inbox(first)
    inbox_item(inbox, "Invoice #1042 paid").get_by_role("button", name="Mark as read").click()
    expect(badge(second)).to_have_text("1")
    expect(bell(second)).to_have_accessible_name("Notifications, 1 unread")

    inbox.get_by_role("button", name="Mark all as read").click()
    expect(badge(second)).to_be_hidden()
    expect(bell(second)).to_have_accessible_name("Notifications")
    second.bring_to_front()
    inbox_of_second = open_inbox(second)
    expect(inbox_of_second.get_by_role("button", name="Mark as read")).to_have_count(0)


def test_notices_sent_while_the_page_was_closed_are_there_when_it_reopens(stack, context):
    page = sign_in(context, stack, "frank")
    page.close()
    notify(stack, "frank", "Deploy at 18:00", "Weekly digest is ready")

    page = open_tab(context, stack)
    expect(badge(page)).to_have_text("2")
    # Resumed from the last id this browser saw: the missed ones pop up too.
    expect(toast(page, "Deploy at 18:00")).to_be_visible()
    expect(toast(page, "Weekly digest is ready")).to_be_visible()
    inbox = open_inbox(page)
    for title in ("Deploy at 18:00", "Weekly digest is ready"):
        item = inbox_item(inbox, title)
        expect(item.get_by_role("button", name="Mark as read")).to_be_visible()  # unread


# --- Losing the connection ----------------------------------------------------


class Elsewhere(http.server.ThreadingHTTPServer):
    """A site on another origin (another port) that serves one page, set by a test."""

    page = ""

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class ServeThePage(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.server.page.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass  # the test says what went wrong


@pytest.fixture(scope="module")
def elsewhere() -> Iterator[Elsewhere]:
    # A real server, not a page Playwright makes up: Chromium lets only a page
    # that came from this machine open a socket to it.
    server = Elsewhere(("127.0.0.1", 0), ServeThePage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory, elsewhere) -> Iterator[Stack]:
    """A stack of this module's own, whose Daphne the tests stop and restart,
    and which takes ticket sockets from `elsewhere`."""
    workdir = tmp_path_factory.mktemp("browser-stack")
    env = {"NOTIFICATIONS_TICKET_ORIGINS": elsewhere.origin}
    with running(workdir, "browser-stack", env=env) as stack:
        yield stack


def restart_daphne(stack: Stack, while_down=lambda: None) -> None:
    stack.stop_process("daphne")
    while_down()
    stack.start_daphne()


def test_a_notice_sent_while_the_server_was_down_arrives_once_after_reconnecting(
    own_stack, context
):
    page = sign_in(context, own_stack, "alice")

    def send_while_down() -> None:
        expect(status(page)).to_have_text("Reconnecting…")
        notify(own_stack, "alice", "Sent while you were away")

    restart_daphne(own_stack, send_while_down)
    expect(status(page)).to_have_attribute("data-state", "connected", timeout=TASK_TIMEOUT)
    expect(toast(page, "Sent while you were away")).to_be_visible()
    expect(badge(page)).to_have_text("1")

    # Live notices flow again; by the time one arrives, a duplicate of the
    # replayed notice would have come before it.
    notify(own_stack, "alice", "Live again")
    expect(toast(page, "Live again")).to_be_visible()
    expect(toast(page, "Sent while you were away")).to_have_count(1)
    inbox = open_inbox(page)
    expect(inbox_item(inbox, "Sent while you were away")).to_have_count(1)
    expect(badge(page)).to_have_text("2")


def test_connection_state_shows_offline_then_live_again(own_stack, context):
    page = sign_in(context, own_stack, "carol")
    expect(status(page)).to_have_text("Live")
    context.set_offline(True)
    expect(status(page)).to_have_text("Offline")
    context.set_offline(False)
    expect(status(page)).to_have_attribute("data-state", "connected")
    notify(own_stack, "carol", "Back online")
    expect(toast(page, "Back online")).to_be_visible()


def test_an_expired_session_sends_the_person_to_the_login_page(own_stack, context):
    page = sign_in(context, own_stack, "bob")
    context.clear_cookies()  # the session is gone, as after a logout elsewhere
    restart_daphne(own_stack)
    expect(page).to_have_url(own_stack.base_url + "/accounts/login/?next=%2F", timeout=TASK_TIMEOUT)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


# --- The transport without the widget ---------------------------------------

# A page of somebody's own: transport.js and a few lines, no widget.
BARE_PAGE = """<!doctype html><title>Bare page</title>
<script src="TRANSPORT"></script>
<script>
  window.received = [];
  window.states = [];
  window.connection = NotificationsTransport.connect({
    OPTIONS
    onMessage: (message) => received.push(message),
    onState: (state) => states.push(state),
  });
</script>"""


def bare_page(transport: str, options: str = "") -> str:
    return BARE_PAGE.replace("TRANSPORT", transport).replace("OPTIONS", options)


def wait_for_hello(page: Page) -> None:
    page.wait_for_function("() => received.some((message) => message.type === 'hello')")


def received_notification(page: Page, title: str) -> dict:
    handle = page.wait_for_function(
        "title => received.find((m) => m.type === 'notification' && m.title === title)",
        arg=title,
    )
    return handle.json_value()


def test_the_transport_alone_hands_notices_to_the_page(own_stack, context):
    sign_in(context, own_stack, "dave").close()  # the bare page's socket sends this cookie
    page = context.new_page()
    page.goto(own_stack.base_url + "/no-widget-here/")  # a 404: the site's origin, no scripts
    page.set_content(bare_page("/static/notifications/transport.js"))
    wait_for_hello(page)
    notify(own_stack, "dave", "Straight to onMessage")
    notice = received_notification(page, "Straight to onMessage")
    assert page.evaluate("states") == ["connecting", "connected"]

    # A read frame on the same socket; the server tells every tab, this one too.
    assert page.evaluate("id => connection.markRead([id])", notice["id"]) is True
    page.wait_for_function(
        "id => received.some((m) => m.type === 'read' && m.ids.includes(id) && m.unread === 0)",
        arg=notice["id"],
    )


def test_a_page_on_another_origin_connects_with_a_ticket(own_stack, elsewhere, context):
    # This browser holds no session for the site: the ticket is the credential.
    account = Browserless(own_stack, "erin")
    minted: list[str] = []

    def fresh_ticket() -> str:
        with account.post("/api/notifications/ticket/", {}) as response:
            minted.append(json.load(response)["ticket"])
        return minted[-1]

    elsewhere.page = bare_page(
        own_stack.base_url + "/static/notifications/transport.js",
        f"url: {json.dumps(own_stack.ws_url)}, ticket: () => freshTicket(),",
    )
    page = context.new_page()
    page.expose_function("freshTicket", fresh_ticket)
    page.goto(elsewhere.origin + "/")
    wait_for_hello(page)
    notify(own_stack, "erin", "Across origins")
    received_notification(page, "Across origins")
    assert len(minted) == 1


# --- The README's picture -----------------------------------------------------


def test_demo_page_shows_progress_a_toast_and_the_inbox(stack, context):
    """Takes the README's screenshot; UPDATE_SCREENSHOT=1 writes docs/screenshot.png."""
    stack.manage(
        "notify",
        "Deploy at 18:00",
        "--user",
        "dave",
        "--level",
        "warning",
        "--body",
        "Expect a short blip.",
    )
    stack.manage("notify", "Weekly digest is ready", "--user", "dave", "--url", "/digest/")
    page = sign_in(context, stack, "dave")
    page.get_by_role("button", name="Warm cache").click()
    expect(toast(page, "Cache warm-up finished")).to_be_visible()
    page.get_by_role("button", name="Generate report").click()
    page.wait_for_function(
        """() => {
            const bar = document.querySelector('progress[aria-label="Quarterly sales report"]');
            return bar && bar.value >= 50 && bar.value < 100;
        }""",
        timeout=TASK_TIMEOUT,
    )
    inbox = open_inbox(page)
    expect(inbox.get_by_role("listitem")).to_have_count(3)
    expect(badge(page)).to_have_text("3")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    picture = SCREENSHOTS / "demo.png"
    page.screenshot(path=picture)
    if os.getenv("UPDATE_SCREENSHOT"):
        README_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(picture, README_SCREENSHOT)
    # Leave nothing running for whoever uses this stack next.
    expect(toast(page, "Quarterly sales report finished")).to_be_visible(timeout=TASK_TIMEOUT)


@pytest.mark.parametrize("width", [320, 390])
def test_the_open_inbox_fits_a_phone_screen(stack, context, width):
    page = sign_in(context, stack, "erin")
    page.set_viewport_size({"width": width, "height": 740})
    title = f"Quarterly export for the whole northern region finished without errors ({width})"
    stack.manage("notify", title, "--user", "erin", "--body", "All 12 files are ready.")
    expect(toast(page, title)).to_be_visible()
    inbox = open_inbox(page)
    item = inbox_item(inbox, title)
    expect(item).to_be_visible()
    for box in (inbox.bounding_box(), item.bounding_box()):
        assert box["x"] >= 0, f"runs off the left edge at {width} px: {box}"
        assert box["x"] + box["width"] <= width, f"runs off the right edge at {width} px: {box}"
    # The whole title shows, wrapped rather than cut.
    shown = item.locator(".nw-item-title")
    assert shown.evaluate("e => e.scrollWidth <= e.clientWidth && e.scrollHeight <= e.clientHeight")
    assert shown.inner_text() == title


def test_cancel_on_a_progress_bar_stops_the_job_in_every_tab(stack, context):
    stack.create_users("canceller")  # a user of its own: the other tests' users are taken
    page = sign_in(context, stack, "canceller")
    other = open_tab(context, stack)
    page.get_by_role("button", name="Start long job").click()
    bar = page.locator(".nw-progress").filter(has_text="Long job")
    elsewhere = other.locator(".nw-progress")
    expect(bar.locator(".nw-progress-message")).to_have_text("Working", timeout=TASK_TIMEOUT)
    expect(elsewhere).to_have_count(1)
    bar.get_by_role("button", name="Cancel").click()
    # One tab pops the notice up (both have the focus here: the older one);
    # the bars go in both.
    expect(toast(page, "Long job cancelled")).to_be_visible()
    expect(toast(other, "Long job cancelled")).to_have_count(0)
    expect(page.locator(".nw-progress")).to_have_count(0)
    expect(elsewhere).to_have_count(0)
