"""One verification for every image a form takes (uploads.images): mix into any ModelForm."""

from __future__ import annotations

from typing import ClassVar

from django import forms
from django.core.exceptions import ValidationError

from uploads.images import image_verify_and_reencode


class VerifiedImagesModelForm(forms.ModelForm):
    """Every changed ImageField of the form is verified and re-encoded before the instance is
    built; a bad file (BMP, too many pixels, not an image) is a form error on that field,
    never a 500. `image_max_sides` shrinks a field's image (a logo needs no 6000 pixels)."""

    image_max_sides: ClassVar[dict[str, int]] = {}

    def clean(self):
        cleaned = super().clean()
        for name, field in self.fields.items():
            upload = cleaned.get(name)
            if not isinstance(field, forms.ImageField) or not upload:
                continue
            if name not in self.changed_data or not hasattr(upload, "read"):
                continue
            try:
                verified = image_verify_and_reencode(
                    upload, max_side=self.image_max_sides.get(name)
                )
            except ValidationError as exc:
                self.add_error(name, exc.messages)
            else:
                cleaned[name] = verified.content
        return cleaned
