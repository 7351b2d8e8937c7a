"""Attached files through a real ``fieldkit serve`` on SQLite and PostgreSQL: records first, bytes after,
reduced copies by default, originals on demand, uploads that resume after a cut, hashes checked,
scope applied to files as to their issues.
"""

from __future__ import annotations

import hashlib
import random
import secrets
from pathlib import Path

import httpx
import pytest

from fieldkit import refdata
from fieldkit.attachments import attach
from fieldkit.file_sync import CHUNK
from fieldkit.register import Register
from fieldkit.sync import sync
from photo_files import phone_photo
from sync_fixtures import Central, CuttingProxy, add_user, central, open_laptop  # noqa: F401 - fixtures

SPARE = [m.code for m in refdata.municipalities().values() if m.category == "B" and m.province in ("KZN", "WC")]
random.Random(12).shuffle(SPARE)


def name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.fixture
def area(central: Central) -> tuple[str, str]:
    """A municipality no other test here uses, and a facilitator's token for it."""
    code = SPARE.pop()
    return code, add_user(central.db_url, name("facilitator"), "facilitator", (code,))


def new_issue(laptop: Register, code: str, title: str = "Burst main at the school") -> str:
    return laptop.create_issue({"municipality": code, "sector": "water", "title": title})["id"]


def server_files(central: Central) -> dict[str, int]:
    """The complete files the central store keeps, by name, with their sizes."""
    found = {}
    for folder in (central.server.home / "central-files", central.server.home / "server-files"):
        for path in folder.rglob("*"):
            if path.is_file() and "incoming" not in path.parts and not path.name.startswith("."):
                found[path.name] = path.stat().st_size
    return found


def test_two_laptops_attach_to_one_issue_offline_and_both_see_both(central: Central, area, tmp_path: Path) -> None:
    code, token = area
    a, b = open_laptop(tmp_path / "a", "Thandi"), open_laptop(tmp_path / "b", "Sipho")
    issue_id = new_issue(a, code)
    assert sync(a, central.url, token).finished
    assert sync(b, central.url, token).finished
    from_a = attach(a, issue_id, phone_photo(tmp_path / "a.jpg", seed=1), caption="From the road").record
    from_b = attach(b, issue_id, phone_photo(tmp_path / "b.jpg", seed=2), caption="From the reservoir").record
    minutes = tmp_path / "minutes.pdf"
    minutes.write_bytes(b"%PDF-1.4\n" + b"imbizo minutes " * 2000 + b"\n%%EOF\n")
    pdf = attach(b, issue_id, minutes).record
    for laptop in (a, b, a):
        result = sync(laptop)
        assert result.finished, result.error
    for laptop in (a, b):
        shown = {r["caption"] if r.get("caption") else r["name"] for r in laptop.attachments(issue_id)}
        assert shown == {"From the road", "From the reservoir", "minutes.pdf"}
    # reduced copies and thumbnails travel; originals of photos stay on the laptop that took them
    assert b.store.blobs.get(from_a["reduced_sha256"]) and b.store.blobs.get(from_a["thumb_sha256"])
    assert a.store.blobs.get(from_b["reduced_sha256"]) and a.store.blobs.get(pdf["sha256"]) == minutes.read_bytes()
    assert not b.store.blobs.has(from_a["sha256"])
    held = server_files(central)
    assert from_a["reduced_sha256"] in held and from_a["sha256"] not in held
    # the original on demand: not there until its laptop sends it, then fetched
    from fieldkit.file_sync import fetch_file

    assert "sync --originals" in fetch_file(b, from_a["sha256"])
    result = sync(a, originals=True)
    assert result.finished and result.files_sent == 1
    assert fetch_file(b, from_a["sha256"]) is None
    assert b.store.blobs.get(from_a["sha256"]) == (tmp_path / "a.jpg").read_bytes()


def test_an_identical_file_attached_twice_is_kept_twice_as_records_and_once_as_bytes(central: Central, area, tmp_path: Path) -> None:
    code, token = area
    a, b = open_laptop(tmp_path / "a"), open_laptop(tmp_path / "b")
    issue_id = new_issue(a, code)
    assert sync(a, central.url, token).finished
    assert sync(b, central.url, token).finished
    photo = phone_photo(tmp_path / "same.jpg", seed=7)
    first = attach(a, issue_id, photo, caption="Sent by the ward councillor").record
    second = attach(b, issue_id, photo, caption="Sent by the plant operator").record
    assert first["sha256"] == second["sha256"] and first["id"] != second["id"]
    sent_a = sync(a)
    sent_b = sync(b)
    assert sent_a.finished and sent_b.finished
    assert sent_a.bytes_sent > 0 and sent_b.bytes_sent == 0  # the store already had the bytes
    assert sync(a).finished
    for laptop in (a, b):
        assert sorted(r["caption"] for r in laptop.attachments(issue_id)) == ["Sent by the plant operator", "Sent by the ward councillor"]
    held = server_files(central)
    assert held[first["reduced_sha256"]] == first["reduced_size"]


