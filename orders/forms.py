from django import forms
from django.conf import settings
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language
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


class CountrySelect(forms.Select):
    """The country list built in Python, once per language: its 250 options rendered one by
    one through the template engine cost more than the rest of a checkout or pre-order page.
    The same HTML as Django's Select."""

    _options: dict[str, str] = {}

    def _options_html(self) -> str:
        language = get_language() or ""
        if language not in self._options:
            self._options[language] = format_html_join(
                "",
                '<option value="{}">{}</option>',
                ((code, label) for code, label in self.choices),
            )
        return self._options[language]

    def render(self, name, value, attrs=None, renderer=None) -> SafeString:
        if isinstance(value, list | tuple):
            value = value[0] if value else ""
        options = self._options_html()
        chosen = format_html('<option value="{}">', "" if value is None else str(value))
        if chosen in options:
            options = options.replace(chosen, chosen[:-1] + " selected>", 1)
        else:  # nothing or an unknown value chosen: the placeholder is, as in Django's
            options = options.replace('<option value="">', '<option value="" selected>', 1)
        attrs = self.build_attrs(self.attrs, attrs)
        options = mark_safe(options)  # noqa: S308 - built by format_html_join above
        return format_html('<select name="{}"{}>{}</select>', name, flatatt(attrs), options)


class AddressForm(forms.ModelForm):
    """A shipping address. The country is stored as its ISO 3166 two-letter code, chosen from
    django-countries' maintained list; a typed code ("de") or English name ("Germany") is
    accepted too, so a form filled in by a script or an old browser still works."""

    country = forms.CharField(
        label="Country",
        max_length=100,
        widget=CountrySelect(choices=country_choices, attrs={"autocomplete": "shipping country"}),
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
