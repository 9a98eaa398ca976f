"""The judged image, small, for the one page that answers its upload; images are never stored."""
from __future__ import annotations

import base64
import io

from PIL import Image

from .decode import DecodedImage

THUMBNAIL_SIDE = 320


def thumbnail(image: DecodedImage) -> str:
    """A small JPEG of the judged image as a data: URI: it lives only in that one response."""
    small = image.image.copy()
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
