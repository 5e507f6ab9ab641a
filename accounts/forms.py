from django import forms
from django.core.exceptions import ValidationError

from accounts.handles import HANDLE_MAX, handle_check, handle_clean, handle_suggest
from accounts.models import User
from accounts.names import display_name_check, name_clean

AVATAR_MAX_SIDE = 512
_NAME_FIELD = User._meta.get_field("display_name")


def _display_name_field(*, required: bool) -> forms.CharField:
    return forms.CharField(
        label="Display name",
        max_length=_NAME_FIELD.max_length,
        required=required,
        help_text=_NAME_FIELD.help_text,
        widget=forms.TextInput(attrs={"autocomplete": "nickname"}),
    )


def _handle_field(*, required: bool, help_text: str) -> forms.CharField:
    return forms.CharField(
        label="Handle",
        max_length=HANDLE_MAX + 1,  # room for a leading "@"
        required=required,
        help_text=help_text,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "username",
                "autocapitalize": "none",
                "spellcheck": "false",
                "pattern": "@?[A-Za-z0-9_\\-]{3,30}",
            }
        ),
    )


class ProfileForm(forms.Form):
    """A plain Form, not a ModelForm: the service owns the write (and the image checks)."""

    display_name = _display_name_field(required=False)
    handle = _handle_field(
        required=False,
        help_text="How fans @mention you and the address of your public profile: 3–30 "
        "lowercase letters, digits, “_” or “-”. Left empty, it stays as it is.",
    )
    avatar = forms.ImageField(
        required=False,
        help_text=f"JPEG, PNG, WebP or GIF, up to 10 MB; scaled down to {AVATAR_MAX_SIDE} pixels.",
        widget=forms.ClearableFileInput(
            attrs={"accept": "image/jpeg,image/png,image/webp,image/gif"}
        ),
    )

    def __init__(self, *args, user: User, **kwargs) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_display_name(self) -> str:
        name = name_clean(self.cleaned_data["display_name"])
        display_name_check(name=name, user=self.user)
        return name

    def clean_handle(self) -> str | None:
        handle = handle_clean(self.cleaned_data["handle"])
        if not handle:
            return None  # unchanged
        handle_check(handle=handle, user=self.user)
        return handle


class SignupForm(forms.Form):
    """Extra fields of allauth's sign-up form (ACCOUNT_SIGNUP_FORM_CLASS): the public name is
    chosen at sign-up, never taken from the email address."""

    display_name = _display_name_field(required=True)
    handle = _handle_field(
        required=False,
        help_text="How fans @mention you: 3–30 lowercase letters, digits, “_” or “-”. "
        "Leave it empty for one made from your display name.",
    )

    field_order = ["display_name", "handle", "email", "password1", "password2"]

    def clean_display_name(self) -> str:
        name = name_clean(self.cleaned_data["display_name"])
        if not name:
            raise ValidationError("Choose the name other fans will see.", code="required")
        display_name_check(name=name, user=None)
        return name

    def clean_handle(self) -> str:
        handle = handle_clean(self.cleaned_data.get("handle", ""))
        if handle:
            handle_check(handle=handle, user=None)
        return handle

    def clean(self) -> dict:
        cleaned = super().clean()
        if not cleaned.get("handle") and cleaned.get("display_name"):
            cleaned["handle"] = handle_suggest(name=cleaned["display_name"])
        return cleaned

    def signup(self, request, user: User) -> None:
        """allauth's hook; the adapter's save_user has already stored the name."""
