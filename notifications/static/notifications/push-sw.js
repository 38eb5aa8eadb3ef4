// The Web Push service worker: shows a pushed notification and opens its link.
//
// Served by notifications.push_views.service_worker under the app's URLs with
// "Service-Worker-Allowed: /", and registered by push.js with scope "/", so
// it can focus any tab of the site. It keeps no state and no cache.
"use strict";

self.addEventListener("push", (event) => {
  // The server sends JSON {id, title, body, url, level, icon?} (push.py payload()).
  let message = {};
  if (event.data) {
    try {
      message = event.data.json();
    } catch (error) {
      message = { title: event.data.text() };
    }
  }
  const options = {
    body: message.body || "",
    data: { url: message.url || "/", id: message.id },
    // One system notification per notification id, even if shown twice.
    tag: message.id ? "notification-" + message.id : undefined,
  };
  if (message.icon) options.icon = message.icon;
  event.waitUntil(self.registration.showNotification(message.title || "New notification", options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL((event.notification.data && event.notification.data.url) || "/", self.location.origin);
  event.waitUntil(openTab(target));
});

// Focus a tab of this site and take it to the link when there is one; else a new tab.
async function openTab(target) {
  if (target.origin === self.location.origin) {
    const tabs = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const tab of tabs) {
      if (new URL(tab.url).origin !== self.location.origin) continue;
      const focused = await tab.focus();
      if (tab.url === target.href) return focused;
      try {
        // navigate() works on the tabs this worker controls; others get a new tab.
        return await focused.navigate(target.href);
      } catch (error) {
        break;
      }
    }
  }
  return self.clients.openWindow(target.href);
}
