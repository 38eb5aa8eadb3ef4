// The notification socket without any drawing: connects, resumes after the
// newest id it has seen, reconnects with backoff, drops duplicates, and hands
// every message to the page. widget.js draws with it; any page may use it
// alone. No dependencies, no build step.
//
//   <script src="/static/notifications/transport.js"></script>
//   <script>
//     const connection = NotificationsTransport.connect({
//       onMessage(message) { if (message.type === "notification") console.log(message.title); },
//     });
//     // later: connection.markRead([id]) or connection.markRead("all");
//     // connection.markSeen([id]); connection.close();
//   </script>
//
// Options of connect() (only onMessage is needed on the site's own pages):
//   onMessage(message)  every message the server sends (hello, notification,
//                       progress, read, truncated, error), a notification only
//                       once however often it arrives;
//   onState(state)      "connecting", "connected" (after hello), "reconnecting",
//                       "offline", or "unauthenticated": closed with 4401, so
//                       it stopped for good and only signing in again helps;
//   url                 the socket's URL, absolute or relative to this page
//                       (http(s) means ws(s)); "/ws/notifications/" by default;
//   ticket()            for a page on another origin, which cannot send the
//                       session cookie: returns (a promise of) a fresh ticket
//                       from POST /api/notifications/ticket/. It is called
//                       before every attempt, since a ticket works only once;
//   resumeKey           a localStorage key that keeps the newest id seen, so
//                       a page opened later resumes there too (without it the
//                       resume point lives as long as the page).
(function () {
  "use strict";

  const DEFAULT_URL = "/ws/notifications/";
  const CLOSE_UNAUTHENTICATED = 4401; // the server's "log in again; do not retry"
  // "Too many frames" and "too many tabs": retrying soon would only be refused
  // again, so these wait the longest backoff. Every other close (4503, 1009, a
  // dropped network) retries on the ordinary backoff.
  const CLOSE_RATE_LIMITED = 4008;
  const CLOSE_TOO_MANY_SOCKETS = 4429;
  const RETRY_BASE_MS = 1000;
  const RETRY_CAP_MS = 30000;

  function connect(options) {
    const onMessage = options.onMessage || (() => {});
    const onState = options.onState || (() => {});
    const seen = new Set(); // notification ids already handed on
    let socket = null;
    let opening = false; // waiting for a ticket
    let live = false; // the current socket has said hello
    let attempt = 0; // reconnections since the last good one, for the backoff
    let retryTimer = null;
    let everConnected = false;
    let stopped = false; // after 4401 or close(): no more attempts
    let state = null;
    let lastId = loadLastId();

    function setState(next) {
      if (state === next) return;
      state = next;
      onState(next);
    }

    // --- Where to resume --------------------------------------------------
    // The newest notification id seen; the next socket asks for ?after=ID and
    // the server first sends everything that came meanwhile.

    function loadLastId() {
      if (!options.resumeKey) return null;
      try {
        const raw = localStorage.getItem(options.resumeKey);
        const value = raw === null ? NaN : Number(raw);
        return Number.isSafeInteger(value) && value >= 0 ? value : null;
      } catch (error) {
        return null; // storage disabled: resume from the server's newest instead
      }
    }

    function saveLastId(id) {
      lastId = id;
      if (!options.resumeKey) return;
      try {
        localStorage.setItem(options.resumeKey, String(id));
      } catch (error) {
        // storage disabled or full: this page still resumes from memory
      }
    }

    // --- The socket -------------------------------------------------------

    function socketUrl(ticket) {
      const url = new URL(options.url || DEFAULT_URL, location.href);
      if (url.protocol === "https:") url.protocol = "wss:";
      else if (url.protocol === "http:") url.protocol = "ws:";
      if (lastId !== null) url.searchParams.set("after", lastId);
      if (ticket) url.searchParams.set("ticket", ticket);
      return url.href;
    }

    function open() {
      retryTimer = null;
      if (!options.ticket) {
        start(socketUrl(null));
        return;
      }
      opening = true;
      Promise.resolve()
        .then(options.ticket)
        .then(
          (ticket) => {
            opening = false;
            if (!stopped) start(socketUrl(ticket));
          },
          (error) => {
            opening = false;
            if (stopped) return;
            console.warn("notifications: no ticket:", error);
            retryLater(null);
          },
        );
    }

    function start(url) {
      socket = new WebSocket(url);
      socket.addEventListener("message", (event) => receive(JSON.parse(event.data)));
      socket.addEventListener("close", onClose);
    }

    function onClose(event) {
      socket = null;
      live = false;
      if (stopped) return;
      if (event.code === CLOSE_UNAUTHENTICATED) {
        stop();
        setState("unauthenticated");
        return;
      }
      retryLater(event.code);
    }

    function retryLater(code) {
      // Retry even when the browser says it is offline: that flag can be
      // wrong, and when it is right the "online" event cuts the wait short.
      if (!navigator.onLine) setState("offline");
      else setState(everConnected ? "reconnecting" : "connecting");
      if (code === CLOSE_RATE_LIMITED || code === CLOSE_TOO_MANY_SOCKETS) {
        attempt = Math.max(attempt, Math.ceil(Math.log2(RETRY_CAP_MS / RETRY_BASE_MS)));
      }
      // Exponential backoff with jitter, capped: after a server restart the
      // pages come back spread out instead of all at once, and a long outage
      // costs one attempt per half-minute at most.
      const ceiling = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** attempt);
      attempt += 1;
      retryTimer = setTimeout(open, ceiling / 2 + (Math.random() * ceiling) / 2);
    }

    function onOnline() {
      if (socket || opening) {
        setState(live ? "connected" : "reconnecting"); // it survived the blip
      } else {
        clearTimeout(retryTimer); // the network is back: no reason to wait
        open();
      }
    }

    function onOffline() {
      setState("offline");
    }

    function stop() {
      stopped = true;
      clearTimeout(retryTimer);
      window.removeEventListener("online", onOnline);
      window.removeEventListener("offline", onOffline);
    }

    // --- Messages ---------------------------------------------------------

    function receive(message) {
      if (message.type === "hello") {
        attempt = 0; // a signed-in session, not merely an open socket
        live = true;
        everConnected = true;
        setState("connected");
        // First visit, or a resume point from a database that has since
        // been reset: start from the server's newest.
        if (lastId === null || lastId > message.last_id) saveLastId(message.last_id);
      } else if (message.type === "notification") {
        // Around a reconnect the server can send one twice; the id tells.
        if (seen.has(message.id)) return;
        seen.add(message.id);
        if (message.id > (lastId || 0)) saveLastId(message.id);
      } else if (message.type === "error") {
        console.warn("notifications: the server refused a frame:", message.code, message.detail);
      }
      onMessage(message);
    }

    window.addEventListener("online", onOnline);
    window.addEventListener("offline", onOffline);
    setState("connecting");
    open();

    return {
      // Marks notifications read for every page of the user: `ids` is a list
      // of ids or "all". False when there is no live socket to say it on.
      markRead(ids) {
        if (!live) return false;
        socket.send(JSON.stringify({ type: "read", ids }));
        return true;
      },
      // Tells the server these notifications were shown to the person (a
      // toast, a system notification, the open inbox). False without a live
      // socket; the caller keeps them for later.
      markSeen(ids) {
        if (!live) return false;
        socket.send(JSON.stringify({ type: "seen", ids }));
        return true;
      },
      close() {
        stop();
        if (socket) socket.close(1000);
      },
    };
  }

  window.NotificationsTransport = { connect };
})();
