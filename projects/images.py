"""Image validation and private serving helpers."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, UnidentifiedImageError

ALLOWED_FORMATS = {"PNG", "JPEG", "WEBP", "GIF"}
THUMB_SIZE = (384, 256)


def validate_reference_image(upload: UploadedFile) -> None:
    """A real image within the size and dimension limits, or a ValidationError saying which rule failed."""
    max_bytes = settings.REFERENCE_MAX_BYTES
    if upload.size and upload.size > max_bytes:
        raise ValidationError(
            f"The image is {upload.size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB.", code="too_big"
        )
    upload.seek(0)
    try:
        with Image.open(upload) as image:
            fmt = image.format
            width, height = image.size
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValidationError(
            "The file is not a valid image (PNG, JPEG, WebP or GIF).", code="not_image"
        ) from exc
    finally:
        upload.seek(0)
    if fmt not in ALLOWED_FORMATS:
        raise ValidationError(f"{fmt} images are not accepted; use PNG, JPEG, WebP or GIF.", code="format")
    limit = settings.REFERENCE_MAX_PIXELS
    if width > limit or height > limit:
        raise ValidationError(
            f"The image is {width}×{height} pixels; each side must be at most {limit}.", code="dimensions"
        )
    if width < 16 or height < 16:
        raise ValidationError("The image is too small (at least 16×16 pixels).", code="dimensions")


def thumbnail_path(original: Path) -> Path:
    return (
        Path(settings.MEDIA_ROOT) / "thumbs" / original.relative_to(settings.MEDIA_ROOT).with_suffix(".jpg")
    )


def ensure_thumbnail(original: Path) -> Path:
    """Thumbnails are made on first request and kept beside the media, keyed by the original's path."""
    thumb = thumbnail_path(original)
    if thumb.exists() and thumb.stat().st_mtime >= original.stat().st_mtime:
        return thumb
    thumb.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(original) as image:
        image = image.convert("RGB")
        image.thumbnail(THUMB_SIZE)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=82)
    # A unique temporary name: two members asking for the same new thumbnail must not share one.
    fd, tmp = tempfile.mkstemp(dir=thumb.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(buffer.getvalue())
    os.replace(tmp, thumb)
    return thumb
