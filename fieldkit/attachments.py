"""Photos and documents on an issue: checking a file, storing it by content, recording it.

The bytes go into the store's file folder (``store/blobs.py``) first, durably;
then the attachment's record is saved like a note, so an attachment the
register shows always has its bytes on disk. A photo is kept as taken, with a
reduced copy and a thumbnail, and its own date and GPS position are recorded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fieldkit import model
from fieldkit.photos import IMAGE_TYPES, NotAnImage, read_photo
from fieldkit.store.blobs import sha256_of

#: File name endings and the media type they are attached as.
SUFFIXES: dict[str, str] = {
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".heic": "image/heic", ".heif": "image/heif",
    ".pdf": "application/pdf",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".ppt": "application/vnd.ms-powerpoint",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
    ".txt": "text/plain", ".csv": "text/csv",
}

#: What the first bytes of a file say it is, where that is certain.
MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"%PDF-", "application/pdf"),
)


class AttachmentError(model.ValidationError):
    """A file that cannot be attached; the message says why and what to do."""

    def __init__(self, message: str):
        super().__init__({"file": message})


@dataclass(frozen=True, slots=True)
class Attached:
    """What attaching one file did."""

    record: dict[str, Any]
    stored_before: bool  # the same bytes were already on this laptop (stored once, recorded twice)
    position: tuple[float, float] | None  # the photo's GPS position, when it has one
    position_used: bool  # it became the issue's location


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def media_type_of(name: str, head: bytes) -> str:
    """The media type of a file from its name, checked against its first bytes where they are telling."""
    suffix = Path(name).suffix.lower()
    declared = SUFFIXES.get(suffix)
    sniffed = next((kind for magic, kind in MAGIC if head.startswith(magic)), None)
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc"):
        sniffed = "image/heic"
    if declared is None:
        if sniffed:
            return sniffed
        known = ", ".join(sorted({s.lstrip('.') for s in SUFFIXES}))
        raise AttachmentError(f"{name}: files of this kind cannot be attached; attach photos, PDF or office documents ({known})")
    if sniffed and sniffed != declared and (declared in IMAGE_TYPES or declared == "application/pdf"):
        return sniffed  # a photo saved with the wrong ending is still a photo
    if declared in ("image/jpeg", "image/png", "application/pdf") and sniffed is None:
        raise AttachmentError(f"{name} is named like a {model.ATTACHMENT_TYPES[declared]} but is not one; check the file")
    return declared


def read_file(path: Path) -> bytes:
    """A file's bytes, refusing one over the size limit before reading it."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise AttachmentError(f"no such file: {path}") from None
    if path.is_dir():
        raise AttachmentError(f"{path} is a folder; give a file")
    if size > model.ATTACHMENT_MAX_BYTES:
        raise AttachmentError(
            f"{path.name} is {size_text(size)}; files up to {size_text(model.ATTACHMENT_MAX_BYTES)} can be attached "
            "(send a smaller copy, or split the document)"
        )
    if size == 0:
        raise AttachmentError(f"{path.name} is empty; check the file")
    with open(path, "rb") as source:
        return source.read()


def attach(register, issue_id: str, path: str | os.PathLike, caption: str = "", use_location: bool = False) -> Attached:
    """Attach one file to an issue: bytes stored durably first, then the record (one register write)."""
    file = Path(path).expanduser()
    register.issue_values(issue_id)
    if caption:
        problem = model.check_field("attachment", "caption", caption)
        if problem:
            raise AttachmentError(problem)
    data = read_file(file)
    media_type = media_type_of(file.name, data[:16])
    blobs = register.store.blobs
    fields: dict[str, Any] = {"issue_id": issue_id, "name": file.name[:255], "media_type": media_type, "size": len(data)}
    if caption.strip():
        fields["caption"] = caption.strip()
    position = None
    send: list[str] = []
    hold: list[str] = []
    if media_type in IMAGE_TYPES:
        try:
            photo = read_photo(data, media_type)
        except NotAnImage:
            raise AttachmentError(f"{file.name} cannot be read as a photo; check the file, or attach it as a document") from None
        fields.update(width=photo.width, height=photo.height)
        if photo.taken_at:
            fields["taken_at"] = photo.taken_at
        if photo.lat is not None and photo.lon is not None:
            fields.update(lat=photo.lat, lon=photo.lon)
            position = (photo.lat, photo.lon)
        fields["thumb_sha256"] = blobs.put(photo.thumbnail)
        send.append(fields["thumb_sha256"])
        if photo.reduced is not None:
            fields["reduced_sha256"] = blobs.put(photo.reduced)
            fields["reduced_size"] = len(photo.reduced)
            send.append(fields["reduced_sha256"])
    stored_before = blobs.has(sha256_of(data))
    fields["sha256"] = blobs.put(data)
    (hold if "reduced_sha256" in fields else send).append(fields["sha256"])
    issue = register.issue_values(issue_id)
    used = False
    if position is not None and use_location and issue.get("lat") is None and _in_south_africa(*position):
        used = True
    record = register.add_attachment(fields, send=send, hold=hold,
                                     location={"lat": position[0], "lon": position[1]} if used and position else None)
    return Attached(record, stored_before, position, used)


