"""Attached files between a laptop and the central store, after the records, over a weak link.

Records go first (``sync.py``): a file is accepted only once an attachment
record naming it is on the store. Then the bytes, smallest first
(thumbnails, then reduced copies and documents; originals of photos only when
asked). Each file goes in chunks of ``CHUNK`` bytes; before sending, the
laptop asks how much the store already holds, so a cut connection costs at
most the chunk that was on its way and a 4 MB photo never starts again from
zero. Downloads work the same way into ``files/.partial/``, and every file is
checked against its hash before it is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from fieldkit.attachments import shown_copy
from fieldkit.transport import ServerError, SyncError, Transport

CHUNK = 256 * 1024


@dataclass
class FileResult:
    sent: int = 0
    received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    waiting: list[str] = field(default_factory=list)  # why some files could not go yet
    problems: list[str] = field(default_factory=list)


Tell = Callable[[str], None]


def send_files(register, client: Transport, originals: bool = False, tell: Tell | None = None,
               result: FileResult | None = None) -> FileResult:
    """Send the files this laptop attached that the store does not hold yet, smallest first."""
    result = result or FileResult()
    blobs = register.store.blobs
    waiting = register.files_to_send(originals=originals)
    sizes = {sha: (blobs.path(sha).stat().st_size if blobs.has(sha) else 0) for sha in waiting}
    for number, sha in enumerate(sorted(waiting, key=lambda s: sizes[s]), start=1):
        try:
            state = client.file_state(sha)
        except ServerError as err:
            if err.status == 404:
                result.waiting.append(f"file {sha[:12]}: its attachment is not on the central store yet")
                continue
            raise
        if not state["complete"]:
            data = blobs.get(sha)
            if tell:
                tell(f"sending file {number} of {len(waiting)} ({len(data) // 1024} KB, {state['received'] // 1024} KB already there)")
            if not _upload(client, sha, data, state["received"], result):
                continue
        register.files_sent([sha])
        result.sent += 1
    return result


def _upload(client: Transport, sha: str, data: bytes, offset: int, result: FileResult) -> bool:
    """Send a file from ``offset`` a chunk at a time; True once the store has checked and kept it."""
    while True:
        chunk = data[offset:offset + CHUNK]
        try:
            reply = client.send_chunk(sha, offset, chunk, len(data))
        except ServerError as err:
            if err.status == 409:  # another laptop sent part of it meanwhile: go on from where the store is
                offset = client.file_state(sha)["received"]
                continue
            if err.status == 422:
                result.problems.append(f"file {sha[:12]}: {err}")
                return False
            raise
        result.bytes_sent += len(chunk)
        if reply["complete"]:
            return True
        offset = reply["received"]


def wanted_files(register) -> list[str]:
    """Files the attachments on this laptop show that are not here yet: thumbnails, then reduced copies."""
    blobs = register.store.blobs
    thumbs, copies = [], []
    for record in register.all_attachments():
        if record.get("thumb_sha256") and not blobs.has(record["thumb_sha256"]):
            thumbs.append(record["thumb_sha256"])
        if not blobs.has(shown_copy(record)):
            copies.append(shown_copy(record))
    return list(dict.fromkeys([*thumbs, *copies]))


def download(register, client: Transport, sha: str, result: FileResult | None = None) -> bool:
    """Bring one file here in slices, going on from a partial download; True once it is stored and checked."""
    blobs = register.store.blobs
    offset = blobs.partial_size(sha)
    while True:
        data, size = client.file_slice(sha, offset, CHUNK)
        if offset > size or (not data and offset < size):
            offset = blobs.append_partial(sha, 0, b"")  # not the file this partial download was: start it again
            continue
        if data:
            offset = blobs.append_partial(sha, offset, data)
            if result is not None:
                result.bytes_received += len(data)
        if offset >= size:
            return blobs.finish_partial(sha)


def fetch_files(register, client: Transport, tell: Tell | None = None, result: FileResult | None = None) -> FileResult:
    """Fetch the thumbnails and reduced copies of every attachment this laptop shows but does not hold."""
    result = result or FileResult()
    wanted = wanted_files(register)
    for number, sha in enumerate(wanted, start=1):
        if tell:
            tell(f"fetching file {number} of {len(wanted)}")
        try:
            if download(register, client, sha, result):
                result.received += 1
            else:
                result.problems.append(f"file {sha[:12]} arrived damaged (its hash does not match); it is fetched again next time")
        except ServerError as err:
            if err.status != 404:
                raise
            result.waiting.append(f"file {sha[:12]}: not on the central store yet")
    return result


def fetch_file(register, sha: str) -> str | None:
    """Fetch one file now (``fieldkit fetch``); None when it is here, else why not, in one line."""
    from fieldkit.sync import transport_for

    client = transport_for(register)
    if isinstance(client, str):
        return client
    try:
        if download(register, client, sha):
            return None
        return "the file arrived damaged (its hash does not match); try again"
    except ServerError as err:
        if err.status == 404:
            return ("the central store does not have this file, or it is outside your account's area; "
                    "an original arrives once the laptop that attached it runs `fieldkit sync --originals`")
        return str(err)
    except SyncError as err:
        return str(err)
    finally:
        client.close()


def describe(result: FileResult) -> dict[str, Any]:
    return {"sent": result.sent, "received": result.received, "bytes_sent": result.bytes_sent,
            "bytes_received": result.bytes_received}
