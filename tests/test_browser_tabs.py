"""Several tabs of one person in a real Chromium: one pop-up per notification.

Every tab updates its badge and inbox; exactly one shows the toast (the
focused tab), or, when no tab is visible, one system notification. Also here:
collapsed toasts, action buttons, and the `seen` reports the tabs send.
"""

import json

import pytest

from tests import test_browser
from tests.stack import Stack, wait_for
from tests.test_browser import (
    CHROMIUM,
    badge,
    expect,
    inbox_item,
    open_inbox,
    open_tab,
    sign_in,
    toast,
    toasts,
)

# The same Chromium and per-test contexts as test_browser.py.
browser = test_browser.browser
context = test_browser.context

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"BROWSER TESTS NOT RUN: no {CHROMIUM}"),
]

# Headless Chromium reports every page visible (minimised windows, background
# targets and popups included) and has no DevTools switch for it, so this test
# switch stands in for the person leaving the site's tabs: it reports "hidden"
# and fires visibilitychange, as the browser would. System notifications are
# the browser's real ones, recorded as they are made; window.focus() is the
# real one, counted.
INIT_SCRIPT = """
(() => {
  let hidden = false;
  Object.defineProperty(Document.prototype, "visibilityState", {
    configurable: true, get: () => (hidden ? "hidden" : "visible"),
  });
  Object.defineProperty(Document.prototype, "hidden", { configurable: true, get: () => hidden });
  window.setHiddenForTest = (value) => {
    hidden = value;
    document.dispatchEvent(new Event("visibilitychange"));
  };
  // Calls to window.focus() are counted where they outlive a navigation.
  const realFocus = window.focus;
  window.focus = function () {
    sessionStorage.setItem("focusCalls", Number(sessionStorage.getItem("focusCalls")) + 1);
    return realFocus.call(this);
  };
  window.systemAlerts = [];
  const RealNotification = window.Notification;
  window.Notification = class extends RealNotification {
    constructor(title, options) {
      super(title, options);
      window.systemAlerts.push(this);
    }
  };
})();
"""


def send(stack: Stack, username: str, notices: list[dict]) -> None:
    """notify() once per dict of keyword arguments, from one process."""
    stack.manage(
        "shell",
        "-c",
        "import json\n"
        "from django.contrib.auth.models import User\n"
        "from notifications import notify\n"
        f"user = User.objects.get(username={username!r})\n"
        f"for notice in json.loads({json.dumps(json.dumps(notices))}):\n"
        "    notify(user, **notice)",
    )


def seen(stack: Stack, username: str) -> dict[str, bool]:
    return stack.shell_json(
        "from notifications.models import Notification\n"
        f"rows = Notification.objects.filter(recipient__username={username!r})\n"
        "result = {n.title: n.seen_at is not None for n in rows}"
    )


def shown_in(pages, title: str) -> list[int]:
    """Which of the pages (by index) show a toast with this title."""
    return [i for i, page in enumerate(pages) if toast(page, title).count()]


def test_four_tabs_show_one_toast_in_the_focused_tab_and_four_badges(stack, context):
    stack.create_users("tabs-four")
    pages = [sign_in(context, stack, "tabs-four")] + [open_tab(context, stack) for _ in range(3)]
    # Playwright tells every page it has the focus; without that, only the
    # tab in front has it: the person is in the third.
    for page in pages:
        context.new_cdp_session(page).send("Emulation.setFocusEmulationEnabled", {"enabled": False})
    pages[2].bring_to_front()
    assert [page.evaluate("document.hasFocus()") for page in pages] == [False, False, True, False]

    send(stack, "tabs-four", [{"title": "Backup finished"}])
    for page in pages:
        expect(badge(page)).to_have_text("1")
    expect(toast(pages[2], "Backup finished")).to_be_visible()

    # A later notice pops up once the tabs have agreed; a second toast of the
    # first would have been drawn long before.
    send(stack, "tabs-four", [{"title": "Backup verified"}])
    expect(toast(pages[2], "Backup verified")).to_be_visible()
    for page in pages:
        expect(badge(page)).to_have_text("2")
    assert shown_in(pages, "Backup finished") == [2]
    assert shown_in(pages, "Backup verified") == [2]
    for page in pages:  # and every tab lists both
        page.bring_to_front()
        inbox = open_inbox(page)
        expect(inbox.get_by_role("listitem")).to_have_count(2)

    # The tabs told the server the person saw them.
    wait_for(
        lambda: seen(stack, "tabs-four") == {"Backup finished": True, "Backup verified": True},
        30,
        "both reported seen",
    )


