// The Web Push service worker: shows a pushed notification and opens its link.
//
// Served by notifications.push_views.service_worker under the app's URLs with
// "Service-Worker-Allowed: /", and registered by push.js with scope "/", so
// it can focus any tab of the site. It keeps no state and no cache. The view
// puts links.js in front of this file, so a click follows the page's link rule.
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
    data: { url: message.url || "", id: message.id },
    // One system notification per notification id, even if shown twice.
    tag: message.id ? "notification-" + message.id : undefined,
  };
  if (message.icon) options.icon = message.icon;
  event.waitUntil(self.registration.showNotification(message.title || "New notification", options));
});

// Open tabs of the site become this worker's at once, so a click can navigate them.
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("notificationclick", (event) => event.waitUntil(clicked(event.notification)));

// Close the notification; focus a tab of this site and take it to the link,
// or open the link in a new tab when no tab can be taken there.
async function clicked(notification) {
  notification.close();
  const data = notification.data || {};
  // A url the link rule refuses (links.js) opens the site instead: never
  // javascript:, data: or a look-alike of another site.
  const href = self.notificationLink(data.url, self.location.origin);
  const target = new URL(href || "/", self.location.origin);
  if (target.origin === self.location.origin) {
    const tabs = await self.clients.matchAll({ type: "window" }); // the tabs this worker controls
    if (tabs.length) {
      const tab = tabs.find((t) => t.focused) || tabs[0];
      // focus() is refused without a user's click; the tab is still taken to the link.
      await tab.focus().catch(() => null);
      if (tab.url === target.href) return tab;
      const navigated = await tab.navigate(target.href).catch(() => null);
      if (navigated) return navigated;
    }
  }
  return self.clients.openWindow(target.href);
}
