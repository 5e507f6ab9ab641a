from django import forms
from django.conf import settings
from django_countries import countries

from orders.models import Address
from payments.forms import CardForm as CardForm  # the card form every payment page uses


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
