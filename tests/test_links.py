"""One rule for every link a notification carries (validation.link, and
links.js in the browser): notify() refuses any other url, a task's result
keeps its notice without a bad link, and push payloads and the digest never
carry one. tests/test_browser_links.py checks links.js against the same table."""

import json

import pytest

from notifications import notify, validation
from notifications.celery.signals import outcome_fields
from notifications.models import Notification
from notifications.push import payload
from tasks.tasks import long_job

# url -> whether it may become a link.
RULE = {
    "/reports/42": True,
    "/": True,
    "/a?next=//elsewhere#x": True,
    "https://example.com/x?y=1": True,
    "http://example.com": True,
    "HTTPS://Example.com/x": True,
    "https://user@example.com/": True,
    "https://例子.测试/路径": True,
    "//evil.example/x": False,
    "///evil.example/x": False,
    "https:evil.example/x": False,
    "http:/evil.example": False,
    "https:///evil.example": False,
    "https://": False,
    "javascript:alert(1)": False,
    "JavaScript:alert(1)": False,
    "data:text/html,<script>alert(1)</script>": False,
    "vbscript:msgbox(1)": False,
    "mailto:ann@example.com": False,
    "ftp://example.com/f": False,
    "reports/42": False,
    "?page=2": False,
    "#top": False,
    "/\\evil.example": False,
    "\\\\evil.example": False,
    "https:\\\\evil.example": False,
    " /x": False,
    "/x\n": False,
    "\t//evil.example": False,
    "/x\x7f": False,
    "/a b": False,
    "https://[::1": False,
    "https://example.com:99999/": False,
}


@pytest.mark.parametrize(("url", "allowed"), RULE.items(), ids=[repr(u) for u in RULE])
def test_the_rule(url, allowed):
    assert validation.link(url) is allowed


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("url", [u for u, ok in RULE.items() if not ok], ids=repr)
def test_notify_refuses_a_url_the_rule_refuses_and_saves_nothing(alice, url):
    with pytest.raises(ValueError, match="must be http"):
        notify(alice, "Report ready", url=url)
    assert Notification.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_notify_keeps_a_url_the_rule_allows(alice):
    assert notify(alice, "Report ready", url="/reports/42").url == "/reports/42"
    assert notify(alice, "No link").url == ""


@pytest.mark.parametrize("url", ["//evil.example/x", "javascript:alert(1)", "https:evil/x"])
def test_a_task_result_with_a_bad_url_keeps_its_notice_without_the_link(url):
    fields = outcome_fields(long_job, "t-1", "SUCCESS", {"message": "Here.", "url": url})
    assert (fields["body"], fields["url"]) == ("Here.", "")


@pytest.mark.django_db(transaction=True)
def test_a_row_saved_past_notify_is_pushed_without_its_bad_link(alice):
    row = Notification.objects.create(recipient=alice, title="Old", url="//evil.example/x")
    assert json.loads(payload(row))["url"] == ""
    row.url = "/reports/1"
    assert json.loads(payload(row))["url"] == "/reports/1"
