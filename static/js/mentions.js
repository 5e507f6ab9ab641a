/* @mention autocomplete for the post and comment composers.
 * A field wrapper with data-mentions="<url>" (communities:mention_suggestions) gets a list of
 * matching members under its textarea while the word before the caret starts with "@";
 * arrow keys move, Enter or Tab inserts "@handle ", Escape closes. No inline script: the CSP
 * forbids them. */
(function () {
  "use strict";
  var MENTION = /(^|[^\w@])@([\w.\-]{0,30})$/;
  var counter = 0;

  function setup(wrapper) {
    var textarea = wrapper.querySelector("textarea");
    if (!textarea || textarea.dataset.mentionsReady) return;
    textarea.dataset.mentionsReady = "1";
    var url = wrapper.getAttribute("data-mentions");
    var list = document.createElement("ul");
    list.id = "mention-list-" + (++counter);
    list.className = "mention-list";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "Members to mention");
    list.hidden = true;
    textarea.insertAdjacentElement("afterend", list);
    textarea.setAttribute("aria-autocomplete", "list");
    textarea.setAttribute("aria-controls", list.id);
    textarea.setAttribute("aria-expanded", "false");
    var timer = null, active = -1, asked = "", controller = null;

    function options() { return Array.prototype.slice.call(list.querySelectorAll("[data-handle]")); }
    function close() {
      list.hidden = true; list.innerHTML = ""; active = -1;
      textarea.setAttribute("aria-expanded", "false");
      textarea.removeAttribute("aria-activedescendant");
    }
    function highlight(index) {
      var all = options();
      if (!all.length) return;
      active = (index + all.length) % all.length;
      all.forEach(function (option, i) { option.setAttribute("aria-selected", i === active ? "true" : "false"); });
      textarea.setAttribute("aria-activedescendant", all[active].id);
    }
    function current() {
      var before = textarea.value.slice(0, textarea.selectionStart);
      var match = MENTION.exec(before);
      return match ? { prefix: match[2], start: before.length - match[2].length - 1 } : null;
    }
    function choose(option) {
      var found = current();
      if (!found || !option) return close();
      var handle = "@" + option.getAttribute("data-handle") + " ";
      var end = textarea.selectionStart;
      textarea.value = textarea.value.slice(0, found.start) + handle + textarea.value.slice(end);
      var caret = found.start + handle.length;
      textarea.setSelectionRange(caret, caret);
      textarea.focus();
      close();
    }
    function ask() {
      var found = current();
      if (!found || found.prefix.length < 1) return close();
      if (found.prefix === asked && !list.hidden) return;
      asked = found.prefix;
      if (controller) controller.abort();
      controller = new AbortController();
      fetch(url + "?q=" + encodeURIComponent(found.prefix), {
        headers: { "HX-Request": "true" }, credentials: "same-origin", signal: controller.signal
      }).then(function (response) {
        return response.ok ? response.text() : "";
      }).then(function (html) {
        if (!html.trim()) return close();
        list.innerHTML = html;
        list.hidden = false;
        textarea.setAttribute("aria-expanded", "true");
        options().forEach(function (option) { option.setAttribute("aria-selected", "false"); });
        active = -1;
      }).catch(function () { /* aborted by a newer keystroke, or offline: nothing to show */ });
    }

    textarea.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(ask, 150);
    });
    textarea.addEventListener("keydown", function (event) {
      if (list.hidden) return;
      if (event.key === "ArrowDown") { event.preventDefault(); highlight(active + 1); }
      else if (event.key === "ArrowUp") { event.preventDefault(); highlight(active - 1); }
      else if ((event.key === "Enter" || event.key === "Tab") && active >= 0) {
        event.preventDefault(); choose(options()[active]);
      } else if (event.key === "Escape") { event.preventDefault(); close(); }
    });
    textarea.addEventListener("blur", function () { setTimeout(close, 200); });
    list.addEventListener("mousedown", function (event) {
      var option = event.target.closest("[data-handle]");
      if (option) { event.preventDefault(); choose(option); }
    });
  }

  function init(root) {
    (root || document).querySelectorAll("[data-mentions]").forEach(setup);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { init(); });
  else init();
  document.addEventListener("htmx:afterSwap", function (event) { init(event.target); });
})();
