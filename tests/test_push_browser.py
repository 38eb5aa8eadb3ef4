"""Web Push in a real Chromium: the widget registers this browser, a push
delivered to its service worker shows a system notification whose click opens
the notification's link, and the panel removes the device.

Headless Chromium cannot reach a real push service (pushManager.subscribe()
asks Google's FCM), so an init script stands in for pushManager.subscribe()
and getSubscription() with a subscription on the test's stand-in push service,
whose keys the test holds. Everything else is real: the permission asked from
the click, the service worker registered at scope "/", the subscription posted
with the CSRF token, the stack's worker encrypting the notification for those
keys, and the plaintext the stand-in decrypts delivered to the registered
worker through the DevTools protocol (ServiceWorker.deliverPushMessage).

A system notification cannot be clicked in headless Chromium, so the last step
calls the worker's own click handler (`clicked`, what its notificationclick
listener runs) with the notification the push showed.
"""

import base64
import json

import pytest

from tests import test_browser
from tests.push_service import PushService, call, notify, push_tasks_done
from tests.stack import Browserless, wait_for
from tests.test_browser import CHROMIUM, expect, sign_in

# The Chromium and the per-test profile of the browser tests (tests/test_browser.py).
browser = test_browser.browser
context = test_browser.context

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"BROWSER TESTS NOT RUN: no {CHROMIUM}"),
]

# Stands in for the browser's push service client; counts permission requests.
FAKE_PUSH_MANAGER = """
(() => {
  const subscription = %s;
  const stored = "test-push-subscribed";
  const make = () => ({
    endpoint: subscription.endpoint,
    toJSON: () => subscription,
    unsubscribe: async () => { localStorage.removeItem(stored); return true; },
  });
  PushManager.prototype.subscribe = async function (options) {
    const key = new Uint8Array(options.applicationServerKey);
    localStorage.setItem("test-push-key", btoa(String.fromCharCode(...key)));
    localStorage.setItem(stored, "1");
    return make();
  };
  PushManager.prototype.getSubscription = async function () {
    return localStorage.getItem(stored) ? make() : null;
  };
  window.permissionRequests = 0;
  const ask = Notification.requestPermission.bind(Notification);
  Notification.requestPermission = (...args) => {
    window.permissionRequests += 1;
    return ask(...args);
  };
})();
"""

NOTIFICATIONS_SHOWN = """async () => {
  const registration = await navigator.serviceWorker.getRegistration("/");
  const shown = registration ? await registration.getNotifications() : [];
  return shown.map((n) => ({ title: n.title, body: n.body, data: n.data }));
}"""


@pytest.fixture
def service(push_vapid_keys):
    service = PushService(push_vapid_keys[0])
    yield service
    service.close()
    assert service.refused == []


def registration_id(page, cdp, scope: str) -> str:
    """The service worker registration for `scope`, as DevTools names it."""
    found: dict[str, str] = {}

    def updated(params: dict) -> None:
        for registration in params["registrations"]:
            if registration["scopeURL"] == scope and not registration.get("isDeleted"):
                found["id"] = registration["registrationId"]

    cdp.on("ServiceWorker.workerRegistrationUpdated", updated)
    cdp.send("ServiceWorker.enable")
    # page.evaluate lets Playwright dispatch the events that arrived meanwhile.
    return wait_for(lambda: page.evaluate("0") == 0 and found.get("id"), 10, "the registration")


def test_a_push_to_the_registered_worker_shows_a_notification_whose_click_opens_its_link(
    context, push_stack, service, push_vapid_keys
):
    base = push_stack.base_url
    browser_keys = service.browser("dave")
    context.grant_permissions(["notifications"], origin=base)
    context.add_init_script(FAKE_PUSH_MANAGER % json.dumps(browser_keys.subscription))
    page = sign_in(context, push_stack, "dave")

    # The permission is asked from the click only, and the device is listed.
    page.get_by_role("button", name="Notifications").click()
    enable = page.get_by_role("button", name="Notify me on this device")
    expect(enable).to_be_visible()
    assert page.evaluate("window.permissionRequests") == 0
    enable.click()
    expect(page.get_by_text("This browser:")).to_be_visible()
    expect(enable).to_be_hidden()
    assert page.evaluate("window.permissionRequests") == 1
    key = base64.b64decode(page.evaluate("localStorage.getItem('test-push-key')"))
    assert base64.urlsafe_b64encode(key).rstrip(b"=").decode() == push_vapid_keys[0]
    session = Browserless(push_stack, "dave")
    (device,) = call(session, "GET", "/api/notifications/push/subscriptions/")["devices"]
    assert device["endpoint"] == browser_keys.endpoint

    # No tab open: the stack pushes, and the push service has the message.
    page.goto(base + "/static/notifications/notifications.css")  # the site, without a socket
    wait_for(
        lambda: call(session, "GET", "/api/notifications/presence/") == {"online": False},
        10,
        "dave to have no socket open",
    )
    before = push_tasks_done(push_stack)
    notify(push_stack, "dave", "Report ready", body="Q3 is in", url="/?from=push")
    wait_for(lambda: service.count("dave"), 30, "the push")
    wait_for(lambda: push_tasks_done(push_stack) > before, 30, "the push task to end")
    (plaintext,) = service.plaintexts["dave"]

    # The push service delivers it to the registered worker: a system notification.
    cdp = context.new_cdp_session(page)
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": base,
            "registrationId": registration_id(page, cdp, base + "/"),
            "data": plaintext.decode(),
        },
    )
    page.wait_for_function(f"({NOTIFICATIONS_SHOWN})().then((shown) => shown.length > 0)")
    (shown,) = page.evaluate(NOTIFICATIONS_SHOWN)
    assert shown["title"] == "Report ready"
    assert shown["body"] == "Q3 is in"
    assert shown["data"]["url"] == "/?from=push"

    # Its click takes the open tab of the site to the link.
    page.goto(base + "/")
    worker = wait_for(lambda: context.service_workers, 10, "the service worker")[0]
    worker.evaluate(
        "async () => clicked((await self.registration.getNotifications())[0]).then(() => null)"
    )
    expect(page).to_have_url(base + "/?from=push")
    assert page.evaluate(NOTIFICATIONS_SHOWN) == []  # the click closed it

    # The device is listed in the panel, and removed from there.
    page.get_by_role("button", name="Notifications").click()
    page.get_by_role("listitem").filter(has_text="This browser:").get_by_role(
        "button", name="Remove"
    ).click()
    expect(page.get_by_role("button", name="Notify me on this device")).to_be_visible()
    assert call(session, "GET", "/api/notifications/push/subscriptions/")["devices"] == []
