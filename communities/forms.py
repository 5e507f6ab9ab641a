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


class CommentForm(forms.Form):
    body = forms.CharField(
        max_length=5_000, widget=forms.Textarea(attrs={"rows": 3}), label="Your comment"
    )
    parent = forms.IntegerField(required=False, widget=forms.HiddenInput)
