/* Fanhub progressive enhancement. The site works without this file.
 * Loaded with `defer`; contains no inline handlers, so it is CSP-friendly. */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // htmx: send Django's CSRF token with every non-GET request.
  document.body.addEventListener("htmx:configRequest", function (event) {
    var token = csrfToken();
    if (token) {
      event.detail.headers["X-CSRFToken"] = token;
    }
  });

  // Messages: add a close button; success/info messages fade out on their own.
  function dismiss(el) {
    el.classList.add("is-hiding");
    window.setTimeout(function () { el.remove(); }, 320);
  }

  function enhanceMessages(root) {
    (root || document).querySelectorAll(".messages .message:not([data-enhanced])").forEach(function (el) {
      el.setAttribute("data-enhanced", "");
      var btn = document.createElement("button");
      btn.type = "button";
      btn.className = "message-close";
      btn.setAttribute("aria-label", "Dismiss message");
      btn.textContent = "\u00d7";
      btn.addEventListener("click", function () { dismiss(el); });
      el.appendChild(btn);
      if (el.classList.contains("success") || el.classList.contains("info")) {
        var timer = window.setTimeout(function () { dismiss(el); }, 6000);
        // Keep the message while the user is reading or interacting with it.
        ["mouseenter", "focusin"].forEach(function (type) {
          el.addEventListener(type, function () { window.clearTimeout(timer); }, { once: true });
        });
      }
    });
  }
  enhanceMessages(document);
  document.body.addEventListener("htmx:afterSwap", function (event) { enhanceMessages(event.target); });

  // Dropdown menus (<details class="menu">): close on outside click and on Escape.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) { menu.removeAttribute("open"); }
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      menu.removeAttribute("open");
      var summary = menu.querySelector("summary");
      if (summary) { summary.focus(); }
    });
    var toggle = document.getElementById("nav-toggle");
    if (toggle && toggle.checked) { toggle.checked = false; }
  });
})();
