"""Fixed-size thumbnails of already verified product images."""

import io

from django.core.files.base import ContentFile
from PIL import Image


def thumbnail_render(original, *, side: int, name: str) -> ContentFile:
    with Image.open(original) as image:
        image.thumbnail((side, side))
        out = io.BytesIO()
        if image.mode in ("RGBA", "LA", "P"):
            image.convert("RGBA").save(out, format="PNG", optimize=True)
            extension = "png"
        else:
            image.convert("RGB").save(out, format="JPEG", quality=85, optimize=True)
            extension = "jpg"
    return ContentFile(out.getvalue(), name=f"{name}.{extension}")
