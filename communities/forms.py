from django import forms

from communities.models import CommunityKind


class DirectoryForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search communities")
    kind = forms.ChoiceField(required=False, choices=[("", "All kinds"), *CommunityKind.choices])


class PostForm(forms.Form):
    title = forms.CharField(max_length=200)
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
    poll_question = forms.CharField(
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
            line.strip()
            for line in (cleaned.get("poll_options") or "").splitlines()
            if line.strip()
        ]
        if cleaned.get("poll_question") and not 2 <= len(options) <= 10:
            self.add_error("poll_options", "A poll needs between 2 and 10 options, one per line.")
        if options and not cleaned.get("poll_question"):
            self.add_error("poll_question", "Write the poll's question.")
        cleaned["poll_option_list"] = options
        return cleaned


class CommentForm(forms.Form):
    body = forms.CharField(
        max_length=5_000, widget=forms.Textarea(attrs={"rows": 3}), label="Your comment"
    )
    parent = forms.IntegerField(required=False, widget=forms.HiddenInput)


class ReportForm(forms.Form):
    reason = forms.CharField(max_length=300, label="Why should a moderator look at this?")


class IdeaForm(forms.Form):
    title = forms.CharField(max_length=160, label="Your idea")
    description = forms.CharField(
        max_length=5_000, widget=forms.Textarea(attrs={"rows": 3}), label="Why would fans want it?"
    )


class PostEditForm(forms.Form):
    title = forms.CharField(max_length=200)
    body = forms.CharField(
        max_length=20_000, widget=forms.Textarea(attrs={"rows": 8}), help_text="Markdown."
    )