def test_when_no_tab_is_visible_one_system_notification_shows_and_a_click_opens_it(stack, browser):
    stack.create_users("tabs-hidden")
    # A context of its own: it holds the permission and the test switches.
    alerting = browser.new_context()
    errors: list[str] = []
    alerting.on("weberror", lambda error: errors.append(str(error.error)))
    try:
        alerting.grant_permissions(["notifications"], origin=stack.base_url)
        alerting.add_init_script(INIT_SCRIPT)
        pages = [sign_in(alerting, stack, "tabs-hidden")] + [open_tab(alerting, stack)]
        # Granted, but not switched on in the inbox: a hidden tab toasts instead.
        for page in pages:
            page.evaluate("setHiddenForTest(true)")
        send(stack, "tabs-hidden", [{"title": "Before alerts were on", "level": "warning"}])
        wait_for(lambda: len(shown_in(pages, "Before alerts were on")) == 1, 15, "one hidden toast")
        for page in pages:
            page.evaluate("setHiddenForTest(false)")
        switch = open_inbox(pages[0]).get_by_role("button", name="Turn on desktop alerts")
        switch.click()  # the permission is asked only from here
        expect(pages[0].get_by_role("button", name="Turn off desktop alerts")).to_be_visible()
        for page in pages:
            page.evaluate("setHiddenForTest(true)")

        send(stack, "tabs-hidden", [{"title": "Export ready", "url": "/reports/7"}])
        alerts = "systemAlerts.map((alert) => alert.title)"
        wait_for(
            lambda: sum(len(page.evaluate(alerts)) for page in pages) == 1,
            15,
            "a system notification",
        )
        send(stack, "tabs-hidden", [{"title": "Second export ready"}])
        wait_for(
            lambda: sum(len(page.evaluate(alerts)) for page in pages) == 2,
            15,
            "the second system notification",
        )
        shown = [page.evaluate(alerts) for page in pages]
        assert sorted(sum(shown, [])) == ["Export ready", "Second export ready"]
        assert len(shown_in(pages, "Before alerts were on")) == 1
        for page in pages:
            expect(toast(page, "Export ready")).to_have_count(0)  # not behind their back
            expect(badge(page)).to_have_text("3")

        owner = next(
            page for page, titles in zip(pages, shown, strict=True) if "Export ready" in titles
        )
        index = shown[pages.index(owner)].index("Export ready")
        owner.evaluate(f"systemAlerts[{index}].dispatchEvent(new Event('click'))")
        expect(owner).to_have_url(stack.base_url + "/reports/7")
        assert owner.evaluate("sessionStorage.getItem('focusCalls')") == "1"
        wait_for(lambda: seen(stack, "tabs-hidden")["Export ready"], 30, "reported seen")
    finally:
        alerting.close()
    assert not errors, f"JavaScript errors: {errors}"


def test_notices_with_one_collapse_key_share_a_toast_and_the_inbox_lists_each(stack, context):
    stack.create_users("tabs-collapse")
    page = sign_in(context, stack, "tabs-collapse")
    send(
        stack,
        "tabs-collapse",
        [{"title": f"Export {n} finished", "collapse_key": "exports"} for n in (1, 2, 3)]
        + [{"title": "Unrelated notice"}],
    )
    expect(toast(page, "Unrelated notice")).to_be_visible()
    expect(toasts(page)).to_have_count(2)
    collapsed = toast(page, "Export 3 finished")
    expect(collapsed).to_contain_text("(+2 more)")
    inbox = open_inbox(page)
    for n in (1, 2, 3):
        expect(inbox_item(inbox, f"Export {n} finished")).to_be_visible()
    expect(badge(page)).to_have_text("4")


