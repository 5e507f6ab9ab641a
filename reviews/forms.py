from django import forms

from reviews.models import Review


class ReviewForm(forms.Form):
    rating = forms.TypedChoiceField(
        choices=Review._meta.get_field("rating").choices, coerce=int, widget=forms.RadioSelect
    )
    title = forms.CharField(max_length=120, required=False)
    body = forms.CharField(
        max_length=5000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Your review",
    )


class ReviewReportForm(forms.Form):
    reason = forms.CharField(
        max_length=300,
        widget=forms.TextInput(
            attrs={"placeholder": "Why should a moderator look at this review?"}
        ),
    )
