"""Photos and documents on an issue, on one laptop: attach, list, remove, store by content, back up.

Real files in a real data folder; the command line in real processes.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from fieldkit import model
from fieldkit.attachments import AttachmentError, attach
from fieldkit.register import Register
from fieldkit.store import StoreError
from photo_files import phone_photo


def new_issue(register: Register, **extra) -> str:
    return register.create_issue({"municipality": "BUF", "sector": "water", "title": "Burst main at the school", **extra})["id"]


def files_in(home: Path) -> list[Path]:
    return sorted(p for p in (home / "files").rglob("*") if p.is_file() and ".partial" not in p.parts)


def test_a_phone_photo_is_kept_as_taken_with_its_date_position_reduced_copy_and_thumbnail(register: Register, tmp_path: Path) -> None:
    issue_id = new_issue(register)
    photo = phone_photo(tmp_path / "IMG_0412.jpg", taken="2026:11:28 10:15:00", lat=-32.97, lon=27.87)
    done = attach(register, issue_id, photo, caption="Water running into the school yard")
    record = done.record
    blobs = register.store.blobs
    assert blobs.get(record["sha256"]) == photo.read_bytes()
    assert record["taken_at"] == "2026-11-28T08:15:00+00:00"  # 10:15 in South Africa
    assert (record["lat"], record["lon"]) == pytest.approx((-32.97, 27.87), abs=1e-4)
    assert (record["width"], record["height"]) == (4000, 3000)
    reduced = Image.open(io.BytesIO(blobs.get(record["reduced_sha256"])))
    assert reduced.format == "JPEG" and max(reduced.size) == 1600
    assert record["reduced_size"] < record["size"] / 3
    thumb = Image.open(io.BytesIO(blobs.get(record["thumb_sha256"])))
    assert max(thumb.size) <= 240
    assert register.attachments(issue_id)[0]["caption"] == "Water running into the school yard"
    # the photo's position was offered, not taken: the issue had none, and was not asked to
    assert done.position is not None and not done.position_used
    assert register.issue_values(issue_id).get("lat") is None


def test_the_photos_position_becomes_the_issues_only_when_asked_and_only_when_it_has_none(register: Register, tmp_path: Path) -> None:
    bare = new_issue(register)
    placed = new_issue(register, lat=-33.0, lon=27.9)
    photo = phone_photo(tmp_path / "site.jpg", lat=-32.5, lon=28.1)
    assert attach(register, bare, photo, use_location=True).position_used
    assert (register.issue_values(bare)["lat"], register.issue_values(bare)["lon"]) == pytest.approx((-32.5, 28.1), abs=1e-4)
    assert not attach(register, placed, photo, use_location=True).position_used
    assert register.issue_values(placed)["lat"] == -33.0


def test_the_same_file_attached_twice_is_stored_once_and_listed_twice(register: Register, tmp_path: Path) -> None:
    issue_id = new_issue(register)
    photo = phone_photo(tmp_path / "a.jpg")
    first = attach(register, issue_id, photo, caption="From the road")
    second = attach(register, issue_id, photo, caption="Same photo, for the WSA")
    assert not first.stored_before and second.stored_before
    assert first.record["sha256"] == second.record["sha256"]
    assert [a["caption"] for a in register.attachments(issue_id)] == ["From the road", "Same photo, for the WSA"]
    assert len(files_in(register.store.home)) == 3  # original, reduced copy, thumbnail: once each


def test_documents_are_kept_as_they_are(register: Register, tmp_path: Path) -> None:
    issue_id = new_issue(register)
    minutes = tmp_path / "Imbizo minutes.pdf"
    minutes.write_bytes(b"%PDF-1.4\n" + b"minutes of the imbizo " * 500 + b"\n%%EOF\n")
    letter = tmp_path / "WSA letter.docx"
    letter.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 20)
    pdf = attach(register, issue_id, minutes).record
    docx = attach(register, issue_id, letter).record
    assert pdf["media_type"] == "application/pdf" and "reduced_sha256" not in pdf and "thumb_sha256" not in pdf
    assert register.store.blobs.get(pdf["sha256"]) == minutes.read_bytes()
    assert docx["media_type"].endswith("wordprocessingml.document")
    assert register.files_to_send() == [pdf["sha256"], docx["sha256"]]


def test_what_cannot_be_attached_is_refused_in_one_line_and_nothing_is_kept(register: Register, tmp_path: Path) -> None:
    issue_id = new_issue(register)
    huge = tmp_path / "drone-video.jpg"
    with open(huge, "wb") as out:
        out.truncate(model.ATTACHMENT_MAX_BYTES + 1)
    with pytest.raises(AttachmentError, match=r"drone-video.jpg is 25.0 MB; files up to 25.0 MB can be attached"):
        attach(register, issue_id, huge)
    fake = tmp_path / "photo.jpg"
    fake.write_text("this is not a photo")
    with pytest.raises(AttachmentError, match="named like a JPEG photo but is not one"):
        attach(register, issue_id, fake)
    program = tmp_path / "setup.exe"
    program.write_bytes(b"MZ" + b"\0" * 100)
    with pytest.raises(AttachmentError, match="files of this kind cannot be attached"):
        attach(register, issue_id, program)
    assert register.attachments(issue_id) == [] and files_in(register.store.home) == []


def test_a_damaged_file_is_detected_and_recovered_from_the_backup(register: Register, tmp_path: Path, fieldkit) -> None:
    issue_id = new_issue(register)
    record = attach(register, issue_id, phone_photo(tmp_path / "a.jpg")).record
    register.close()
    assert fieldkit("backup").returncode == 0
    stored = register.store.blobs.path(record["sha256"])
    with open(stored, "r+b") as damaged:
        damaged.seek(100_000)
        damaged.write(b"\xff\x00\xff")
    reopened = Register.open(stored.parents[2])
    with pytest.raises(StoreError, match=r"is damaged \(its bytes do not match its hash\)"):
        reopened.store.blobs.get(record["sha256"])
    reopened.close()
    check = fieldkit("check")
    assert check.returncode == 1 and "is damaged" in check.stderr and "Traceback" not in check.stderr
    recovered = fieldkit("recover", "--files")
    assert recovered.returncode == 0, recovered.stderr
    assert "brought back 1 attached files" in recovered.stdout
    assert fieldkit("check").returncode == 0
    assert Register.open(stored.parents[2]).store.blobs.get(record["sha256"]) == (tmp_path / "a.jpg").read_bytes()


def test_attach_list_and_detach_from_the_command_line(fieldkit, tmp_path: Path) -> None:
    added = fieldkit("add", "--municipality", "BUF", "--sector", "water", "--title", "Burst main")
    _, ref = added.stdout.split()
    photo = phone_photo(tmp_path / "burst.jpg", lat=-32.97, lon=27.87)
    minutes = tmp_path / "minutes.pdf"
    minutes.write_bytes(b"%PDF-1.4\nminutes\n%%EOF\n")
    result = fieldkit("attach", ref, str(photo), str(minutes), "--caption", "At the gate")
    assert result.returncode == 0, result.stderr
    assert "burst.jpg (JPEG photo" in result.stdout and "minutes.pdf (PDF document" in result.stdout
    assert "`--use-location` makes that the issue's location" in result.stdout
    listed = fieldkit("attachments", ref).stdout.splitlines()
    assert len(listed) == 2 and all("At the gate" in line for line in listed)
    photo_id = listed[0].split()[0]
    assert fieldkit("detach", photo_id[:13]).returncode == 0
    assert len(fieldkit("attachments", ref).stdout.splitlines()) == 1
    assert "[removed]" in fieldkit("attachments", ref, "--removed").stdout
    timeline = [e["text"] for e in json.loads(fieldkit("show", ref, "--json").stdout)["timeline"]]
    assert "Attached burst.jpg" in timeline and "Removed burst.jpg" in timeline
    missing = fieldkit("attach", ref, str(tmp_path / "nope.jpg"))
    assert missing.returncode == 1 and missing.stderr.startswith("fieldkit: no such file") and "Traceback" not in missing.stderr
    big = tmp_path / "big.pdf"
    with open(big, "wb") as out:
        out.write(b"%PDF-1.4\n")
        out.truncate(30 * 1024 * 1024)
    refused = fieldkit("attach", ref, str(big))
    assert refused.returncode == 1 and "big.pdf is 30.0 MB; files up to 25.0 MB can be attached" in refused.stderr


def test_reports_and_exports_carry_the_attachments(register: Register, tmp_path: Path) -> None:
    import base64
    import csv
    import re

    from fieldkit.exports import write_export
    from fieldkit.filters import IssueFilter
    from fieldkit.reports import build_report, make_scope, render

    issue_id = new_issue(register, lat=-32.97, lon=27.87)
    photo = attach(register, issue_id, phone_photo(tmp_path / "burst.jpg"), caption="Water in the school yard").record
    minutes = tmp_path / "minutes.pdf"
    minutes.write_bytes(b"%PDF-1.4\nminutes\n%%EOF\n")
    attach(register, issue_id, minutes)
    html = render(build_report(register, make_scope(municipality="BUF")), "html")
    embedded = re.findall(r'<img alt="Water in the school yard" src="data:image/jpeg;base64,([^"]+)">', html)
    assert [base64.b64decode(e) for e in embedded] == [register.store.blobs.get(photo["thumb_sha256"])]
    assert "http" not in html.split("<style>")[1].split("</style>")[0]  # still one self-contained file

    write_export(register, "csv", IssueFilter(), str(tmp_path / "issues.csv"))
    [row] = csv.DictReader(open(tmp_path / "issues.csv", encoding="utf-8-sig"))
    assert row["Attachments"] == "burst.jpg; minutes.pdf"
    write_export(register, "geojson", IssueFilter(), str(tmp_path / "issues.geojson"))
    feature = json.loads((tmp_path / "issues.geojson").read_text())["features"][0]
    assert feature["properties"]["media_url"] is None  # no central store yet: nowhere to point
    register.save_sync_state({"server": "https://store.example:8765"})
    write_export(register, "geojson", IssueFilter(), str(tmp_path / "issues.geojson"))
    feature = json.loads((tmp_path / "issues.geojson").read_text())["features"][0]
    assert feature["properties"]["media_url"] == f"https://store.example:8765/files/{photo['reduced_sha256']}"
    write_export(register, "open311", IssueFilter(), str(tmp_path / "requests.json"))
    [request] = json.loads((tmp_path / "requests.json").read_text())
    assert request["media_url"] == feature["properties"]["media_url"]


def test_the_reports_photos_show_the_south_african_day_and_say_which_are_missing(register: Register, tmp_path: Path) -> None:
    """Looked at in Chromium: a photo taken just after midnight carried the day before (UTC), a missing
    thumbnail was a small grey strip, and a narrow card broke "2026-11-02" over two lines."""
    from datetime import date

    from fieldkit.reports import build_report, make_scope, render

    issue_id = new_issue(register)
    attach(register, issue_id, phone_photo(tmp_path / "night.jpg", width=800, height=600, taken="2026:02:28 00:30:00"),
           caption="Valve chamber just after midnight")
    gone = attach(register, issue_id, phone_photo(tmp_path / "gone.jpg", width=800, height=600, seed=2)).record
    register.store.blobs.path(gone["thumb_sha256"]).unlink()
    html = render(build_report(register, make_scope(municipality="BUF"), today=date(2026, 3, 2)), "html")
    assert "night.jpg · 2026-02-28" in html
    assert "gone.jpg · 2026-11-28" in html
    assert "The photo was not yet on this laptop when the report was made" in html
    assert 'Resolved since <span class="date">2026-01-31</span>' in html


def test_a_heic_photo_from_an_iphone_is_read_and_gets_a_jpeg_reduced_copy(register: Register, tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    heic = tmp_path / "IMG_7781.HEIC"
    Image.new("RGB", (3024, 4032), (160, 40, 30)).save(heic, "HEIF", quality=80)
    record = attach(register, new_issue(register), heic).record
    assert record["media_type"] == "image/heic" and (record["width"], record["height"]) == (3024, 4032)
    reduced = Image.open(io.BytesIO(register.store.blobs.get(record["reduced_sha256"])))
    assert reduced.format == "JPEG" and reduced.size == (1200, 1600)
