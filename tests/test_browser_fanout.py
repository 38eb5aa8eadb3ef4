"""The demo's fan-out job in a real Chromium: one bar that reaches 100%, one toast.

Kept beside test_browser.py (whose browser, profile and page helpers it uses)
so that the two files can change apart.
"""

from tests import test_browser
from tests.test_browser import TASK_TIMEOUT, expect, open_inbox, sign_in, toast, toasts

pytestmark = test_browser.pytestmark
browser, context = test_browser.browser, test_browser.context  # fixtures, shared

TITLE = "Export 12 monthly statements"

# Every percentage the job's bar shows, in order: a MutationObserver runs after
# each WebSocket message is handled, before the final notice can remove the bar.
RECORD_PERCENTS = """title => {
    window.percentsShown = [];
    new MutationObserver(() => {
        for (const row of document.querySelectorAll(".nw-progress")) {
            const percent = row.querySelector(".nw-progress-percent").textContent;
            const seen = window.percentsShown;
            const mine = row.querySelector(".nw-progress-title").textContent === title;
            if (mine && percent && seen[seen.length - 1] !== percent) seen.push(percent);
        }
    }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def test_exporting_statements_shows_one_bar_up_to_100_then_one_toast(stack, context):
    stack.create_users("statements_fan")  # a user of its own on the shared stack
    page = sign_in(context, stack, "statements_fan")
    page.evaluate(RECORD_PERCENTS, TITLE)
    page.get_by_role("button", name="Export statements").click()

    expect(page.get_by_role("progressbar", name=TITLE)).to_be_visible()
    done = toast(page, f"{TITLE} done")
    expect(done).to_be_visible(timeout=TASK_TIMEOUT)
    expect(page.locator(".nw-progress")).to_have_count(0)  # the toast replaced the bar

    shown = page.evaluate("window.percentsShown")
    assert "100%" in shown, shown
    assert len(shown) > 12, shown  # it rose part by part
    # One notice for the whole job: one toast, one inbox entry.
    inbox = open_inbox(page)
    expect(inbox.get_by_role("listitem")).to_have_count(1)
    expect(toasts(page)).to_have_count(1)
    assert [n["title"] for n in stack.notifications("statements_fan")] == [f"{TITLE} done"]
