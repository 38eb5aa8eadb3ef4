// The preferences panel inside the inbox: which channels beyond the inbox
// (push, the email digest) each level takes, how often the digest comes, and
// quiet hours for push; the same per kind, for the kinds the operator lists
// (NOTIFICATIONS_KINDS) or the person set. It reads and replaces them through
// the preferences API (GET, then PUT with the CSRF token). Loaded after
// widget.js; no dependencies, no build step.
(function () {
  "use strict";

  const root = document.querySelector("[data-notifications]");
  if (!root || !root.dataset.preferencesUrl) return;

  const config = root.dataset;
  const t = window.notificationsText;
  const panel = root.querySelector("[data-nw-panel]");
  const toggle = root.querySelector("[data-nw-prefs-toggle]");
  const form = root.querySelector("[data-nw-prefs]");
  const CHANNELS = [
    ["push", t("Push")],
    ["email", t("Email digest")],
  ];
  const DIGESTS = [
    ["off", t("Off")],
    ["hourly", t("Hourly")],
    ["daily", t("Daily")],
  ];
  const LEVEL_NAMES = {
    info: t("Info"),
    success: t("Success"),
    warning: t("Warning"),
    error: t("Error"),
  };

  let current = null; // the last preferences the server answered

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function browserTimeZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    } catch (error) {
      return "UTC";
    }
  }

  async function request(method, body) {
    const options = {
      method,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": config.csrfToken },
    };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(config.preferencesUrl, options);
    } catch (error) {
      return { error: t("You seem to be offline; try again.") };
    }
    if (response.status === 401) {
      location.assign(config.loginUrl);
      return { error: t("Please sign in again.") };
    }
    let answer = {};
    try {
      answer = await response.json();
    } catch (error) {
      // a proxy's HTML error page: reported below by its status
    }
    if (!response.ok) return { error: answer.error || t("Saving failed ({status}).", { status: response.status }) };
    return { preferences: answer };
  }

  // --- Drawing ------------------------------------------------------------

  function draw(prefs) {
    form.replaceChildren();
    form.append(
      channelTable(t("Besides the inbox, tell me by"), t("Level"), "level", prefs.levels, prefs.critical, LEVEL_NAMES),
    );
    if (Object.keys(prefs.kinds).length) {
      form.append(channelTable(t("And for these kinds of notice"), t("Kind"), "kind", prefs.kinds, [], {}));
    }

    const digest = element("select");
    digest.name = "digest";
    for (const [value, label] of DIGESTS) {
      const option = element("option", "", label);
      option.value = value;
      digest.append(option);
    }
    digest.value = prefs.digest;
    form.append(labelled(t("Email digest of what I have not seen"), digest));

    const language = element("select");
    language.name = "language";
    for (const { code, name } of [{ code: "", name: t("The site's language") }, ...(prefs.languages || [])]) {
      const option = element("option", "", name);
      option.value = code;
      language.append(option);
    }
    language.value = prefs.language || "";
    form.append(labelled(t("Language of my emails"), language));

    const quiet = element("fieldset", "nw-prefs-group");
    quiet.append(element("legend", "", t("Quiet hours for push")));
    const on = element("input");
    on.type = "checkbox";
    on.name = "quiet";
    on.checked = prefs.quiet_hours !== null;
    quiet.append(labelled(t("Hold push back between"), on, true));
    const start = timeInput("quiet_start", prefs.quiet_hours ? prefs.quiet_hours.start : "22:00");
    const end = timeInput("quiet_end", prefs.quiet_hours ? prefs.quiet_hours.end : "07:00");
    quiet.append(labelled(t("From"), start), labelled(t("Until"), end));
    const zone = element("input");
    zone.name = "time_zone";
    zone.autocomplete = "off";
    // Quiet hours not set yet: offer this browser's zone rather than UTC.
    zone.value = prefs.quiet_hours === null ? browserTimeZone() : prefs.time_zone;
    quiet.append(labelled(t("Time zone"), zone));
    form.append(quiet);

    const actions = element("div", "nw-prefs-actions");
    const save = element("button", "nw-prefs-save", t("Save"));
    save.type = "submit";
    const status = element("p", "nw-prefs-status");
    status.setAttribute("role", "status");
    status.dataset.nwPrefsStatus = "";
    actions.append(save, status);
    form.append(actions);
  }

  // A table of checkboxes, one row per level (or kind) and one column per
  // channel; a critical row is shown on and cannot be switched off.
  function channelTable(legend, heading, key, rows, critical, names) {
    const group = element("fieldset", "nw-prefs-group");
    group.append(element("legend", "", legend));
    const table = element("table", "nw-prefs-table");
    const head = element("tr");
    head.append(element("th", "", heading));
    for (const [, label] of CHANNELS) head.append(element("th", "", label));
    table.append(head);
    for (const [name, chosen] of Object.entries(rows)) {
      const locked = critical.includes(name);
      const row = element("tr");
      const title = element("th", "", names[name] || name);
      title.scope = "row";
      if (locked) title.append(element("span", "nw-prefs-note", " " + t("(always)")));
      row.append(title);
      for (const [channel, label] of CHANNELS) {
        const cell = element("td");
        const box = element("input");
        box.type = "checkbox";
        box.dataset[key] = name;
        box.dataset.channel = channel;
        box.checked = locked || chosen.includes(channel);
        box.disabled = locked;
        const what = key === "kind" ? t("{kind} notices", { kind: name }) : names[name] || name;
        box.setAttribute("aria-label", t("{channel} for {what}", { channel: label, what }));
        cell.append(box);
        row.append(cell);
      }
      table.append(row);
    }
    group.append(table);
    return group;
  }

  function labelled(text, control, after) {
    const label = element("label", "nw-prefs-field");
    const words = element("span", "", text);
    if (after) label.append(control, words);
    else label.append(words, control);
    return label;
  }

  function timeInput(name, value) {
    const input = element("input");
    input.type = "time";
    input.name = name;
    input.value = value;
    return input;
  }

  function collected() {
    const quietOn = form.elements.quiet.checked;
    return {
      levels: checked("level", current.levels),
      kinds: checked("kind", current.kinds),
      digest: form.elements.digest.value,
      quiet_hours: quietOn
        ? { start: form.elements.quiet_start.value, end: form.elements.quiet_end.value }
        : null,
      time_zone: form.elements.time_zone.value.trim() || "UTC",
      language: form.elements.language.value,
    };
  }

  function checked(key, rows) {
    const chosen = {};
    for (const name of Object.keys(rows)) chosen[name] = [];
    for (const box of form.querySelectorAll("input[data-" + key + "]")) {
      if (box.checked) chosen[box.dataset[key]].push(box.dataset.channel);
    }
    return chosen;
  }

  function say(text, failed) {
    const status = form.querySelector("[data-nw-prefs-status]");
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("nw-prefs-failed", Boolean(failed));
  }

  // --- Opening and saving -------------------------------------------------

  async function open() {
    panel.classList.add("nw-prefs-open");
    form.hidden = false;
    toggle.setAttribute("aria-expanded", "true");
    form.replaceChildren(element("p", "nw-prefs-status", t("Loading…")));
    const answer = await request("GET");
    if (answer.error) {
      form.replaceChildren(element("p", "nw-prefs-status nw-prefs-failed", answer.error));
      return;
    }
    current = answer.preferences;
    draw(current);
  }

  function close() {
    panel.classList.remove("nw-prefs-open");
    form.hidden = true;
    toggle.setAttribute("aria-expanded", "false");
  }

  toggle.addEventListener("click", () => (form.hidden ? open() : close()));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!current) return;
    const save = form.querySelector(".nw-prefs-save");
    save.disabled = true;
    say(t("Saving…"));
    const answer = await request("PUT", collected());
    save.disabled = false;
    if (answer.error) {
      say(answer.error, true);
      return;
    }
    current = answer.preferences;
    say(t("Saved."));
  });
})();
