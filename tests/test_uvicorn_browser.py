"""What a person sees in Chromium when the server is uvicorn: the Daphne suite's
browser tests of a task's bar and toast, the demo page and read state across
tabs, run again on a uvicorn stack of this module's own (its users are fresh,
as the badge counts they check need)."""

import pytest

from tests import test_browser, test_uvicorn
from tests.test_browser import context  # noqa: F401 (the fixture of the tests below)

# test_uvicorn's fixture; module-scoped, so this module starts a stack of its own.
stack = test_uvicorn.stack

test_long_task_shows_a_moving_progress_bar_then_a_success_toast = (
    test_browser.test_long_task_shows_a_moving_progress_bar_then_a_success_toast
)
test_marking_read_in_one_tab_updates_the_badge_in_the_other = (
    test_browser.test_marking_read_in_one_tab_updates_the_badge_in_the_other
)
test_demo_page_shows_progress_a_toast_and_the_inbox = (
    test_browser.test_demo_page_shows_progress_a_toast_and_the_inbox
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser():
    with test_browser.chromium() as launched:
        yield launched


def test_the_pages_come_from_uvicorn(stack):
    assert "Uvicorn running on" in stack.log("daphne")
