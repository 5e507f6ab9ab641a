"""The backer's forms. The address and card parts are the checkout's (orders.forms); the
rules (minimums, limits, the window) are the services', so these only check the shape."""

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from crowdfunding.models import RewardTier


class PledgeForm(forms.Form):
    """A reward (or none) and an amount. The tiers come as a list fetched with the page."""

    tier = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label=_("Reward"))
    amount = forms.DecimalField(
        min_value=Decimal("1.00"),
        max_value=Decimal("9999999.99"),
        decimal_places=2,
        label=_("Pledge amount"),
    )
    request_key = forms.CharField(
        min_length=8, max_length=64, widget=forms.HiddenInput, required=False
    )

    def __init__(self, *args, tiers: list[RewardTier], **kwargs):
        super().__init__(*args, **kwargs)
        self._tiers = {tier.pk: tier for tier in tiers}
        self.fields["tier"].choices = [("", _("No reward, I just want to help"))] + [
            (tier.pk, f"{tier.title} ({tier.min_amount})") for tier in tiers
        ]

    def clean_tier(self) -> RewardTier | None:
        chosen = self.cleaned_data.get("tier")
        return self._tiers[chosen] if chosen else None


class CommentForm(forms.Form):
    body = forms.CharField(
        max_length=5_000, widget=forms.Textarea(attrs={"rows": 3}), label=_("Comment")
    )


class ReportForm(forms.Form):
    reason = forms.CharField(max_length=300, label=_("Why should the brand look at this?"))
