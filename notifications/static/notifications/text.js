// The client's words in the page's language: {% notifications_widget %} renders
// them as a JSON catalogue (<script id="nw-text">, English source → translation,
// from notifications/text.py), and `notificationsText(source, values)` looks
// one up and fills its {placeholders}. A string the catalogue lacks stays in
// English. `notificationsText.locale` is the page's language for dates (the
// widget's data-language, else <html lang>), or undefined (the browser's own)
// where that is no tag Intl takes ("en_US" would make it throw). Loaded before
// the other scripts that draw words.
window.notificationsText = (function () {
  "use strict";

  const node = document.getElementById("nw-text");
  let catalogue = {};
  try {
    catalogue = node ? JSON.parse(node.textContent) : {};
  } catch (error) {
    // a page that mangled the catalogue: English, rather than nothing
  }
  function text(source, values) {
    let words = Object.prototype.hasOwnProperty.call(catalogue, source) ? catalogue[source] : source;
    for (const [name, value] of Object.entries(values || {})) {
      words = words.split("{" + name + "}").join(String(value));
    }
    return words;
  }

  const widget = document.querySelector("[data-notifications]");
  const tag = (widget && widget.dataset.language) || document.documentElement.lang;
  try {
    text.locale = tag ? Intl.getCanonicalLocales(tag)[0] : undefined;
  } catch (error) {
    text.locale = undefined;
  }
  return text;
})();
