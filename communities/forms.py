from django import forms

from communities.models import CommunityKind, IdeaStatus
from markup.text import text_clean_line

# Ids from the browser: a positive bigint, or the form says no (never a 500 in the query).
ID_FIELD = {"min_value": 1, "max_value": 2**63 - 1}


class OneLineField(forms.CharField):
    """A title or a name: one line of visible text (no controls, bidi overrides or line
    breaks: a newline in a title would break every email subject that carries it)."""

    def to_python(self, value):
        return text_clean_line(super().to_python(value))


class DirectoryForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search communities")
    kind = forms.ChoiceField(required=False, choices=[("", "All kinds"), *CommunityKind.choices])


class PostForm(forms.Form):
    title = OneLineField(max_length=200)
    body = forms.CharField(
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Markdown: **bold**, *italic*, lists, links.",
    )
    image = forms.ImageField(
        required=False,
        help_text="Optional. JPEG, PNG, WebP or GIF.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/*"}),
    )
    announcement = forms.BooleanField(required=False, label="Announcement (notifies every member)")
    poll_question = OneLineField(
        required=False,
        max_length=200,
        label="Poll question",
        help_text="Optional: ask the community to vote.",
    )
    poll_options = forms.CharField(
        required=False,
        label="Poll options",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One option per line, 2 to 10.",
    )
    poll_multiple = forms.BooleanField(required=False, label="Allow several choices")
    poll_closes_at = forms.DateTimeField(
        required=False,
        label="Poll closes at (optional)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def clean(self):
        cleaned = super().clean()
        options = [
            text_clean_line(line)
            for line in (cleaned.get("poll_options") or "").splitlines()
            if text_clean_line(line)
        ]
        if cleaned.get("poll_question") and not 2 <= len(options) <= 10:
            self.add_error("poll_options", "A poll needs between 2 and 10 options, one per line.")
        elif len({option.lower() for option in options}) != len(options):
            self.add_error("poll_options", "Each option must be different.")
        elif any(len(option) > 120 for option in options):
            self.add_error("poll_options", "Keep each option under 120 characters.")
        if options and not cleaned.get("poll_question"):
            self.add_error("poll_question", "Write the poll's question.")
        cleaned["poll_option_list"] = options
        return cleaned


class CommentForm(forms.Form):
    body = forms.CharField(
        max_length=5_000, widget=forms.Textarea(attrs={"rows": 3}), label="Your comment"
    )
    parent = forms.IntegerField(required=False, widget=forms.HiddenInput, **ID_FIELD)


class ReportForm(forms.Form):
    reason = forms.CharField(max_length=300, label="Why should a moderator look at this?")
    comment = forms.IntegerField(required=False, widget=forms.HiddenInput, **ID_FIELD)


class VoteForm(forms.Form):
    option = forms.TypedMultipleChoiceField(
        coerce=int,
        error_messages={
            "invalid_choice": "Choose one of the poll's options.",
            "required": "Choose an option.",
        },
    )

    def __init__(self, *args, option_ids: list[int], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["option"].choices = [(str(pk), str(pk)) for pk in option_ids]


class ResolveForm(forms.Form):
    report = forms.IntegerField(**ID_FIELD)
    decision = forms.ChoiceField(choices=[("hide", "Hide"), ("restore", "Keep")])


class IdeaStatusForm(forms.Form):
    status = forms.ChoiceField(choices=IdeaStatus.choices)
    response = forms.CharField(required=False, max_length=5_000)


class IdeaForm(forms.Form):
    title = OneLineField(max_length=160, label="Your idea")
    description = forms.CharField(
        max_length=5_000, widget=forms.Textarea(attrs={"rows": 3}), label="Why would fans want it?"
    )


class PostEditForm(forms.Form):
    title = OneLineField(max_length=200)
    body = forms.CharField(
        max_length=20_000, widget=forms.Textarea(attrs={"rows": 8}), help_text="Markdown."
    )
