"""What an image file is, by its content only, and how every private image leaves the server.

A file's name and the client's Content-Type are never trusted: a PNG named `portrait.html` served by its
name is a page that runs its tEXt chunk as script. The stored suffix and the served Content-Type come from
the format Pillow reads in the bytes, and only four formats are ever stored or served.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse, HttpResponseBase
from PIL import Image

THUMB_SIZE = (384, 256)
# Served with every user-uploaded or generated image and download: even a browser that renders the
# bytes as a document gets no script, no plugin, no same-origin access.
FILE_CSP = "default-src 'none'; sandbox"
NOT_AN_IMAGE = "The file is not a valid image (PNG, JPEG, WebP or GIF)."
DAMAGED = "The file is not a valid image: it is damaged (truncated, or its pixel data is corrupt)."
TOO_MANY_PIXELS = "The image has too many pixels to be decoded safely."


@dataclass(frozen=True)
class ImageFormat:
    name: str  # Pillow's format name
    suffix: str
    mime: str


FORMATS = {
    fmt.name: fmt
    for fmt in (
        ImageFormat("PNG", ".png", "image/png"),
        ImageFormat("JPEG", ".jpg", "image/jpeg"),
        ImageFormat("WEBP", ".webp", "image/webp"),
        ImageFormat("GIF", ".gif", "image/gif"),
    )
}
SUFFIXES = frozenset(fmt.suffix for fmt in FORMATS.values())
THUMB_FORMAT = FORMATS["JPEG"]


class NotAnImage(ValueError):
    """The bytes are not a whole PNG, JPEG, WebP or GIF image; the message says why, for a person."""

    def __init__(self, message: str = NOT_AN_IMAGE, *, code: str = "not_image") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class ImageInfo:
    format: ImageFormat
    width: int
    height: int


Source = bytes | IO[bytes] | Path


def _opened(source: Source) -> Image.Image:
    # Only the four plugins are tried, so a file another plugin would accept (BMP, TIFF, PDF…) is no image.
    fp = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        return Image.open(fp, formats=list(FORMATS))
    except Image.DecompressionBombError as exc:
        raise NotAnImage(TOO_MANY_PIXELS, code="dimensions") from exc
    except Exception as exc:  # Pillow's plugins raise many types (OSError, SyntaxError, struct.error…)
        raise NotAnImage() from exc


def detect_image_format(source: Source) -> ImageFormat:
    """The format Pillow reads in the header; NotAnImage unless it is PNG, JPEG, WebP or GIF. Cheap: no
    pixel is decoded. Rewinds a file it was given."""
    start = source.tell() if hasattr(source, "tell") else None
    try:
        with _opened(source) as image:
            return FORMATS[image.format]
    finally:
        if start is not None:
            source.seek(start)


def inspect_image(source: Source, *, max_side: int | None = None, decode: bool = True) -> ImageInfo:
    """The format and size of a whole image, with every pixel decoded: a truncated file or corrupt pixel
    data raises NotAnImage here, not later in a thumbnail. A side above max_side is refused before decoding
    (decoding is what costs memory). `decode=False` reads the header only, for bytes already decoded."""
    if isinstance(source, Path):
        data = source.read_bytes()
    elif isinstance(source, bytes):
        data = source
    else:
        start = source.tell()
        data = source.read()
        source.seek(start)
    with _opened(data) as image:
        info = ImageInfo(FORMATS[image.format], *image.size)
        if max_side is not None and max(image.size) > max_side:
            raise NotAnImage(
                f"The image is {info.width}×{info.height} pixels; each side must be at most {max_side}.",
                code="dimensions",
            )
        if not decode:
            return info
        try:
            image.verify()  # chunk checksums, which decoding alone skips
        except Exception as exc:
            raise NotAnImage(DAMAGED, code="damaged") from exc
    # verify() leaves the image unusable: decode from a fresh open.
    with _opened(data) as image:
        try:
            image.load()
        except Exception as exc:  # truncated data, a corrupt zlib or JPEG stream…
            raise NotAnImage(DAMAGED, code="damaged") from exc
    return info


def validate_reference_image(upload: IO[bytes]) -> None:
    """A real image within the size and dimension limits, or a ValidationError saying which rule failed."""
    max_bytes = settings.REFERENCE_MAX_BYTES
    size = getattr(upload, "size", None)
    if size and size > max_bytes:
        raise ValidationError(
            f"The image is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB.", code="too_big"
        )
    try:
        upload.seek(0)
        info = inspect_image(upload, max_side=settings.REFERENCE_MAX_PIXELS)
    except NotAnImage as exc:
        raise ValidationError(exc.message, code=exc.code) from exc
    finally:
        upload.seek(0)
    if info.width < 16 or info.height < 16:
        raise ValidationError("The image is too small (at least 16×16 pixels).", code="dimensions")


def validate_new_image_file(value) -> None:
    """Model-field validator: a newly assigned file (the admin, any model form) obeys the upload rules.
    A file already in storage was checked when it was stored, and is not read again on every save."""
    if not getattr(value, "_committed", True):
        validate_reference_image(value.file)


def thumbnail_path(original: Path) -> Path:
    return (
        Path(settings.MEDIA_ROOT)
        / "thumbs"
        / original.relative_to(settings.MEDIA_ROOT).with_suffix(THUMB_FORMAT.suffix)
    )


def ensure_thumbnail(original: Path) -> Path:
    """Thumbnails are made on first request and kept beside the media, keyed by the original's path.
    NotAnImage when the original does not decode."""
    thumb = thumbnail_path(original)
    if thumb.exists() and thumb.stat().st_mtime >= original.stat().st_mtime:
        return thumb
    thumb.parent.mkdir(parents=True, exist_ok=True)
    with _opened(original) as image:
        try:
            image = image.convert("RGB")
        except Exception as exc:
            raise NotAnImage(DAMAGED, code="damaged") from exc
        image.thumbnail(THUMB_SIZE)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=82)
    # A unique temporary name: two members asking for the same new thumbnail must not share one.
    fd, tmp = tempfile.mkstemp(dir=thumb.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(buffer.getvalue())
    os.replace(tmp, thumb)
    return thumb


def harden_file_response(response: HttpResponseBase) -> HttpResponseBase:
    """Headers for every user-uploaded or generated file: never sniffed, never a document with script."""
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = FILE_CSP
    return response


def send_image(path: Path, *, thumb: bool) -> HttpResponse | FileResponse:
    """A stored image, typed by its content; 415 for a stored file that is not one of the four formats
    (one stored before uploads were typed by content) or whose pixels do not decode for a thumbnail."""
    if not path.exists():
        raise Http404("Image file missing")
    try:
        fmt = detect_image_format(path)
        if thumb:
            path, fmt = ensure_thumbnail(path), THUMB_FORMAT
    except NotAnImage as exc:
        refused = HttpResponse(exc.message, status=415, content_type="text/plain; charset=utf-8")
        return harden_file_response(refused)
    # The download name too comes from the content: "Save image as" must not write a .html file.
    response = FileResponse(path.open("rb"), content_type=fmt.mime, filename=path.stem + fmt.suffix)
    response["Cache-Control"] = "private, max-age=300"
    return harden_file_response(response)
