"""The link rule in a real Chromium: links.js agrees with the server's rule
(tests/test_links.py's table), a saved row whose url the rule refuses is no
link in the inbox nor in its toast, and the service worker's click opens the
site, never such a url."""

import json

from tests import test_browser
from tests.stack import Stack, wait_for
from tests.test_browser import expect, inbox_item, open_inbox, sign_in, toast
from tests.test_links import RULE

# The Chromium, per-test contexts and marks of test_browser.py.
browser, context = test_browser.browser, test_browser.context
pytestmark = test_browser.pytestmark

HOSTILE = ["//evil.example/x", "https:evil.example/x", "javascript:alert(1)", "/\\evil.example"]


def save_past_notify(stack: Stack, username: str, rows: list[dict]) -> None:
    """Rows written straight to the database, as an old row or a bug might have them."""
    stack.manage(
        "shell",
        "-c",
        "import json\n"
        "from django.contrib.auth.models import User\n"
        "from notifications.models import Notification\n"
        f"user = User.objects.get(username={username!r})\n"
        f"for row in json.loads({json.dumps(json.dumps(rows))}):\n"
        "    Notification.objects.create(recipient=user, **row)",
    )


def test_links_js_follows_the_servers_rule(stack, context):
    stack.create_users("links-rule")
    page = sign_in(context, stack, "links-rule")
    allowed = page.evaluate(
        "urls => urls.map((url) => self.notificationLink(url, location.origin) !== null)",
        list(RULE),
    )
    assert dict(zip(RULE, allowed, strict=True)) == RULE


def test_a_refused_url_is_no_link_in_the_inbox_nor_in_its_toast(stack, context):
    stack.create_users("links-rows")
    rows = [{"title": f"Hostile {n}", "url": url} for n, url in enumerate(HOSTILE)]
    rows[0]["dedupe_key"] = "pushed-again"
    save_past_notify(stack, "links-rows", [*rows, {"title": "Fine", "url": "/reports/42"}])
    page = sign_in(context, stack, "links-rows")
    inbox = open_inbox(page)
    expect(inbox_item(inbox, "Fine").get_by_role("link", name="Fine")).to_have_attribute(
        "href", stack.base_url + "/reports/42"
    )
    for n in range(len(HOSTILE)):
        expect(inbox_item(inbox, f"Hostile {n}")).to_be_visible()
        expect(inbox_item(inbox, f"Hostile {n}").get_by_role("link")).to_have_count(0)
    page.keyboard.press("Escape")
    # A notify() with the row's dedupe key pushes the saved row, url and all, live.
    stack.manage(
        "shell",
        "-c",
        "from notifications import notify\n"
        "from django.contrib.auth.models import User\n"
        "user = User.objects.get(username='links-rows')\n"
        "notify(user, 'Again', dedupe_key='pushed-again')",
    )
    shown = toast(page, "Hostile 0")
    expect(shown).to_be_visible()
    expect(shown.get_by_role("link")).to_have_count(0)


# Shows a notification from the worker with `url` as its data, then runs the
# worker's own click handler on it (headless Chromium cannot click one).
CLICK = """async (url) => {
  await self.registration.showNotification("Test", { data: { url } });
  const [shown] = await self.registration.getNotifications();
  await clicked(shown);
  return null;
}"""


def test_the_service_workers_click_opens_the_site_for_a_refused_url(stack, context):
    stack.create_users("links-worker")
    base = stack.base_url
    context.grant_permissions(["notifications"], origin=base)
    page = sign_in(context, stack, "links-worker")
    page.evaluate(
        "async () => { await navigator.serviceWorker.register("
        "'/api/notifications/push/sw.js', {scope: '/'}); await navigator.serviceWorker.ready; }"
    )
    page.reload()  # now a tab the worker controls
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    worker = wait_for(lambda: context.service_workers, 10, "the service worker")[0]

    worker.evaluate(CLICK, "/reports/42")  # an allowed url: the tab goes there
    expect(page).to_have_url(base + "/reports/42")
    for url in HOSTILE:
        page.goto(base + "/?before")
        page.wait_for_function("navigator.serviceWorker.controller !== null")
        worker.evaluate(CLICK, url)
        expect(page).to_have_url(base + "/")  # the site, not the url
        assert len(context.pages) == 1  # and no window opened elsewhere
