// Live notifications for a signed-in user: one WebSocket per tab, toasts,
// task progress bars and an unread badge. No dependencies, no build step.
//
// Every piece of text from the server goes into the page with textContent,
// never as HTML: a notification title is data, not markup.
(function () {
  "use strict";

  const root = document.querySelector("[data-notifications]");
  if (!root) return;

  const loginUrl = root.dataset.loginUrl || "/accounts/login/";
  const toasts = root.querySelector("[data-toasts]");
  const progressList = root.querySelector("[data-progress]");
  const badge = root.querySelector("[data-unread]");
  const status = root.querySelector("[data-status]");

  const seen = new Set();      // ids already shown, so a replay never shows one twice
  let lastId = null;           // resume point sent as ?after= when reconnecting
  let attempt = 0;

  function socketUrl() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const after = lastId === null ? "" : "?after=" + lastId;
    return scheme + "//" + location.host + "/ws/notifications/" + after;
  }

  function setStatus(state) {
    if (status) {
      status.dataset.state = state;
      status.textContent = state;
    }
  }

  function setUnread(count) {
    if (!badge) return;
    badge.textContent = String(count);
    badge.hidden = count === 0;
  }

  function safeUrl(url) {
    // Only http(s) or same-origin relative links; never javascript: and the like.
    if (!url) return null;
    try {
      const parsed = new URL(url, location.href);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (e) {
      return null;
    }
  }

  function toast(n) {
    const item = document.createElement("div");
    item.className = "toast toast-" + n.level;
    item.setAttribute("role", n.level === "error" ? "alert" : "status");
    item.dataset.id = n.id;
    const title = document.createElement("strong");
    title.textContent = n.title;
    item.appendChild(title);
    if (n.body) {
      const body = document.createElement("p");
      body.textContent = n.body;
      item.appendChild(body);
    }
    const href = safeUrl(n.url);
    if (href) {
      const link = document.createElement("a");
      link.href = href;
      link.textContent = "Open";
      item.appendChild(link);
    }
    const close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.addEventListener("click", () => item.remove());
    item.appendChild(close);
    toasts.appendChild(item);
    // Good news fades on its own; errors wait for the person to dismiss them.
    if (n.level === "success" || n.level === "info") setTimeout(() => item.remove(), 6000);
  }

  function progressBar(taskId) {
    let row = progressList.querySelector('[data-task="' + CSS.escape(taskId) + '"]');
    if (!row) {
      row = document.createElement("div");
      row.className = "progress-row";
      row.dataset.task = taskId;
      const label = document.createElement("span");
      const bar = document.createElement("progress");
      bar.max = 100;
      bar.value = 0;
      row.append(label, bar);
      progressList.appendChild(row);
    }
    return row;
  }

  const handlers = {
    hello(msg) {
      setUnread(msg.unread);
      if (lastId === null) lastId = msg.last_id;
    },
    notification(n) {
      if (seen.has(n.id)) return;
      seen.add(n.id);
      lastId = Math.max(lastId || 0, n.id);
      if (n.task_id) {
        const row = progressList.querySelector('[data-task="' + CSS.escape(n.task_id) + '"]');
        if (row) row.remove();
      }
      toast(n);
      setUnread(Number(badge ? badge.textContent : 0) + 1);
    },
    progress(msg) {
      const row = progressBar(msg.task_id);
      row.querySelector("span").textContent = msg.message || msg.percent + "%";
      row.querySelector("progress").value = msg.percent;
    },
    read(msg) {
      setUnread(msg.unread);
    },
    error(msg) {
      console.warn("notifications: server refused a frame:", msg.code, msg.detail);
    },
  };

  function connect() {
    setStatus(attempt === 0 ? "connecting" : "reconnecting");
    const ws = new WebSocket(socketUrl());
    ws.addEventListener("open", () => {
      attempt = 0;
      setStatus("connected");
    });
    ws.addEventListener("message", (event) => {
      const msg = JSON.parse(event.data);
      const handle = handlers[msg.type];
      if (handle) handle(msg);
    });
    ws.addEventListener("close", (event) => {
      if (event.code === 4401) {
        // The session is gone: retrying cannot help, logging in can.
        setStatus("offline");
        location.href = loginUrl + "?next=" + encodeURIComponent(location.pathname);
        return;
      }
      setStatus("reconnecting");
      // Exponential backoff with full jitter, capped at 30 s, so a server
      // restart is not met by every tab at the same instant.
      const delay = Math.random() * Math.min(30000, 500 * 2 ** attempt);
      attempt += 1;
      setTimeout(connect, delay);
    });
  }

  window.notificationsClient = { startTask };

  function startTask(name) {
    const csrf = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return fetch("/tasks/start/", {
      method: "POST",
      headers: { "X-CSRFToken": csrf ? decodeURIComponent(csrf[1]) : "" },
      body: new URLSearchParams({ task: name }),
      credentials: "same-origin",
    }).then((response) => response.json());
  }

  connect();
})();
