"""The same socket behaviour under uvicorn (`notifications.serve --server uvicorn`)
as under Daphne: the end-to-end, limit and shutdown tests of the Daphne suite,
run again here on a stack whose server is uvicorn (this module's `stack`);
the browser's are in test_uvicorn_browser.py."""

from collections.abc import Iterator

import pytest

from tests import test_consumer_input, test_e2e, test_limits
from tests.stack import Stack, running

# The Daphne suite's tests, collected again in this module with its `stack`.
test_long_task_reports_progress_then_success = test_e2e.test_long_task_reports_progress_then_success
test_failing_task_gives_a_readable_error_notification = (
    test_e2e.test_failing_task_gives_a_readable_error_notification
)
test_management_command_reaches_the_connected_user_only = (
    test_e2e.test_management_command_reaches_the_connected_user_only
)
test_anonymous_socket_is_told_to_log_in = test_e2e.test_anonymous_socket_is_told_to_log_in
test_oversized_frame_is_refused_with_1009_and_others_keep_receiving = (
    test_e2e.test_oversized_frame_is_refused_with_1009_and_others_keep_receiving
)
test_deeply_nested_json_is_answered_with_an_error_frame = (
    test_consumer_input.test_deeply_nested_json_is_answered_with_an_error_frame
)
test_a_server_shut_down_leaves_no_socket_in_any_group = (
    test_consumer_input.test_a_daphne_shut_down_leaves_no_socket_in_any_group
)
test_the_largest_notification_notify_accepts_reaches_the_client = (
    test_limits.test_the_largest_notification_notify_accepts_reaches_a_real_daphne
)
test_a_client_that_stops_reading_is_closed_and_catches_up_when_back = (
    test_limits.test_a_client_that_stops_reading_is_closed_and_catches_up_when_back
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    """A stack whose web processes are uvicorn, replacing the shared Daphne stack."""
    workdir = tmp_path_factory.mktemp("uvicorn-stack")
    with running(workdir, "uvicorn-stack", server="uvicorn") as stack:
        yield stack


def test_the_stack_really_runs_uvicorn(stack):
    assert "Uvicorn running on" in stack.log("daphne")
    assert "Listening on TCP address" not in stack.log("daphne")
