"""The preferences panel in a real Chromium: what a person changes is what the API keeps."""

from collections.abc import Iterator

import pytest

from tests.stack import Stack
from tests.test_browser import (  # noqa: F401 (fixtures)
    browser,
    evidence_kept,
    expect,
    open_inbox,
    pytestmark,
    sign_in,
    sync_api,
)

# Not the machine's zone nor UTC: the panel's default must come from the browser.
BROWSER_ZONE = "Asia/Tokyo"
PREFERENCES = "/api/notifications/preferences/"


@pytest.fixture
def context(browser, request: pytest.FixtureRequest) -> Iterator[sync_api.BrowserContext]:  # noqa: F811
    """tests/test_browser.py's context, in a browser whose clock is in Tokyo."""
    with evidence_kept(browser, request, timezone_id=BROWSER_ZONE) as context:
        yield context


def open_preferences(page: sync_api.Page):
    inbox = open_inbox(page)
    inbox.get_by_role("button", name="Preferences").click()
    form = page.get_by_role("form", name="Notification preferences")
    expect(form.get_by_role("button", name="Save")).to_be_visible()
    return form


def test_the_panel_saves_channels_digest_and_quiet_hours_and_they_survive_a_reload(
    stack: Stack, context
):
    stack.create_users("prefs-pia")
    page = sign_in(context, stack, "prefs-pia")
    form = open_preferences(page)
    push_for_info = form.get_by_role("checkbox", name="Push for Info")
    expect(push_for_info).to_be_checked()
    # The operator's critical level is shown on and cannot be switched off.
    expect(form.get_by_role("checkbox", name="Email digest for Error")).to_be_checked()
    expect(form.get_by_role("checkbox", name="Email digest for Error")).to_be_disabled()
    expect(form.get_by_label("Time zone")).to_have_value(BROWSER_ZONE)

    push_for_info.uncheck()
    form.get_by_label("Email digest of what I have not seen").select_option("daily")
    form.get_by_label("Hold push back between").check()
    form.get_by_label("From", exact=True).fill("21:30")
    form.get_by_role("button", name="Save").click()
    expect(form.get_by_role("status")).to_have_text("Saved.")

    page.reload()
    form = open_preferences(page)
    expect(form.get_by_role("checkbox", name="Push for Info")).not_to_be_checked()
    expect(form.get_by_role("checkbox", name="Email digest for Info")).to_be_checked()
    expect(form.get_by_label("Email digest of what I have not seen")).to_have_value("daily")
    expect(form.get_by_label("From", exact=True)).to_have_value("21:30")
    saved = page.request.get(stack.base_url + PREFERENCES).json()
    assert saved["levels"]["info"] == ["email"]
    assert saved["levels"]["warning"] == ["push", "email"]
    assert saved["digest"] == "daily"
    assert saved["quiet_hours"] == {"start": "21:30", "end": "07:00"}
    assert saved["time_zone"] == BROWSER_ZONE


def test_the_panel_says_why_the_server_refused_and_keeps_what_was_saved(stack: Stack, context):
    stack.create_users("prefs-quinn")
    page = sign_in(context, stack, "prefs-quinn")
    form = open_preferences(page)
    form.get_by_label("Hold push back between").check()
    form.get_by_label("Time zone").fill("Mars/Olympus_Mons")
    form.get_by_role("button", name="Save").click()
    expect(form.get_by_role("status")).to_contain_text("time_zone must be an IANA time zone name")
    saved = page.request.get(stack.base_url + PREFERENCES).json()
    assert saved["quiet_hours"] is None


def test_a_kind_the_person_set_is_offered_and_saved_beside_the_levels(stack: Stack, context):
    stack.create_users("prefs-rosa")
    page = sign_in(context, stack, "prefs-rosa")
    token = next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")
    current = page.request.get(stack.base_url + PREFERENCES).json()
    current["kinds"] = {"export": ["email"]}
    answer = page.request.put(
        stack.base_url + PREFERENCES,
        data=current,
        headers={"X-CSRFToken": token, "Referer": stack.base_url + "/"},
    )
    assert answer.ok, answer.text()

    form = open_preferences(page)
    expect(form.get_by_role("checkbox", name="Push for export notices")).not_to_be_checked()
    form.get_by_role("checkbox", name="Push for export notices").check()
    form.get_by_role("checkbox", name="Email digest for export notices").uncheck()
    form.get_by_role("button", name="Save").click()
    expect(form.get_by_role("status")).to_have_text("Saved.")
    assert page.request.get(stack.base_url + PREFERENCES).json()["kinds"] == {"export": ["push"]}
