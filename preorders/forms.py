"""The shopper's pre-order forms. The address and card parts are the checkout's
(orders.forms.AddressForm, orders.forms.CardForm); the rules (limits, room, the window) are
the services', so these only check the shape of the input."""

from django import forms

from catalog.models import Variant
from orders.models import Address


def variant_label(variant: Variant) -> str:
    return variant.option_label or variant.sku


class VariantQuantityForm(forms.Form):
    """An option of the batch's product and a number of units. The options come as a list
    (already fetched with the page), so validating them costs no query."""

    variant = forms.TypedChoiceField(coerce=int, label="Option")
    quantity = forms.IntegerField(min_value=1, initial=1, label="Units")

    def __init__(self, *args, variants, max_quantity: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._variants = {variant.pk: variant for variant in variants}
        self.fields["variant"].choices = [
            (variant.pk, variant_label(variant)) for variant in variants
        ]
        if max_quantity:
            # A hint for the browser; the per-customer limit itself is the service's rule,
            # so its message (how many are left to you) reaches the shopper.
            self.fields["quantity"].widget.attrs["max"] = max_quantity

    def clean_variant(self) -> Variant:
        return self._variants[self.cleaned_data["variant"]]


class ReserveForm(VariantQuantityForm):
    """The reserve form's own part: option, units, where to ship (a saved address or the
    new one in the AddressForm beside it), and the form's one-time key."""

    saved_address = forms.TypedChoiceField(
        coerce=int, required=False, empty_value=None, label="Ship to"
    )
    request_key = forms.CharField(min_length=8, max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args, addresses: list[Address] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self._addresses = {address.pk: address for address in addresses}
        self.fields["saved_address"].choices = [("", "A new address")] + [
            (address.pk, str(address)) for address in addresses
        ]

    def clean_saved_address(self) -> Address | None:
        chosen = self.cleaned_data.get("saved_address")
        return self._addresses[chosen] if chosen else None


class ReservationChangeForm(VariantQuantityForm):
    pass


class WaitlistForm(VariantQuantityForm):
    pass
