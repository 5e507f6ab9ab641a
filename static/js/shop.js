/* Shop pages: small enhancements on top of pages that work without JavaScript.
 * Loaded with `defer` from the pages that need it; no inline handlers (the CSP forbids them). */
(function () {
  "use strict";

  // The option chips submit through htmx on change: their "Update" button is for no-JS only.
  if (window.htmx) {
    document.querySelectorAll("[data-no-js]").forEach(function (el) { el.hidden = true; });
  }

  // Copy buttons: <button data-copy="#input-id">; the text stays selectable without JS.
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var source = document.querySelector(button.getAttribute("data-copy"));
      if (!source) { return; }
      var text = source.value || source.textContent;
      var done = function () {
        var label = button.textContent;
        button.textContent = "Copied";
        window.setTimeout(function () { button.textContent = label; }, 2000);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { source.select(); });
      } else if (source.select) {
        source.select();
        document.execCommand("copy");
        done();
      }
    });
  });

  // The picture overlay (a CSS :target view): Escape closes it as the close link does.
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && window.location.hash.indexOf("#image-") === 0) {
      window.location.hash = "product-gallery";
    }
  });
  // Checkout: Enter in the voucher field applies the code (not "place order").
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !event.target.matches || !event.target.matches("#checkout-code-input")) { return; }
    var apply = document.querySelector('#checkout-totals button[value="apply"]');
    if (apply) { event.preventDefault(); apply.click(); }
  });
})();
