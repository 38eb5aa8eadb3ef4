// The notification widget for a signed-in user: an inbox behind a bell,
// toasts, task progress bars and the connection's state, drawn from the
// messages of transport.js, told by tabs.js which tab pops up what, and
// making links by links.js's rule (all three must load first). No dependencies, no build step.
//
// The page says where everything is through data attributes on the widget
// that {% notifications_widget %} renders, so this file holds no URLs.
//
// Every piece of text from the server reaches the page through textContent,
// never as HTML: a notification title is data, not markup.
(function () {
  "use strict";

  const root = document.querySelector("[data-notifications]");
  if (!root) return; // nobody signed in, or a page without the widget

  const config = root.dataset;
  const t = window.notificationsText;
  const part = (name) => root.querySelector("[data-nw-" + name + "]");
  const statusBox = part("status");
  const statusText = part("status-text");
  const bell = part("bell");
  const badge = part("badge");
  const panel = part("panel");
  const list = part("list");
  const emptyNote = part("empty");
  const readAllButton = part("read-all");
  const progressList = part("progress");
  const toastList = part("toasts");
  const desktopButton = part("desktop");

  const TOAST_MS = 6000;
  const MAX_TOASTS = 4;
  const INBOX_SIZE = 20;
  const STATUS_TEXT = {
    connecting: t("Connecting…"),
    connected: t("Live"),
    reconnecting: t("Reconnecting…"),
    offline: t("Offline"),
  };

  // --- State ------------------------------------------------------------

  const inbox = new Map(); // id -> notification with `read`, the newest INBOX_SIZE
  const progressRows = new Map(); // task id -> its progress bar
  const taskTitles = new Map(); // task id -> a name for its bar (see track())
  const finishedTasks = new Set(); // task ids whose final notice came
  const shownSeqs = new Map(); // task id -> the `seq` of the report its bar shows
  let unread = 0;
  // The newest id that the server's last unread count already includes; only
  // a notification newer than that adds one to the badge.
  let countedThrough = 0;
  let greeted = false; // a hello came before: the next one is a reconnection
  let connection = null; // from NotificationsTransport.connect(), once started

  // --- The connection's state -------------------------------------------

  function goToLogin() {
    connection.close();
    setStatus("offline");
    const login = new URL(config.loginUrl, location.href);
    login.searchParams.set("next", location.pathname + location.search);
    location.assign(login.href);
  }

  function onState(state) {
    if (state === "unauthenticated") goToLogin();
    else setStatus(state);
  }

  function setStatus(state) {
    if (statusBox.dataset.state === state) return;
    statusBox.dataset.state = state;
    statusText.textContent = STATUS_TEXT[state];
  }

  // --- Messages from the server ------------------------------------------

  const handlers = {
    hello(message) {
      setUnread(message.unread);
      countedThrough = message.last_id;
      // Reads and arrivals while this tab was away: the inbox has them.
      if (greeted) refreshInbox();
      greeted = true;
      shown([]); // what could not be told while the socket was down
    },
    notification: arrive,
    progress: showProgress,
    stalled: showStalled,
    read(message) {
      for (const id of message.ids) {
        const known = inbox.get(id);
        if (known) known.read = true;
      }
      setUnread(message.unread);
      renderInbox();
    },
    // More arrived while away than a replay carries; the inbox lists them.
    truncated: refreshInbox,
  };

  function receive(message) {
    const handle = handlers[message.type];
    // The transport logs errors; a newer server's new types are ignored.
    if (handle) handle(message);
  }

  function arrive(notification) {
    // The transport hands on each id once, so each is shown once.
    if (!inbox.has(notification.id)) inbox.set(notification.id, { ...notification, read: false });
    if (notification.id > countedThrough) {
      countedThrough = notification.id;
      setUnread(unread + 1);
    }
    if (notification.task_id) finishTask(notification.task_id);
    announce(notification);
    renderInbox();
  }

  function announce(notification) {
    // Every tab lists it; one tab pops it up: a toast, or a system
    // notification when no tab of the site is visible (tabs.js).
    const group = collapse(notification);
    tabs.decide(notification.id, (rank) => {
      if (rank === 0 && showDesktop(notification, group)) return;
      showToast(notification, group);
    });
  }

  // --- The HTTP API ---------------------------------------------------------

  async function api(method, path) {
    let response;
    try {
      response = await fetch(config.apiUrl + path, {
        method,
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": config.csrfToken },
      });
    } catch (error) {
      return null; // offline: the next hello refreshes the inbox
    }
    if (response.status === 401) {
      goToLogin();
      return null;
    }
    if (!response.ok) {
      console.warn("notifications:", method, path, "answered", response.status);
      return null;
    }
    return response.json();
  }

  async function refreshInbox() {
    const data = await api("GET", "?limit=" + INBOX_SIZE);
    if (!data) return;
    // Merged, not replaced: a notification may have arrived on the socket
    // after the server answered this request.
    for (const notification of data.notifications) inbox.set(notification.id, notification);
    setUnread(data.unread);
    if (data.notifications.length) {
      countedThrough = Math.max(countedThrough, data.notifications[0].id);
    }
    renderInbox();
  }

  async function markRead(id) {
    const data = await api("POST", id === null ? "read-all/" : id + "/read/");
    if (!data) return;
    // The server also tells every tab, this one included; this answer just
    // comes first.
    for (const notification of inbox.values()) {
      if (id === null || notification.id === id) notification.read = true;
    }
    setUnread(data.unread);
    renderInbox();
  }

  // --- The bell and the inbox -------------------------------------------

  function setUnread(count) {
    unread = Math.max(0, count);
    badge.textContent = unread > 99 ? "99+" : String(unread);
    badge.hidden = unread === 0;
    bell.setAttribute("aria-label", unread ? t("Notifications, {count} unread", { count: unread }) : t("Notifications"));
    readAllButton.disabled = unread === 0;
  }

  function renderInbox() {
    const newest = [...inbox.values()].sort((a, b) => b.id - a.id).slice(0, INBOX_SIZE);
    const kept = new Set(newest.map((notification) => notification.id));
    for (const id of inbox.keys()) {
      if (!kept.has(id)) inbox.delete(id);
    }
    const hadFocus = panel.contains(document.activeElement);
    list.replaceChildren(...newest.map(inboxItem));
    emptyNote.hidden = newest.length > 0;
    if (!panel.hidden) shown(newest.map((notification) => notification.id));
    // A "Mark as read" button that was just clicked is gone; keep the
    // keyboard in the panel rather than back at the top of the page.
    if (hadFocus && !panel.contains(document.activeElement)) panel.focus();
  }

  function inboxItem(notification) {
    const item = element("li", "nw-item nw-level-" + notification.level);
    item.dataset.id = notification.id;
    if (!notification.read) item.classList.add("nw-unread");
    const text = element("div", "nw-item-text");
    text.append(titleOf(notification, "nw-item-title"));
    if (notification.body) text.append(element("p", "nw-item-body", notification.body));
    text.append(timeOf(notification.created_at));
    if (hasActions(notification)) text.append(actionsOf(notification));
    item.append(element("span", "nw-level-mark"), text);
    if (!notification.read) {
      const button = element("button", "nw-mark-read", t("Mark as read"));
      button.type = "button";
      button.addEventListener("click", () => markRead(notification.id));
      item.append(button);
    }
    return item;
  }

  function timeOf(iso) {
    const time = element("time", "nw-time", relativeTime(new Date(iso)));
    time.dateTime = iso;
    time.title = new Date(iso).toLocaleString(t.locale);
    return time;
  }

  function relativeTime(date) {
    const seconds = Math.round((date.getTime() - Date.now()) / 1000);
    if (Math.abs(seconds) < 45) return t("just now");
    const format = new Intl.RelativeTimeFormat(t.locale, { numeric: "auto" });
    for (const [unit, size] of [["day", 86400], ["hour", 3600], ["minute", 60]]) {
      if (Math.abs(seconds) >= size || unit === "minute") {
        return format.format(Math.round(seconds / size), unit);
      }
    }
  }

  function setPanel(open) {
    panel.hidden = !open;
    bell.setAttribute("aria-expanded", String(open));
    if (open) renderInbox(); // refreshes the "5 minutes ago" labels
  }

  bell.addEventListener("click", () => setPanel(panel.hidden));
  readAllButton.addEventListener("click", () => markRead(null));
  // pointerdown, not click: a click on "Mark as read" re-renders the list,
  // and by the time a click bubbles up its button is no longer in the panel.
  document.addEventListener("pointerdown", (event) => {
    if (!panel.hidden && !panel.contains(event.target) && !bell.contains(event.target)) {
      setPanel(false);
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !panel.hidden && !toastList.contains(event.target)) {
      setPanel(false);
      bell.focus();
    }
  });

  // --- Toasts -------------------------------------------------------------

  function showToast(notification, group) {
    if (group && group.toast && group.toast.isConnected) {
      // One toast for the whole group: the newest takes the old one's place.
      const ids = group.toast.dataset.ids + "," + notification.id;
      group.toast.remove();
      group.toast = null;
      showToast(notification, group);
      group.toast.dataset.ids = ids;
      return;
    }
    const toast = element("div", "nw-toast nw-level-" + notification.level);
    toast.dataset.ids = String(notification.id);
    if (group) group.toast = toast;
    // Errors interrupt a screen reader; the rest wait their turn in the
    // polite live region around the toasts.
    if (notification.level === "error") toast.setAttribute("role", "alert");
    const text = element("div", "nw-toast-text");
    text.append(titleOf(notification, "nw-toast-title"));
    if (group && group.count > 1) {
      text.append(element("span", "nw-toast-more", " " + t("(+{count} more)", { count: group.count - 1 })));
    }
    if (notification.body) text.append(element("p", "nw-toast-body", notification.body));
    if (hasActions(notification)) text.append(actionsOf(notification));
    const close = element("button", "nw-toast-close", "×");
    close.type = "button";
    close.setAttribute("aria-label", t("Dismiss"));
    close.addEventListener("click", () => dismiss(toast));
    toast.append(element("span", "nw-level-mark"), text, close);
    toastList.append(toast);
    if (document.visibilityState === "visible") shown(toastIds(toast));
    while (toastList.children.length > MAX_TOASTS) {
      // Make room by the oldest that would have gone anyway, else the oldest;
      // every one of them is still in the inbox.
      const stale = toastList.querySelector(".nw-level-success, .nw-level-info");
      dismiss(stale || toastList.firstElementChild);
    }
    if (notification.level === "success" || notification.level === "info") fadeLater(toast);
  }

  function fadeLater(toast) {
    // Good news leaves on its own after a few seconds; warnings and errors
    // stay until dismissed. A toast under the pointer or holding the focus is
    // being read, so it gets another few seconds.
    setTimeout(() => {
      if (toast.matches(":hover, :focus-within")) fadeLater(toast);
      else dismiss(toast);
    }, TOAST_MS);
  }

  function dismiss(toast) {
    if (!toast.isConnected) return;
    if (toast.contains(document.activeElement)) {
      // Hand the keyboard to the next toast, or back to the bell.
      const next = toast.nextElementSibling || toast.previousElementSibling;
      (next ? next.querySelector(".nw-toast-close") : bell).focus();
    }
    toast.remove();
  }

  toastList.addEventListener("keydown", (event) => {
    const toast = event.target.closest(".nw-toast");
    if (event.key === "Escape" && toast) dismiss(toast);
  });

  function toastIds(toast) {
    return toast.dataset.ids.split(",").map(Number);
  }

  // --- Collapsing -----------------------------------------------------------

  // Notifications with the same collapse key, each within this long of the
  // one before (by the server's clock, so every tab groups alike), share one
  // toast: the newest, with "(+2 more)". The inbox lists each.
  const COLLAPSE_MS = 5000;
  const collapsing = new Map(); // collapse key -> { last, count, toast }

  function collapse(notification) {
    const key = notification.collapse_key;
    if (!key) return null;
    const at = Date.parse(notification.created_at);
    let group = collapsing.get(key);
    if (!group || Math.abs(at - group.last) > COLLAPSE_MS) {
      group = { last: at, count: 0, toast: null };
      collapsing.set(key, group);
    }
    group.last = Math.max(group.last, at);
    group.count += 1;
    return group;
  }

  // --- Actions --------------------------------------------------------------

  function hasActions(notification) {
    return Array.isArray(notification.actions) && notification.actions.length > 0;
  }

  function actionsOf(notification) {
    // At most two buttons; one whose URL could run script or leave for an
    // unexpected place (javascript:, data:, //host) shows its label only.
    const box = element("div", "nw-actions");
    for (const action of notification.actions.slice(0, 2)) {
      if (!action || typeof action.label !== "string") continue; // a row saved by hand
      const href = linkable(action.url);
      if (!href) {
        box.append(element("span", "nw-action nw-action-inert", action.label));
        continue;
      }
      const link = element("a", "nw-action", action.label);
      link.href = href;
      if (new URL(href).origin !== location.origin) link.rel = "noopener noreferrer";
      box.append(link);
    }
    return box;
  }

  function linkable(url) {
    return self.notificationLink(url, location.origin); // links.js: the server's rule
  }

  // --- Desktop alerts -------------------------------------------------------

  // Off until the person turns them on in the inbox; the browser's permission
  // is asked only from that click. Kept per browser, so every tab agrees.
  const DESKTOP_KEY = "notifications:desktop:" + config.userId;

  function desktopOn() {
    if (!("Notification" in window) || Notification.permission !== "granted") return false;
    try {
      return localStorage.getItem(DESKTOP_KEY) === "on";
    } catch (error) {
      return false;
    }
  }

  function renderDesktopButton() {
    desktopButton.hidden = !("Notification" in window);
    if (desktopButton.hidden) return;
    const blocked = Notification.permission === "denied";
    desktopButton.disabled = blocked;
    desktopButton.textContent = blocked
      ? t("Desktop alerts are blocked in this browser")
      : desktopOn()
        ? t("Turn off desktop alerts")
        : t("Turn on desktop alerts");
  }

  async function toggleDesktop() {
    const on = !desktopOn() && (await Notification.requestPermission()) === "granted";
    try {
      localStorage.setItem(DESKTOP_KEY, on ? "on" : "off");
    } catch (error) {
      // storage disabled: alerts stay off, as before the click
    }
    renderDesktopButton();
  }

  function showDesktop(notification, group) {
    if (!desktopOn()) return false;
    const more = group && group.count > 1 ? " " + t("(+{count} more)", { count: group.count - 1 }) : "";
    // The tag makes the system replace rather than stack: a collapsed group,
    // or the same notification shown by two tabs of a browser without
    // BroadcastChannel.
    const tag = group ? "collapse:" + notification.collapse_key : "notification:" + notification.id;
    let alert;
    try {
      alert = new Notification(notification.title + more, { body: notification.body, tag });
    } catch (error) {
      return false; // a browser that makes them only from a service worker: toast instead
    }
    alert.addEventListener("click", () => {
      window.focus();
      alert.close();
      const href = linkable(notification.url);
      if (!href) return;
      if (new URL(href).origin === location.origin) location.assign(href);
      else window.open(href, "_blank", "noopener");
    });
    shown([notification.id]);
    return true;
  }

  desktopButton.addEventListener("click", toggleDesktop);
  window.addEventListener("storage", (event) => {
    if (event.key === DESKTOP_KEY) renderDesktopButton();
  });

  // --- Seen -----------------------------------------------------------------

  // Ids shown to the person, told to the server (which may leave them out of
  // an email digest) at most once a second: a burst of toasts is one frame,
  // and the frames stay within the user's budget however many tabs are open.
  const SEEN_FLUSH_MS = 1000;
  const SEEN_PER_FRAME = 1000;
  const seenToTell = new Set();
  const seenTold = new Set();
  let seenTimer = null;

  function shown(ids) {
    for (const id of ids) if (!seenTold.has(id)) seenToTell.add(id);
    if (seenToTell.size && !seenTimer) seenTimer = setTimeout(tellSeen, SEEN_FLUSH_MS);
  }

  function tellSeen() {
    seenTimer = null;
    const ids = [...seenToTell].slice(0, SEEN_PER_FRAME);
    if (!ids.length || !connection.markSeen(ids)) return; // the next hello tries again
    for (const id of ids) {
      seenToTell.delete(id);
      seenTold.add(id);
    }
    if (seenToTell.size) seenTimer = setTimeout(tellSeen, SEEN_FLUSH_MS);
  }

  // A toast popped up while this tab was hidden is seen when it comes back.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible") return;
    for (const toast of toastList.children) shown(toastIds(toast));
    if (!panel.hidden) renderInbox();
  });

  // --- Progress -------------------------------------------------------------

  function progressRow(taskId) {
    let row = progressRows.get(taskId);
    if (!row) {
      row = element("div", "nw-progress");
      row.dataset.task = taskId;
      const head = element("div", "nw-progress-head");
      head.append(element("strong", "nw-progress-title"), element("span", "nw-progress-percent"));
      const bar = element("progress", "nw-progress-bar");
      bar.max = 100;
      bar.value = 0;
      row.append(head, bar, element("p", "nw-progress-message", t("Waiting for a worker…")));
      if (config.cancelUrl) row.append(cancelButton(taskId));
      progressRows.set(taskId, row);
      progressList.append(row);
    }
    const title = taskTitles.get(taskId) || t("Working…");
    row.querySelector(".nw-progress-title").textContent = title;
    row.querySelector("progress").setAttribute("aria-label", title);
    return row;
  }

  function showProgress(message) {
    // A late update after the final notice would bring back a finished bar.
    if (finishedTasks.has(message.task_id)) return;
    // Reports sent from several processes can overtake each other on the way
    // (and a reconnect's snapshot can trail a live one): an older one than the
    // bar shows is ignored, so the bar never goes back. 0 means unnumbered.
    if (message.seq && message.seq <= (shownSeqs.get(message.task_id) || 0)) return;
    if (message.seq) shownSeqs.set(message.task_id, message.seq);
    const row = progressRow(message.task_id);
    row.querySelector("progress").value = message.percent;
    row.querySelector(".nw-progress-percent").textContent = Math.round(message.percent) + "%";
    row.querySelector(".nw-progress-message").textContent = message.message;
    delete row.dataset.stalled; // the task runs again, wherever that is
    noteReport(row, message.at);
  }

  // --- Quiet tasks ------------------------------------------------------------

  // A bar whose task has not reported for this long says it is still working,
  // rather than looking stuck at its last step.
  const QUIET_MS = 30000;

  function noteReport(row, at) {
    // The report's own time, so a bar brought back after a reload keeps its
    // age; never later than now, whatever the two clocks say.
    const reported = Date.parse(at);
    const now = Date.now();
    row.dataset.reportedAt = String(Number.isNaN(reported) ? now : Math.min(reported, now));
    showQuiet(row);
  }

  function showQuiet(row) {
    if (row.dataset.stalled) return; // it says so until the task reports again
    if (Date.now() - Number(row.dataset.reportedAt) >= QUIET_MS) {
      row.querySelector(".nw-progress-message").textContent = t("Still working…");
      checkWorker(row);
    }
  }

  // The server says a bar's worker is gone in a `stalled` message when the
  // socket opens; a quiet bar in a tab already open asks, at most once per
  // QUIET_MS, since nobody is left to tell it.
  async function checkWorker(row) {
    const now = Date.now();
    if (now - Number(row.dataset.checkedAt || 0) < QUIET_MS) return;
    row.dataset.checkedAt = String(now);
    const taskId = row.dataset.task;
    const reported = row.dataset.reportedAt;
    const state = await api("GET", "progress/" + encodeURIComponent(taskId) + "/");
    // A report that came meanwhile is newer news than the answer.
    if (state && state.stalled && row.dataset.reportedAt === reported) {
      showStalled({ task_id: taskId });
    }
  }

  function showStalled(message) {
    const row = progressRows.get(message.task_id);
    if (!row) return; // its bar ended meanwhile
    row.dataset.stalled = "true";
    row.querySelector(".nw-progress-message").textContent = t("Waiting for a worker…");
  }

  setInterval(() => {
    for (const row of progressRows.values()) if (row.dataset.reportedAt) showQuiet(row);
  }, 5000);

  function finishTask(taskId) {
    finishedTasks.add(taskId);
    shownSeqs.delete(taskId);
    const row = progressRows.get(taskId);
    if (row) row.remove(); // the final toast takes its place
    progressRows.delete(taskId);
  }

  function cancelButton(taskId) {
    // The bar stays until the "… cancelled" notice arrives, which removes it
    // in every tab at once.
    const button = element("button", "nw-text-button nw-progress-cancel", t("Cancel"));
    button.type = "button";
    button.addEventListener("click", async () => {
      button.disabled = true;
      if (!(await postCancel(taskId))) button.disabled = false;
    });
    return button;
  }

  async function postCancel(taskId) {
    const url = config.cancelUrl.replace("TASK_ID", encodeURIComponent(taskId));
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": config.csrfToken },
      });
    } catch (error) {
      return false; // offline: the button can be pressed again
    }
    if (response.status === 401) goToLogin();
    else if (!response.ok) console.warn("notifications: cancel answered", response.status);
    return response.ok;
  }

  // --- Helpers --------------------------------------------------------------

  function element(tag, className, text) {
    const node = document.createElement(tag);
    node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function titleOf(notification, className) {
    const href = linkable(notification.url);
    if (!href) return element("strong", className, notification.title);
    const link = element("a", className, notification.title);
    link.href = href;
    if (new URL(href).origin !== location.origin) link.rel = "noopener noreferrer";
    return link;
  }

  // --- Start ----------------------------------------------------------------

  // A page that starts a task may name its progress bar before the first
  // update arrives (or show it at once, at 0%).
  window.notifications = {
    track(taskId, title) {
      if (finishedTasks.has(taskId)) return; // it finished before the page heard back
      taskTitles.set(taskId, title);
      progressRow(taskId);
    },
  };

  const tabs = window.NotificationsTabs.elect("notifications:" + config.userId);
  renderDesktopButton();
  refreshInbox();
  connection = window.NotificationsTransport.connect({
    url: config.wsPath,
    resumeKey: "notifications:last-id:" + config.userId,
    onMessage: receive,
    onState,
  });
})();
