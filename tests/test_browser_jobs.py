"""Jobs seen whole in a real Chromium: the demo's fan-out job (one bar up to 100%,
one toast), and a bar whose worker is gone (waiting for a worker, then resumed).

Kept beside test_browser.py (whose browser, profile and page helpers it uses)
so that the two files can change apart.
"""

from tests import test_browser
from tests.stack import Stack
from tests.test_browser import (
    TASK_TIMEOUT,
    expect,
    open_inbox,
    open_tab,
    sign_in,
    toast,
    toasts,
)

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
    percents = [int(p.rstrip("%")) for p in shown]
    assert percents == sorted(percents), shown  # and never fell, whatever order parts reported in
    # One notice for the whole job: one toast, one inbox entry.
    inbox = open_inbox(page)
    expect(inbox.get_by_role("listitem")).to_have_count(1)
    expect(toasts(page)).to_have_count(1)
    assert [n["title"] for n in stack.notifications("statements_fan")] == [f"{TITLE} done"]


def shell(stack: Stack, code: str) -> None:
    stack.manage("shell", "-c", code)


def test_a_bar_whose_worker_is_gone_waits_for_a_worker_then_resumes(stack, context):
    stack.create_users("stalled_sam")
    user_id = stack.user_ids["stalled_sam"]
    page = sign_in(context, stack, "stalled_sam")
    row = page.locator('.nw-progress[data-task="orphan-task"]')
    message = row.locator(".nw-progress-message")
    # A report from a minute ago reaches the open tab, from a task noted on a
    # worker that no longer beats: the quiet bar asks, and learns it is gone.
    shell(
        stack,
        "from datetime import UTC, datetime, timedelta\n"
        "from notifications import flush, messages, progress_state, sender\n"
        "from notifications.groups import event, user_group\n"
        "at = (datetime.now(UTC) - timedelta(seconds=60)).isoformat()\n"
        f"seq = progress_state.remember({user_id}, 'orphan-task', 40, 'Working', at)\n"
        f"progress_state.runs_on({user_id}, 'orphan-task', 'gone@nowhere')\n"
        "report = messages.make('progress', task_id='orphan-task', percent=40,"
        " message='Working', at=at, seq=seq)\n"
        f"sender.submit([(user_group({user_id}), event(report))])\n"
        "flush()",
    )
    expect(message).to_have_text("Waiting for a worker…")
    expect(row.locator(".nw-progress-percent")).to_have_text("40%")
    # A tab opened now is told by the server at once.
    other = open_tab(context, stack)
    expect(
        other.locator('.nw-progress[data-task="orphan-task"] .nw-progress-message')
    ).to_have_text("Waiting for a worker…")
    # The task runs again elsewhere and reports: the bar is back to normal.
    shell(
        stack,
        "from notifications import flush, send_progress\n"
        f"send_progress({user_id}, 'orphan-task', 55, 'Month 7 of 12')\n"
        "flush()",
    )
    expect(message).to_have_text("Month 7 of 12")
    expect(row.locator(".nw-progress-percent")).to_have_text("55%")
    shell(
        stack,
        "from notifications import progress_state\n"
        f"progress_state.forget({user_id}, 'orphan-task')",
    )
