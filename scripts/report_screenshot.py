"""The HTML status report as a browser shows it: a PNG made by headless Chromium, to look at after a layout change.

By default a fresh register is made with photos drawn by Pillow (landscape and portrait, one taken
just after midnight, one without a caption, one whose thumbnail is missing, enough to fill rows),
attached through the real code; the report is made with the real ``fieldkit report`` command.

    python scripts/report_screenshot.py /tmp/shots/report.png
    python scripts/report_screenshot.py /tmp/shots/narrow.png --width 700
    python scripts/report_screenshot.py /tmp/shots/mine.png --home ~/.local/share/fieldkit -- --municipality BUF

Needs Chromium (Debian: ``apt-get install chromium``). With ``--home`` the report is made from that register.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def scene(path: Path, sky: tuple[int, int, int], label: str, taken: str, size: tuple[int, int] = (3200, 2400),
          lat: float = -33.0153, lon: float = 27.9116) -> Path:
    """A photo like a phone's: a house, a pond and the sun, a label, and a date and GPS position in its EXIF."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = size
    image = Image.new("RGB", size, sky)
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, int(height * 0.6), width, height], fill=(90, 130, 70))
    draw.ellipse([int(width * 0.75), int(height * 0.08), int(width * 0.9), int(height * 0.28)], fill=(255, 220, 60))
    draw.rectangle([int(width * 0.1), int(height * 0.35), int(width * 0.35), int(height * 0.62)], fill=(180, 180, 175))
    draw.polygon([(int(width * 0.08), int(height * 0.35)), (int(width * 0.225), int(height * 0.22)),
                  (int(width * 0.37), int(height * 0.35))], fill=(140, 40, 30))
    draw.ellipse([int(width * 0.45), int(height * 0.66), int(width * 0.8), int(height * 0.86)], fill=(60, 120, 200))
    try:
        font = ImageFont.truetype("DejaVuSans-Bold.ttf", height // 12)
    except OSError:
        font = ImageFont.load_default(size=height // 12)
    draw.text((int(width * 0.05), int(height * 0.88)), label, fill=(255, 255, 255), font=font)
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = taken
    gps = exif.get_ifd(0x8825)

    def dms(value: float) -> tuple[float, float, float]:
        value = abs(value)
        return int(value), int(value * 60 % 60), round(value * 3600 % 60, 4)

    gps[1], gps[2], gps[3], gps[4] = "S" if lat < 0 else "N", dms(lat), "E" if lon >= 0 else "W", dms(lon)
    image.save(path, "JPEG", quality=90, exif=exif)
    return path


def demo_register(home: Path, pictures: Path) -> None:
    from fieldkit.attachments import attach
    from fieldkit.register import Register

    pictures.mkdir(parents=True, exist_ok=True)
    with Register.open(home, author="Thandi Mokoena") as register:
        register.save_settings(name="Thandi Mokoena", municipalities=["BUF", "EC121"], first_run_done=True)
        burst = register.create_issue({"municipality": "BUF", "ward": 12, "sector": "water", "category": "burst_main",
                                       "severity": "critical", "title": "Burst bulk main on Oxford Street, flooding the taxi rank"})
        sewage = register.create_issue({"municipality": "EC121", "ward": 5, "sector": "sanitation", "category": "sewer_blockage",
                                        "severity": "high", "title": "Sewage spilling next to the school"})
        attach(register, burst["id"], scene(pictures / "IMG_0412.jpg", (120, 170, 230), "Oxford St burst main", "2026:02:27 09:41:00"),
               caption="Water pouring from the valve chamber")
        attach(register, burst["id"], scene(pictures / "IMG_0413.jpg", (120, 170, 230), "Portrait, 00:30", "2026:02:28 00:30:00",
                                            size=(1800, 2400)),
               caption="Just after midnight: the water still rising over the kerb and into the taxi rank")
        attach(register, burst["id"], scene(pictures / "IMG_0414.jpg", (250, 150, 90), "No caption", "2026:02:27 18:02:00"))
        missing = attach(register, burst["id"], scene(pictures / "IMG_0415.jpg", (200, 200, 240), "Missing", "2026:02:27 18:05:00"))
        register.store.blobs.path(missing.record["thumb_sha256"]).unlink()  # as on a laptop sync has not filled yet
        for n in range(3):
            attach(register, sewage["id"], scene(pictures / f"IMG_05{n:02}.jpg", (40 + 40 * n, 60, 120), f"Manhole {n + 1}",
                                                 "2026:02:28 11:15:00", lat=-32.9712, lon=27.8745),
                   caption=f"Manhole {n + 1} overflowing at the school gate")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("png", type=Path, help="where to write the screenshot")
    parser.add_argument("--home", type=Path, help="a register to report on (default: a fresh one with drawn photos)")
    parser.add_argument("--width", type=int, default=1280, help="browser window width in pixels (default 1280)")
    parser.add_argument("--height", type=int, default=2400, help="browser window height in pixels (default 2400)")
    parser.add_argument("report_args", nargs="*", help="after --: arguments for `fieldkit report`")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        print("report_screenshot: Chromium is not installed; on Debian: apt-get install chromium", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="fieldkit-report-") as scratch:
        folder = Path(scratch)
        home = args.home
        if home is None:
            home = folder / "home"
            demo_register(home, folder / "pictures")
        page = folder / "report.html"
        env = {**os.environ, "FIELDKIT_HOME": str(home), "PYTHONPATH": str(ROOT)}
        made = subprocess.run([sys.executable, "-m", "fieldkit", "report", "-o", str(page), *args.report_args],
                              env=env, capture_output=True, text=True)
        if made.returncode != 0:
            print(made.stderr.strip(), file=sys.stderr)
            return 1
        args.png.parent.mkdir(parents=True, exist_ok=True)
        shot = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                               f"--screenshot={args.png.resolve()}", f"--window-size={args.width},{args.height}",
                               page.as_uri()], capture_output=True, text=True, timeout=120)
        if shot.returncode != 0 or not args.png.is_file():
            print(f"report_screenshot: Chromium made no screenshot: {shot.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            return 1
    print(args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
