"""Photos like a phone's, made with Pillow: a size, a date and a GPS position in their EXIF."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw


def _dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    return degrees, minutes, round(((value - degrees) * 60 - minutes) * 60, 4)


def phone_photo(path: Path, width: int = 4000, height: int = 3000, lat: float | None = -32.97, lon: float | None = 27.87,
                taken: str = "2026:11:28 10:15:00", quality: int = 92, seed: int = 1, detail: int = 60) -> Path:
    """A JPEG with the texture of a real scene (so it compresses like one), taken at ``taken`` (SAST) at lat/lon."""
    rnd = random.Random(seed)
    image = Image.effect_noise((width // 4, height // 4), detail).convert("RGB").resize((width, height))
    draw = ImageDraw.Draw(image)
    for _ in range(300):
        x, y = rnd.randrange(width), rnd.randrange(height)
        colour = (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
        draw.ellipse([x, y, x + rnd.randrange(20, 300), y + rnd.randrange(20, 300)], fill=colour)
    image.save(path, "JPEG", quality=quality, exif=_exif(taken, lat, lon))
    return path


def _exif(taken: str, lat: float | None, lon: float | None) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0110] = "FieldPhone 7"
    exif.get_ifd(0x8769)[0x9003] = taken
    if lat is not None and lon is not None:
        gps = exif.get_ifd(0x8825)
        gps[1], gps[2] = ("S" if lat < 0 else "N"), _dms(lat)
        gps[3], gps[4] = ("E" if lon >= 0 else "W"), _dms(lon)
    return exif


def two_colour_photo(path: Path, top: tuple[int, int, int], bottom: tuple[int, int, int], width: int = 2000,
                     height: int = 1500, lat: float | None = -32.97, lon: float | None = 27.87,
                     taken: str = "2026:11:28 10:15:00") -> Path:
    """A photo whose top half is one colour and bottom half another, so a test can see it was drawn."""
    image = Image.new("RGB", (width, height), bottom)
    ImageDraw.Draw(image).rectangle([0, 0, width, height // 2], fill=top)
    image.save(path, "JPEG", quality=90, exif=_exif(taken, lat, lon))
    return path
