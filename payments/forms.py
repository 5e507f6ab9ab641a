"""The card form of every payment page (checkout, pay again, reserve, pledge)."""

from django import forms


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
