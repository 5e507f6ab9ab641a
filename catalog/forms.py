from decimal import Decimal

from django import forms

from catalog.selectors import SORTS


class ProductFilterForm(forms.Form):
    """The query string of /products/. Bad values give a message, never a 500."""

    q = forms.CharField(required=False, max_length=200, label="Search")
    brand = forms.SlugField(required=False)
    category = forms.CharField(required=False, max_length=255)
    price_min = forms.DecimalField(
        required=False, min_value=Decimal("0"), max_digits=10, decimal_places=2, label="Min price"
    )
    price_max = forms.DecimalField(
        required=False, min_value=Decimal("0"), max_digits=10, decimal_places=2, label="Max price"
    )
    in_stock = forms.BooleanField(required=False, label="In stock only")
    sort = forms.ChoiceField(required=False, choices=list(SORTS.items()))

    def clean(self):
        cleaned = super().clean()
        low, high = cleaned.get("price_min"), cleaned.get("price_max")
        if low is not None and high is not None and low > high:
            self.add_error("price_max", "The maximum price is below the minimum.")
        return cleaned
