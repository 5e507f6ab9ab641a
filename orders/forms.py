from django import forms
from django.conf import settings
from django_countries import countries

from orders.models import Address


class AddToCartForm(forms.Form):
    variant = forms.IntegerField(widget=forms.HiddenInput)
    quantity = forms.IntegerField(
        min_value=1, max_value=settings.CART_MAX_QUANTITY_PER_LINE, initial=1
    )


class CartQuantityForm(forms.Form):
    line = forms.IntegerField(widget=forms.HiddenInput)
    quantity = forms.IntegerField(min_value=0, max_value=settings.CART_MAX_QUANTITY_PER_LINE)


def country_choices() -> list[tuple[str, str]]:
    return [("", "Choose a country")] + [(country.code, country.name) for country in countries]


class AddressForm(forms.ModelForm):
    """A shipping address. The country is stored as its ISO 3166 two-letter code, chosen from
    django-countries' maintained list; a typed code ("de") or English name ("Germany") is
    accepted too, so a form filled in by a script or an old browser still works."""

    country = forms.CharField(
        label="Country",
        max_length=100,
        widget=forms.Select(choices=country_choices, attrs={"autocomplete": "shipping country"}),
    )

    class Meta:
        model = Address
        fields = ["full_name", "line1", "line2", "city", "postal_code", "country", "phone"]
        # Let browsers fill the address in (autocomplete tokens from the HTML standard).
        widgets = {
            name: forms.TextInput(attrs={"autocomplete": token})
            for name, token in {
                "full_name": "shipping name",
                "line1": "shipping address-line1",
                "line2": "shipping address-line2",
                "city": "shipping address-level2",
                "postal_code": "shipping postal-code",
                "phone": "shipping tel",
            }.items()
        }

    def clean_country(self) -> str:
        typed = self.cleaned_data["country"].strip()
        code = countries.alpha2(typed) or countries.by_name(typed, insensitive=True)
        if not code:
            raise forms.ValidationError("Choose a country from the list.")
        return code


class CheckoutForm(forms.Form):
    """Address (a saved one or a new one), shipping method, and the card."""

    saved_address = forms.ModelChoiceField(
        queryset=Address.objects.none(), required=False, empty_label="A new address"
    )
    save_address = forms.BooleanField(
        required=False, initial=True, label="Save this address for next time"
    )
    shipping_method = forms.ChoiceField(widget=forms.RadioSelect)

    def __init__(self, *args, user, shipping_choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["saved_address"].queryset = Address.objects.filter(user=user)
        self.fields["shipping_method"].choices = shipping_choices
        self.fields["shipping_method"].initial = shipping_choices[0][0]


class CardForm(forms.Form):
    """The local provider's card form (development and demo). With Stripe keys set, the page
    uses Stripe's Payment Element and posts only `payment_method`."""

    saved_card = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    number = forms.CharField(
        required=False,
        max_length=23,
        label="Card number",
        widget=forms.TextInput(
            attrs={
                "autocomplete": "cc-number",
                "inputmode": "numeric",
                "placeholder": "4242 4242 4242 4242",
            }
        ),
    )
    exp_month = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=12,
        label="Month",
        error_messages={
            key: "Enter the expiry month as a number from 1 to 12."
            for key in ("invalid", "min_value", "max_value")
        },
        widget=forms.NumberInput(attrs={"autocomplete": "cc-exp-month", "placeholder": "MM"}),
    )
    exp_year = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=2100,
        label="Year",
        error_messages={
            key: "Enter the expiry year, e.g. 2030."
            for key in ("invalid", "min_value", "max_value")
        },
        widget=forms.NumberInput(attrs={"autocomplete": "cc-exp-year", "placeholder": "YYYY"}),
    )
    cvc = forms.CharField(
        required=False,
        max_length=4,
        label="CVC",
        widget=forms.TextInput(attrs={"autocomplete": "cc-csc", "inputmode": "numeric"}),
    )
    payment_method = forms.CharField(required=False, widget=forms.HiddenInput)
    save_card = forms.BooleanField(required=False, label="Save this card for next time")

    def __init__(self, *args, saved_cards=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["saved_card"].choices = [("", "A new card")] + [
            (card.pk, str(card)) for card in saved_cards
        ]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("saved_card") or cleaned.get("payment_method"):
            return cleaned
        # Only the fields left empty: one already refused says why itself (e.g. month 13).
        missing = [
            name
            for name in ("number", "exp_month", "exp_year", "cvc")
            if not cleaned.get(name) and name not in self.errors
        ]
        for name in missing:
            self.add_error(name, "Required for a new card.")
        return cleaned

    def card_input(self) -> dict:
        data = self.cleaned_data
        if data.get("payment_method"):
            return {"payment_method": data["payment_method"]}
        return {key: data[key] for key in ("number", "exp_month", "exp_year", "cvc")}
