from django import forms

from accounts.models import User

AVATAR_MAX_SIDE = 512


class ProfileForm(forms.Form):
    """A plain Form, not a ModelForm: the service owns the write (and the image checks)."""

    display_name = forms.CharField(
        max_length=User._meta.get_field("display_name").max_length,
        required=False,
        help_text=User._meta.get_field("display_name").help_text,
    )
    avatar = forms.ImageField(
        required=False,
        help_text=f"JPEG, PNG, WebP or GIF, up to 10 MB; scaled down to {AVATAR_MAX_SIDE} pixels.",
        widget=forms.ClearableFileInput(
            attrs={"accept": "image/jpeg,image/png,image/webp,image/gif"}
        ),
    )

    def clean_display_name(self) -> str:
        name = " ".join(self.cleaned_data["display_name"].split())
        if name and not any(ch.isalnum() for ch in name):
            raise forms.ValidationError("Use at least one letter or digit.")
        return name
