// Which of a person's open tabs shows a notification. Every tab gets every
// notification (each has its own socket) and updates its badge and inbox, but
// only one should pop up a toast, or, when no tab is visible, a system
// notification. The tabs agree over a BroadcastChannel; widget.js asks
//
//   const tabs = NotificationsTabs.elect("notifications:" + userId);
//   tabs.decide(id, (rank) => ...);  // called in exactly one tab, with its
//                                    // rank: 2 focused, 1 visible, 0 hidden
//
// How the tabs agree: a tab that receives notification `id` claims it with
// its rank and waits SETTLE_MS for the others' claims; the best claim wins
// (higher rank, then the lower tab id), and every claimant saw the same
// claims, so exactly one shows it. A tab that receives the notification more
// than half a settle window after the first claim it heard stays out: the
// others may be deciding without it. A tab that knows no other tab decides at
// once, unless it opened less than a settle window ago: the others' answers to
// its "hello" may still be on the way, and a tab that took itself for alone
// would show what an older tab also shows. Without BroadcastChannel every tab
// shows every notification.
(function () {
  "use strict";

  // Long enough for a claim to reach every tab (BroadcastChannel takes a few
  // milliseconds within one browser), short enough not to feel late.
  const SETTLE_MS = 300;
  // Tabs say they are alive this often (and when they open, and "bye" when
  // they go); one unheard for PEER_TTL_MS is gone. Browsers run a long-hidden
  // tab's timers once a minute, so the limit is longer than that: hidden tabs
  // that thought themselves alone would each show the notification. Only "is
  // anybody else here" depends on it: the claims decide the rest.
  const HEARTBEAT_MS = 20000;
  const PEER_TTL_MS = 90000;
  const REMEMBERED_IDS = 500; // claims kept, for a copy that arrives late

  function rank() {
    if (document.visibilityState !== "visible") return 0;
    return document.hasFocus() ? 2 : 1;
  }

  function beats(a, b) {
    return a.rank !== b.rank ? a.rank > b.rank : a.tab < b.tab;
  }

  function elect(name) {
    if (typeof BroadcastChannel !== "function") {
      return { decide: (id, show) => show(rank()) };
    }
    // The oldest tab wins a tie; the random part separates two opened at once.
    const self = performance.timeOrigin + Math.random();
    const opened = Date.now();
    const channel = new BroadcastChannel(name);
    const peers = new Map(); // tab id -> when last heard
    const claims = new Map(); // notification id -> { heard, best }

    function post(kind, fields) {
      channel.postMessage({ kind, tab: self, ...fields });
    }

    function note(id, claim) {
      let known = claims.get(id);
      if (!known) {
        known = { heard: Date.now(), best: claim };
        claims.set(id, known);
        // Map keeps insertion order: the first key is the oldest claim.
        if (claims.size > REMEMBERED_IDS) claims.delete(claims.keys().next().value);
      } else if (beats(claim, known.best)) {
        known.best = claim;
      }
      return known;
    }

    function alone() {
      const now = Date.now();
      for (const [tab, heard] of peers) {
        if (now - heard < PEER_TTL_MS) return false;
        peers.delete(tab);
      }
      return true;
    }

    channel.addEventListener("message", ({ data }) => {
      if (!data || typeof data !== "object") return; // not one of ours
      if (data.kind === "claim") note(data.id, { tab: data.tab, rank: data.rank });
      else if (data.kind === "bye") peers.delete(data.tab);
      else peers.set(data.tab, Date.now()); // "here", or "hello" from a new tab
      if (data.kind === "hello") post("here"); // so it knows at once it is not alone
    });
    post("hello");
    setInterval(() => post("here"), HEARTBEAT_MS);
    window.addEventListener("pagehide", () => post("bye"));

    return {
      decide(id, show) {
        const earlier = claims.get(id);
        if (earlier && Date.now() - earlier.heard > SETTLE_MS / 2) return;
        const mine = { tab: self, rank: rank() };
        post("claim", { id, rank: mine.rank });
        const known = note(id, mine);
        if (alone() && Date.now() - opened >= SETTLE_MS) {
          if (known.best === mine) show(mine.rank);
          return;
        }
        setTimeout(() => {
          if (known.best === mine) show(mine.rank);
        }, SETTLE_MS);
      },
    };
  }

  window.NotificationsTabs = { elect };
})();
