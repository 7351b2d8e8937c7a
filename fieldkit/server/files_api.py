"""The central store's routes for attached files: uploads in chunks that resume, downloads in slices.

A file is known to the store only through an attachment record: a laptop
sends the records first, then the bytes, and may send or fetch a file only
when an attachment in its account's area names it (the same scope as the
issue). A file outside that scope is answered exactly like one that is not
there. Each upload is checked against its SHA-256 before it is kept.
"""

from __future__ import annotations

import os
from pathlib import Path as FilePath
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel

from fieldkit.model import ATTACHMENT_MAX_BYTES
from fieldkit.server.accounts import User
from fieldkit.server.app import PROBLEMS, Problem, current_user, get_db
from fieldkit.server.db import Database
from fieldkit.server.files import CHUNK_MAX, FileStorage, HashMismatch, LocalFiles, OutOfOrder

SHA = r"^[0-9a-f]{64}$"
NOT_HERE = "no attachment in your account's area names this file (send its record first, or it is outside your area)"

router = APIRouter(tags=["files"])

ANSWERS: dict[int | str, dict[str, Any]] = {
    **{k: PROBLEMS[k] for k in (400, 401, 422, 503)},
    404: {"model": Problem, "description": "no attachment in your area names this file, or the store does not have it yet"},
}
UPLOAD_ANSWERS: dict[int | str, dict[str, Any]] = {
    **ANSWERS,
    409: {"model": Problem, "description": "the chunk starts after the bytes the store holds; ask how much it has"},
    413: PROBLEMS[413],
    415: PROBLEMS[415],
    422: {"model": Problem, "description": "the bytes do not match the file's SHA-256, or the request has the wrong shape"},
}


class UploadState(BaseModel):
    sha256: str
    received: int
    complete: bool


def default_root(db: Database) -> FilePath:
    """``$FIELDKIT_SERVER_FILES``, else a ``files`` folder beside the SQLite database (or in the data folder)."""
    configured = os.environ.get("FIELDKIT_SERVER_FILES")
    if configured:
        return FilePath(configured).expanduser()
    if db.sqlite_path is not None:
        return db.sqlite_path.parent / f"{db.sqlite_path.stem}-files"
    from fieldkit.store import default_home

    return default_home() / "server-files"


def storage(request: Request) -> FileStorage:
    return request.app.state.files


def _in_scope(db: Database, user: User, sha: str) -> None:
    if not db.file_visible(user, sha):
        raise HTTPException(404, NOT_HERE)


@router.get("/files/{sha}/upload", response_model=UploadState, responses=ANSWERS)
def upload_state(sha: str = Path(pattern=SHA), user: User = Depends(current_user), db: Database = Depends(get_db),
                 files: FileStorage = Depends(storage)) -> dict[str, Any]:
    """How much of a file the store holds: a laptop goes on from there after a cut."""
    _in_scope(db, user, sha)
    size = files.size(sha)
    return {"sha256": sha, "received": size if size is not None else files.received(sha), "complete": size is not None}


@router.put("/files/{sha}", response_model=UploadState, responses=UPLOAD_ANSWERS)
async def upload_chunk(request: Request, sha: str = Path(pattern=SHA),
                       offset: int = Query(ge=0, le=ATTACHMENT_MAX_BYTES), total: int = Query(ge=1, le=ATTACHMENT_MAX_BYTES),
                       user: User = Depends(current_user), db: Database = Depends(get_db),
                       files: FileStorage = Depends(storage)) -> dict[str, Any]:
    """A chunk of a file at ``offset``; the file is checked against its hash when its last byte is in."""
    await run_in_threadpool(_in_scope, db, user, sha)
    data = await request.body()
    if len(data) > CHUNK_MAX:
        raise HTTPException(413, f"a chunk is at most {CHUNK_MAX:,} bytes")
    if offset + len(data) > total:
        raise HTTPException(422, "the chunk goes past the file's total size")
    try:
        received = await run_in_threadpool(files.append, sha, offset, data, total)
    except OutOfOrder as err:
        raise HTTPException(409, f"the store holds {err.received} bytes of this file; send from there") from None
    except HashMismatch:
        raise HTTPException(422, "the file's bytes do not match its SHA-256; nothing was kept, send it again") from None
    return {"sha256": sha, "received": received, "complete": received >= total and files.size(sha) is not None}


@router.get("/files/{sha}", responses={200: {"content": {"application/octet-stream": {}}}, **ANSWERS})
def download(sha: str = Path(pattern=SHA), offset: int = Query(0, ge=0), length: int = Query(256 * 1024, ge=1, le=CHUNK_MAX),
             user: User = Depends(current_user), db: Database = Depends(get_db),
             files: FileStorage = Depends(storage)) -> Response:
    """A slice of a file (``X-File-Size`` says how large it is), for laptops in the scope of an attachment naming it."""
    _in_scope(db, user, sha)
    size = files.size(sha)
    if size is None:
        raise HTTPException(404, "the central store does not have this file yet; the laptop that attached it sends it when it syncs")
    data = files.read(sha, min(offset, size), length)
    return Response(data, media_type="application/octet-stream", headers={"X-File-Size": str(size)})


def install(app, db: Database, root: FilePath | None = None) -> None:
    """Serve files from ``root`` (default: ``default_root``)."""
    app.state.files = LocalFiles(root or default_root(db))
    app.include_router(router)


