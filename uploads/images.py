"""Verify an uploaded image with Pillow and re-encode it.

Django's ImageField only checks that Pillow can identify the file, and Pillow merely warns
below twice its MAX_IMAGE_PIXELS, so a 10,000 x 10,000 image would be decoded in full. Here the
header is read first, the pixel count is checked against our own cap *before* decoding, and
the pixels are re-encoded so that nothing but image data (no EXIF, no trailing payload) is
stored.
"""

from __future__ import annotations

import io
import uuid
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}


@dataclass(frozen=True)
class VerifiedImage:
    content: ContentFile
    width: int
    height: int


def image_verify_and_reencode(
    upload: UploadedFile,
    *,
    max_pixels: int | None = None,
    max_bytes: int | None = None,
    max_side: int | None = None,
) -> VerifiedImage:
    """Return the upload re-encoded (PNG if it has transparency, else JPEG), or raise
    ValidationError with a message fit for a form. Optionally shrink to `max_side` pixels."""
    max_pixels = max_pixels or settings.IMAGE_MAX_PIXELS
    max_bytes = max_bytes or settings.IMAGE_MAX_UPLOAD_BYTES
    if upload.size is not None and upload.size > max_bytes:
        raise ValidationError(
            f"The image is too large: at most {max_bytes // (1024 * 1024)} MB.", code="file_size"
        )
    upload.seek(0)
    data = upload.read()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                image_format = probe.format
                width, height = probe.size
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        SyntaxError,
        ValueError,
    ) as exc:
        raise ValidationError(
            "Upload a valid image (JPEG, PNG, WebP or GIF). "
            "The file is not an image or is damaged.",
            code="invalid_image",
        ) from exc
    if image_format not in ALLOWED_FORMATS:
        raise ValidationError("Upload a JPEG, PNG, WebP or GIF image.", code="invalid_image_format")
    if width * height > max_pixels:
        raise ValidationError(
            f"The image is {width} x {height} pixels; at most {max_pixels // 1_000_000} megapixels "
            "are accepted.",
            code="image_too_many_pixels",
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            if max_side and max(image.size) > max_side:
                image.thumbnail((max_side, max_side))
            has_alpha = image.mode in ("RGBA", "LA", "P") and (
                image.mode != "P" or "transparency" in image.info
            )
            out = io.BytesIO()
            if has_alpha:
                image.convert("RGBA").save(out, format="PNG", optimize=True)
                extension = "png"
            else:
                image.convert("RGB").save(out, format="JPEG", quality=88, optimize=True)
                extension = "jpg"
            final_size = image.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValidationError(
            "The image could not be read. Try another file.", code="invalid_image"
        ) from exc
    return VerifiedImage(
        content=ContentFile(out.getvalue(), name=f"{uuid.uuid4().hex}.{extension}"),
        width=final_size[0],
        height=final_size[1],
    )
