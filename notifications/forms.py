from django import forms

from notifications.models import NotificationKind


class PreferencesForm(forms.Form):
    """Two checkboxes per kind: in the notification centre, and by email."""

    def __init__(self, *args, current: dict[str, tuple[bool, bool]], **kwargs):
        super().__init__(*args, **kwargs)
        for kind in NotificationKind:
            in_app, email = current[kind]
            self.fields[f"{kind}_app"] = forms.BooleanField(
                required=False, initial=in_app, label=kind.label
            )
            self.fields[f"{kind}_email"] = forms.BooleanField(
                required=False, initial=email, label="Email"
            )

    def rows(self):
        for kind in NotificationKind:
            yield kind.label, self[f"{kind}_app"], self[f"{kind}_email"]

    def choices(self) -> dict[str, tuple[bool, bool]]:
        return {
            kind: (self.cleaned_data[f"{kind}_app"], self.cleaned_data[f"{kind}_email"])
            for kind in NotificationKind
        }