def _in_south_africa(lat: float, lon: float) -> bool:
    return model.LAT_RANGE[0] <= lat <= model.LAT_RANGE[1] and model.LON_RANGE[0] <= lon <= model.LON_RANGE[1]


def position_offer(register, issue_id: str, record: dict[str, Any]) -> tuple[float, float] | None:
    """The photo's position when the issue has no location yet and the position is in South Africa."""
    lat, lon = record.get("lat"), record.get("lon")
    if lat is None or lon is None or not _in_south_africa(lat, lon):
        return None
    if register.issue_values(issue_id).get("lat") is not None:
        return None
    return lat, lon


def shown_copy(record: dict[str, Any]) -> str:
    """The hash of the copy a laptop keeps and shows by default: the reduced copy where there is one."""
    return record.get("reduced_sha256") or record["sha256"]


def is_here(register, record: dict[str, Any]) -> bool:
    """Whether the copy an attachment is shown from is on this laptop (sync brings it when not)."""
    return register.store.blobs.has(shown_copy(record))


def is_photo(record: dict[str, Any]) -> bool:
    return record.get("media_type") in IMAGE_TYPES


@dataclass(frozen=True, slots=True)
class PhotoBytes:
    """The bytes of the best copy of a photo this laptop has for the screen, and which copy they are."""

    data: bytes | None  # None when no copy of the photo is on this laptop yet
    copy: str  # "reduced", "original" or "thumbnail"; "" when there is none


def photo_to_show(register, record: dict[str, Any]) -> PhotoBytes:
    """The reduced copy (the original when the photo is its own reduced copy), else the original, else
    the thumbnail: read through the store, so a sealed register's files are opened in memory and checked."""
    blobs = register.store.blobs
    candidates = [("reduced", record.get("reduced_sha256")), ("original", record.get("sha256")),
                  ("thumbnail", record.get("thumb_sha256"))]
    for copy, sha in candidates:
        if sha and blobs.has(sha):
            return PhotoBytes(blobs.get(sha), copy)
    return PhotoBytes(None, "")


def describe(record: dict[str, Any]) -> str:
    """One line for an attachment: name, kind, size, caption."""
    kind = model.ATTACHMENT_TYPES.get(record.get("media_type", ""), "file")
    caption = f" — {record['caption']}" if record.get("caption") else ""
    return f"{record.get('name', '?')} ({kind}, {size_text(record.get('size', 0))}){caption}"


# -- choosing a file (the app's attach dialog) ---------------------------------------------


def clean_path(text: str) -> Path:
    """A path as typed, pasted or dropped into a terminal: quotes, ``file://`` and escaped spaces undone."""
    from urllib.parse import unquote, urlsplit

    cleaned = text.strip()
    if not Path(cleaned).expanduser().exists():
        # a path dropped or pasted after the folder already in the box: "/home/me/Pictures/'/tmp/IMG 1.jpg'"
        start = cleaned.rfind("file://")
        if start < 0:
            start = max(cleaned.rfind(mark) for mark in ("'/", '"/', "'~", '"~', "//", "/~/"))
        if start > 0:
            cleaned = cleaned[start + (1 if cleaned[start:start + 2] in ("//", "/~") else 0):]
    if len(cleaned) >= 2 and cleaned[0] == cleaned[-1] and cleaned[0] in "'\"":
        cleaned = cleaned[1:-1]
    if cleaned.startswith("file://"):
        cleaned = unquote(urlsplit(cleaned).path)
    elif "\\" in cleaned and not Path(cleaned).exists():
        cleaned = cleaned.replace("\\ ", " ").replace("\\(", "(").replace("\\)", ")").replace("\\'", "'")
    return Path(cleaned).expanduser()


def start_folder(settings: dict[str, Any], home: Path | None = None) -> Path:
    """Where the attach dialog opens: the last folder a file came from, else Pictures, Downloads, home."""
    home = home or Path.home()
    last = settings.get("attach_folder")
    candidates = [Path(last)] if isinstance(last, str) and last else []
    candidates += [home / "Pictures", home / "Downloads", home]
    return next((c for c in candidates if c.is_dir()), home)


def attachable(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES


def open_copy(register, record: dict[str, Any]) -> str:
    """Write the copy shown (or the original, when it is here) to a private temporary folder under the
    file's own name and open it with the system's viewer; returns what happened, in one line."""
    import shutil
    import subprocess
    import tempfile

    blobs = register.store.blobs
    sha = record["sha256"] if blobs.has(record["sha256"]) else shown_copy(record)
    if not blobs.has(sha):
        return f"{record.get('name', 'The file')} is not on this laptop yet; sync brings it"
    folder = Path(tempfile.mkdtemp(prefix="fieldkit-open-"))
    name = Path(record.get("name") or "attachment").name
    target = folder / (name if sha == record["sha256"] else f"{Path(name).stem}-reduced.jpg")
    target.write_bytes(blobs.get(sha))
    viewer = shutil.which("xdg-open") or shutil.which("open")
    if viewer is None:
        return f"No viewer found on this system; the file is at {target}"
    subprocess.Popen([viewer, str(target)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return f"Opened {name} in the system's viewer"
