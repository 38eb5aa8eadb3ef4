// The one rule by which a notification's url, or an action's, becomes a link:
// the same as the server's (notifications/validation.py link()). An absolute
// http(s) url with a host, or a path on this site; never "//host" (another
// site that looks like a path), "https:host" (a scheme without "//"),
// javascript:, data:, or anything holding spaces, control characters or
// backslashes (which browsers read as "/").
//
// Loaded before widget.js by {% notifications_script %}, and put in front of
// push-sw.js by the view that serves the service worker, so the page and the
// worker apply one function. Returns the link's href, or null for no link.
"use strict";

self.notificationLink = function notificationLink(url, origin) {
  if (typeof url !== "string" || !url || /[\s\\\x00-\x1f\x7f]/.test(url)) return null;
  let parsed;
  try {
    if (/^https?:\/\/[^/]/i.test(url)) parsed = new URL(url);
    else if (url.startsWith("/") && !url.startsWith("//")) parsed = new URL(url, origin);
    else return null;
  } catch (error) {
    return null;
  }
  return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
};