def test_an_upload_cut_in_the_middle_goes_on_where_it_stopped(central: Central, area, tmp_path: Path) -> None:
    code, token = area
    laptop = open_laptop(tmp_path / "a")
    issue_id = new_issue(laptop, code)
    assert sync(laptop, central.url, token).finished
    photos = [attach(laptop, issue_id, phone_photo(tmp_path / f"p{n}.jpg", seed=10 + n)).record for n in range(3)]
    files = sum(p["reduced_size"] for p in photos) + sum(len(laptop.store.blobs.get(p["thumb_sha256"])) for p in photos)
    proxy = CuttingProxy(central.server.port)
    try:
        proxy.cut_up = [600_000, 1_100_000]  # inside the second file's chunks, then inside a later one
        first = sync(laptop, proxy.url, token)
        assert proxy.cuts == 2, proxy.totals
        if not first.finished:
            assert sync(laptop, proxy.url, token).finished
    finally:
        proxy.close()
    held = server_files(central)
    for photo in photos:
        assert held[photo["reduced_sha256"]] == photo["reduced_size"]
    # each cut costs at most the chunk that was on its way (plus requests' headers), never a file from zero
    assert proxy.totals["up"] <= files + 2 * CHUNK + 60_000, (proxy.totals, files)
    assert laptop.files_to_send() == []


def test_bytes_that_do_not_match_their_hash_are_refused_and_not_kept(central: Central, area, tmp_path: Path) -> None:
    code, token = area
    laptop = open_laptop(tmp_path / "a")
    issue_id = new_issue(laptop, code)
    minutes = tmp_path / "minutes.pdf"
    minutes.write_bytes(b"%PDF-1.4\n" + b"the real minutes " * 3000 + b"\n%%EOF\n")
    record = attach(laptop, issue_id, minutes).record
    laptop.files_sent([record["sha256"]])  # keep the bytes back: only the record goes
    assert sync(laptop, central.url, token).finished
    forged = b"%PDF-1.4\n" + b"other minutes!!! " * 3000 + b"\n%%EOF\n"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"}
    sha = record["sha256"]
    reply = httpx.put(f"{central.url}/files/{sha}", params={"offset": 0, "total": len(forged)}, content=forged, headers=headers)
    assert reply.status_code == 422 and "do not match its SHA-256" in reply.json()["detail"]
    state = httpx.get(f"{central.url}/files/{sha}/upload", headers=headers).json()
    assert state == {"sha256": sha, "received": 0, "complete": False}
    assert sha not in server_files(central)
    laptop.send_original(sha)
    assert sync(laptop).finished
    assert server_files(central)[sha] == len(minutes.read_bytes())
    assert hashlib.sha256(httpx.get(f"{central.url}/files/{sha}", params={"length": 4_000_000}, headers=headers).content).hexdigest() == sha


def test_a_facilitator_cannot_fetch_or_send_a_file_outside_their_area(central: Central, area, tmp_path: Path) -> None:
    code, token = area
    laptop = open_laptop(tmp_path / "a")
    issue_id = new_issue(laptop, code)
    record = attach(laptop, issue_id, phone_photo(tmp_path / "p.jpg")).record
    assert sync(laptop, central.url, token).finished
    other = add_user(central.db_url, name("elsewhere"), "facilitator", (SPARE[0],))
    headers = {"Authorization": f"Bearer {other}"}
    for path in (f"/files/{record['reduced_sha256']}", f"/files/{record['reduced_sha256']}/upload"):
        refused = httpx.get(f"{central.url}{path}", headers=headers)
        assert refused.status_code == 404 and "outside your area" in refused.json()["detail"], path
    mine = httpx.get(f"{central.url}/files/{record['reduced_sha256']}", params={"length": 4_000_000},
                     headers={"Authorization": f"Bearer {token}"})
    assert mine.status_code == 200 and hashlib.sha256(mine.content).hexdigest() == record["reduced_sha256"]
    stranger = open_laptop(tmp_path / "stranger")
    result = sync(stranger, central.url, other)
    assert result.finished and stranger.all_attachments() == [] and result.files_received == 0
