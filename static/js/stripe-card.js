/* Stripe's Payment Element on the checkout and pay pages, and 3-D Secure on the
   authentication page. Loaded only when Stripe keys are configured. The card never touches
   our server: Stripe.js turns it into a PaymentMethod id that the form posts. */
(function () {
  "use strict";
  if (typeof Stripe === "undefined") { return; }

  var mount = document.getElementById("stripe-payment-element");
  if (mount) {
    var stripe = Stripe(mount.dataset.publishableKey);
    var elements = stripe.elements({
      mode: "setup",
      currency: (mount.dataset.currency || "usd").toLowerCase(),
      paymentMethodCreation: "manual",
    });
    elements.create("payment").mount(mount);
    var form = mount.closest("form");
    var hidden = form.querySelector("input[name=payment_method]");
    var usingSaved = function () {
      var saved = form.querySelector("select[name=saved_card]");
      return saved && saved.value;
    };
    form.addEventListener("submit", function (event) {
      if (hidden.value || usingSaved()) { return; }
      event.preventDefault();
      elements.submit().then(function (result) {
        if (result.error) { throw result.error; }
        return stripe.createPaymentMethod({ elements: elements });
      }).then(function (result) {
        if (result.error) { throw result.error; }
        hidden.value = result.paymentMethod.id;
        form.submit();
      }).catch(function (error) {
        var box = document.getElementById("stripe-errors");
        if (box) { box.textContent = error.message; }
      });
    });
  }

  var auth = document.getElementById("stripe-authenticate");
  if (auth) {
    var stripeAuth = Stripe(auth.dataset.publishableKey);
    stripeAuth.handleNextAction({ clientSecret: auth.dataset.clientSecret }).then(function (result) {
      var intent = result.paymentIntent || (result.error && result.error.payment_intent);
      var url = new URL(auth.dataset.returnUrl);
      url.searchParams.set("payment_intent", intent ? intent.id : "unknown");
      window.location.assign(url.toString());
    });
  }
})();