def test_actions_are_buttons_and_a_hostile_url_is_no_link(stack, context):
    stack.create_users("tabs-actions")
    # Saved straight into the database, past notify()'s checks, as an old row
    # or a bug might have it.
    stack.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User\n"
        "from notifications.models import Notification\n"
        "user = User.objects.get(username='tabs-actions')\n"
        "Notification.objects.create(recipient=user, title='Hostile actions', actions=["
        "{'label': 'Run', 'url': 'javascript:alert(1)'},"
        "{'label': 'Elsewhere', 'url': '//evil.example/x'}])\n"
        "Notification.objects.create(recipient=user, title='Odd actions', actions='Download')\n"
        "Notification.objects.create(recipient=user, title='Half actions', actions=["
        "None, {'url': '/files/2'}])",
    )
    page = sign_in(context, stack, "tabs-actions")
    send(
        stack,
        "tabs-actions",
        [
            {
                "title": "Report ready",
                "actions": [
                    {"label": "Download", "url": "/files/1"},
                    {"label": "Retry", "url": "https://example.com/retry?id=1"},
                ],
            }
        ],
    )
    shown = toast(page, "Report ready")
    expect(shown.get_by_role("link", name="Download")).to_have_attribute(
        "href", stack.base_url + "/files/1"
    )
    expect(shown.get_by_role("link", name="Retry")).to_have_attribute(
        "href", "https://example.com/retry?id=1"
    )
    inbox = open_inbox(page)
    listed = inbox_item(inbox, "Report ready")
    expect(listed.get_by_role("link", name="Download")).to_have_attribute(
        "href", stack.base_url + "/files/1"
    )
    hostile = inbox_item(inbox, "Hostile actions")
    expect(hostile).to_contain_text("Run")
    expect(hostile).to_contain_text("Elsewhere")
    expect(hostile.get_by_role("link")).to_have_count(0)
    for title in ("Odd actions", "Half actions"):  # drawn without buttons, and no error
        expect(inbox_item(inbox, title).get_by_role("link")).to_have_count(0)


# --- tabs.js alone ----------------------------------------------------------

ELECTION_PAGE = """<!doctype html><title>Election</title>
<script src="/static/notifications/tabs.js"></script>
<script>
  window.shown = [];
  window.tabs = NotificationsTabs.elect("election-test");
  window.receive = (id) => tabs.decide(id, (rank) => shown.push([id, rank]));
</script>"""


def election_tab(context, stack: Stack, then: str = ""):
    """A same-origin page with tabs.js alone, which says "hello" to the others
    and runs `then` in the same script, before any answer can reach it."""
    page = context.new_page()
    page.goto(stack.base_url + "/no-widget-here/")  # a 404: the site's origin, no scripts
    head, tail = ELECTION_PAGE.rsplit("</script>", 1)
    page.set_content(f"{head}{then}</script>{tail}")
    return page


def shown_by(pages) -> list[list]:
    return [page.evaluate("shown") for page in pages]


def receive_together(pages, notification_id: int) -> None:
    """Each page receives the copy at one instant of the browser's clock, however
    long the calls from here take on a busy machine: "together" is then what the
    test says, not a race between these calls and the settle window."""
    at = pages[0].evaluate("Date.now()") + 1000
    for page in pages:
        page.evaluate(f"setTimeout(() => receive({notification_id}), {at} - Date.now())")


def test_a_tab_that_just_opened_does_not_take_itself_for_alone(stack, browser):
    elections = browser.new_context()
    elections.add_init_script(INIT_SCRIPT)
    try:
        older = election_tab(elections, stack)
        # The older tab gets notification 1 the moment the new tab says hello;
        # the new one gets it before it can have heard anybody answer.
        older.evaluate(
            """() => {
                 new BroadcastChannel("election-test").onmessage = ({ data }) => {
                   if (data.kind === "hello") receive(1);
                 };
               }"""
        )
        newer = election_tab(elections, stack, then="receive(1);")
        pages = [older, newer]
        wait_for(lambda: sum(map(len, shown_by(pages))) >= 1, 10, "one shows notification 1")
        # Both decide one settle window (300 ms) after their claims: twice that
        # later, a second show would have happened.
        newer.evaluate("new Promise((done) => setTimeout(done, 600))")
        assert shown_by(pages) == [[[1, 2]], []]
    finally:
        elections.close()


def test_tabs_agree_on_one_whatever_order_and_lateness_the_copies_arrive_in(stack, browser):
    elections = browser.new_context()
    elections.add_init_script(INIT_SCRIPT)
    try:
        first, second, third = (election_tab(elections, stack) for _ in range(3))
        pages = [first, second, third]
        # Together: one shows it, the oldest (a tie on rank).
        receive_together(pages, 1)
        wait_for(lambda: sum(map(len, shown_by(pages))) == 1, 10, "one shows notification 1")

        # Two hidden tabs decide notification 2 between them; the copy reaches
        # the visible third long after, and though its claim would be the best,
        # it stays out.
        first.evaluate("setHiddenForTest(true)")
        second.evaluate("setHiddenForTest(true)")
        receive_together([first, second], 2)
        wait_for(lambda: sum(map(len, shown_by(pages))) == 2, 10, "one shows notification 2")
        third.evaluate("receive(2)")
        # When the copies come together, the visible tab wins over the hidden,
        # older ones, though it claims last.
        receive_together(pages, 3)
        wait_for(lambda: sum(map(len, shown_by(pages))) >= 3, 10, "one shows notification 3")
        assert shown_by(pages) == [[[1, 2], [2, 0]], [], [[3, 2]]]
    finally:
        elections.close()
