// "Notify me on this device": Web Push for the signed-in user, and the list of
// the browsers they registered, each removable. Self-contained: it draws into
// the [data-nw-push] element that {% notifications_widget %} renders when the
// server has VAPID keys, and needs only text.js (its words), neither
// transport.js nor widget.js.
//
// The browser asks for permission only from the button's click, never on load.
(function () {
  "use strict";

  const box = document.querySelector("[data-nw-push]");
  if (!box) return; // push is off on this server, or nobody is signed in

  const config = box.dataset; // pushKey, pushUrl, pushWorker, csrfToken
  const t = window.notificationsText;
  const button = box.querySelector("[data-nw-push-enable]");
  const note = box.querySelector("[data-nw-push-note]");
  const list = box.querySelector("[data-nw-push-devices]");
  const supported = "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

  function say(text) {
    note.textContent = text;
    note.hidden = !text;
  }

  function request(method, url, body) {
    return fetch(url, {
      method,
      credentials: "same-origin",
      headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRFToken": config.csrfToken },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then((response) => {
      if (!response.ok) throw new Error(t("the server answered {status}", { status: response.status }));
      return response.json();
    });
  }

  // The VAPID public key, base64url, as pushManager.subscribe() wants it.
  function keyBytes(base64url) {
    const base64 = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  }

  async function thisBrowsersSubscription() {
    if (!supported) return null;
    const registration = await navigator.serviceWorker.getRegistration("/");
    return registration ? registration.pushManager.getSubscription() : null;
  }

  async function enable() {
    button.disabled = true;
    try {
      const permission = await Notification.requestPermission();
      if (permission !== "granted") {
        say(t("Notifications are blocked for this site in the browser's settings."));
        return;
      }
      await navigator.serviceWorker.register(config.pushWorker, { scope: "/" });
      const registration = await navigator.serviceWorker.ready;
      const subscription =
        (await registration.pushManager.getSubscription()) ||
        (await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(config.pushKey) }));
      await request("POST", config.pushUrl, subscription.toJSON());
      say(t("This device will be notified when no tab of this site is open."));
    } catch (error) {
      say(t("Could not turn on notifications here: {error}", { error: error.message }));
    } finally {
      button.disabled = false;
      await refresh();
    }
  }

  async function remove(device, isThisBrowser) {
    try {
      await request("DELETE", config.pushUrl + device.id + "/");
      if (isThisBrowser) {
        const subscription = await thisBrowsersSubscription();
        if (subscription) await subscription.unsubscribe();
      }
      say("");
    } catch (error) {
      say(t("Could not remove it: {error}", { error: error.message }));
    }
    await refresh();
  }

  function describe(device) {
    const agent = device.user_agent || t("A browser");
    const since = new Date(device.created_at).toLocaleDateString(t.locale);
    const shown = agent.length > 60 ? agent.slice(0, 59) + "…" : agent;
    return t("{device} · since {date}", { device: shown, date: since });
  }

  async function refresh() {
    let devices = [];
    let mine = null;
    try {
      [devices, mine] = await Promise.all([
        request("GET", config.pushUrl).then((answer) => answer.devices),
        thisBrowsersSubscription().catch(() => null),
      ]);
    } catch (error) {
      say(t("Devices unavailable: {error}", { error: error.message }));
    }
    list.replaceChildren();
    let registeredHere = false;
    for (const device of devices) {
      const isThisBrowser = mine !== null && mine.endpoint === device.endpoint;
      registeredHere = registeredHere || isThisBrowser;
      const item = document.createElement("li");
      item.className = "nw-push-device";
      item.dataset.deviceId = device.id;
      const label = document.createElement("span");
      label.textContent = isThisBrowser ? t("This browser: {device}", { device: describe(device) }) : describe(device);
      const removeButton = document.createElement("button");
      removeButton.type = "button";
      removeButton.className = "nw-text-button";
      removeButton.textContent = t("Remove");
      removeButton.addEventListener("click", () => remove(device, isThisBrowser));
      item.append(label, removeButton);
      list.append(item);
    }
    button.hidden = registeredHere || !supported;
    if (!supported) say(t("This browser cannot receive push notifications."));
  }

  button.addEventListener("click", enable);
  box.hidden = false;
  refresh();
})();
