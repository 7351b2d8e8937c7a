"""What a photo says about itself, and its smaller copies: bytes in, bytes out, no files.

Pillow reads the camera's own date and GPS position (EXIF), and makes the
reduced copy that syncs and goes into reports (1600 px on the long side, JPEG
quality 80) and a thumbnail. JPEG decoding uses Pillow's draft mode (the
decoder scales by 1/2, 1/4 or 1/8 as it reads), which is what keeps a 5 MB
phone photo well under half a second. HEIC is read when pillow-heif is
installed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timezone

from fieldkit.model import SAST

REDUCED_SIDE = 1600
REDUCED_QUALITY = 80
THUMB_SIDE = 240
THUMB_QUALITY = 70
#: A JPEG this small and no larger than the reduced size is its own reduced copy.
SMALL_JPEG = 600 * 1024

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/heic", "image/heif"})

_heif_tried = False


def _heif() -> None:
    global _heif_tried
    if not _heif_tried:
        _heif_tried = True
        try:
            from pillow_heif import register_heif_opener
        except ImportError:
            return
        register_heif_opener()


class NotAnImage(ValueError):
    """The bytes are not a picture Pillow can read."""


@dataclass(frozen=True, slots=True)
class Photo:
    width: int
    height: int
    taken_at: str | None  # ISO, UTC
    lat: float | None
    lon: float | None
    reduced: bytes | None  # None when the original is small enough to be its own reduced copy
    thumbnail: bytes


def _degrees(value, ref: str | None) -> float | None:
    try:
        d, m, s = (float(part) for part in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    result = d + m / 60 + s / 3600
    return -result if ref in ("S", "W") else result


def _taken_at(exif) -> str | None:
    details = exif.get_ifd(0x8769)
    text = details.get(0x9003) or details.get(0x9004) or exif.get(0x0132)
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.strptime(text.strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    offset = details.get(0x9011) or details.get(0x9010)
    zone = SAST
    if isinstance(offset, str):
        try:
            zone = datetime.strptime(offset.strip("\x00 "), "%z").tzinfo or SAST
        except ValueError:
            pass
    if not 1990 <= moment.year <= 2100:
        return None
    return moment.replace(tzinfo=zone).astimezone(timezone.utc).isoformat()


def _position(exif) -> tuple[float | None, float | None]:
    gps = exif.get_ifd(0x8825)
    if not gps:
        return None, None
    lat = _degrees(gps.get(2), gps.get(1))
    lon = _degrees(gps.get(4), gps.get(3))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None, None
    return round(lat, 6), round(lon, 6)


def _jpeg(image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def read_photo(data: bytes, media_type: str) -> Photo:
    """A photo's size, date and position, its reduced copy and thumbnail."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if media_type in ("image/heic", "image/heif"):
        _heif()
    try:
        image = Image.open(io.BytesIO(data))
        exif = image.getexif()
        width, height = image.size
        taken_at = _taken_at(exif)
        lat, lon = _position(exif)
        orientation = exif.get(0x0112, 1)
        long_side = max(width, height)
        if image.format == "JPEG" and long_side > REDUCED_SIDE:
            scale = REDUCED_SIDE / long_side
            image.draft("RGB", (int(width * scale), int(height * scale)))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise NotAnImage(str(err)) from None
    if orientation != 1:
        image = ImageOps.exif_transpose(image)
        if orientation in (5, 6, 7, 8):
            width, height = height, width
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    small_enough = media_type == "image/jpeg" and long_side <= REDUCED_SIDE and len(data) <= SMALL_JPEG and orientation == 1
    reduced = None
    if not small_enough:
        copy = image.copy()
        copy.thumbnail((REDUCED_SIDE, REDUCED_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
        reduced = _jpeg(copy, REDUCED_QUALITY)
    image.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return Photo(width, height, taken_at, lat, lon, reduced, _jpeg(image, THUMB_QUALITY))


def for_screen(data: bytes, longest: int):
    """A stored copy of a photo decoded for showing in a terminal: upright, RGB, at most ``longest``
    pixels on its long side (a terminal never shows more, and every repaint rescales it)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    _heif()
    try:
        image = Image.open(io.BytesIO(data))
        image.draft("RGB", (longest, longest))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise NotAnImage(str(err)) from None
    image = ImageOps.exif_transpose(image)
    if image.mode != "RGB":
        image = image.convert("RGB")
    image.thumbnail((longest, longest), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return image
