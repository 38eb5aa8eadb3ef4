"""A site whose language is Simplified Chinese (LANGUAGE_CODE=zh-hans) shows the
widget in Chinese throughout, in a real Chromium: the connection state, the
bell, the inbox and its buttons, a toast's controls, the preferences panel."""

from collections.abc import Iterator

import pytest

from tests import test_browser
from tests.stack import PASSWORD, Stack, running
from tests.test_browser import expect, notify

browser, context = test_browser.browser, test_browser.context
pytestmark = [*test_browser.pytestmark, pytest.mark.slow]


@pytest.fixture(scope="module")
def chinese_stack(tmp_path_factory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("chinese-stack")
    with running(workdir, "chinese-stack", env={"LANGUAGE_CODE": "zh-hans"}) as stack:
        yield stack


def sign_in(context, stack: Stack, username: str):
    """The demo's login form, by its fields' names (its labels are the project's)."""
    page = context.new_page()
    page.goto(stack.base_url + "/")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    expect(page.locator("[data-nw-status]")).to_have_attribute("data-state", "connected")
    return page


def test_the_widget_speaks_chinese_throughout(chinese_stack, context):
    chinese_stack.create_users("li")
    page = sign_in(context, chinese_stack, "li")
    expect(page.locator("[data-nw-status-text]")).to_have_text("已连接")

    notify(chinese_stack, "li", "报告已生成")
    toast = page.get_by_role("region", name="新通知").locator(".nw-toast")
    expect(toast.filter(has_text="报告已生成")).to_be_visible()
    expect(toast.get_by_role("button", name="关闭")).to_be_visible()
    expect(page.get_by_role("button", name="通知，1 条未读")).to_be_visible()

    page.get_by_role("button", name="通知，1 条未读").click()
    inbox = page.get_by_role("region", name="通知", exact=True)
    expect(inbox).to_be_visible()
    item = inbox.get_by_role("listitem").filter(has_text="报告已生成")
    expect(item.get_by_role("button", name="标为已读")).to_be_visible()
    expect(item.locator("time")).to_have_text("刚刚")
    expect(inbox.get_by_role("button", name="全部标为已读")).to_be_enabled()

    item.get_by_role("button", name="标为已读").click()
    expect(page.get_by_role("button", name="通知", exact=True)).to_be_visible()

    inbox.get_by_role("button", name="偏好设置").click()
    expect(page.get_by_role("group", name="推送免打扰时段")).to_be_visible()
    expect(page.get_by_role("checkbox", name="信息：推送")).to_be_visible()
    expect(page.get_by_role("button", name="保存")).to_be_visible()
    assert "Mark" not in page.locator("[data-notifications]").inner_text()
