"""Erasing a community contact (POPIA), end to end: two laptops and a real ``fieldkit serve``.

The name and phone must go from the issue, from the conflicts that kept an
earlier value, from changes still queued on a laptop, from the central store's
operation log, from backups and from every replica once it syncs; a note on
the timeline says who erased it and when.
"""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sync_fixtures import add_user, db_url, serve  # noqa: F401 - fixtures

from fieldkit.server.db import Database

NAMES = ("Nomvula Qwabe", "Nomvula Q. Qwabe", "N. Qwabe")
PHONES = ("0825550142", "0825550199")


def fieldkit(home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "FIELDKIT_PASSPHRASE"}
    env.update(FIELDKIT_HOME=str(home), FIELDKIT_STATE=str(home) + "-state")
    done = subprocess.run([sys.executable, "-m", "fieldkit", *args], capture_output=True, text=True, env=env, timeout=120)
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def leaks(folder: Path, secrets: tuple[str, ...]) -> list[tuple[str, str]]:
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            data = gzip.decompress(data) if path.name.endswith(".gz") else data
            found += [(path.name, s) for s in secrets if s.encode() in data]
    return found


def server_leaks(db_path: Path, secrets: tuple[str, ...]) -> list[str]:
    conn = sqlite3.connect(db_path)
    try:
        rows = [r[0] for r in conn.execute("SELECT op FROM ops")] + [r[0] for r in conn.execute("SELECT state FROM records")]
    finally:
        conn.close()
    return [s for s in secrets for row in rows if s in row]


@pytest.fixture
def central(serve, tmp_path: Path):  # noqa: F811
    path = tmp_path / "central.sqlite3"
    url = f"sqlite:///{path}"
    Database(url).migrate()
    server = serve(url)
    tokens = {name: add_user(url, name, "facilitator", municipalities=("EC121",)) for name in ("thandi", "sipho")}
    tokens["admin"] = add_user(url, "admin", "admin")
    return server, path, tokens


def shown(home: Path, ref: str) -> dict:
    return json.loads(fieldkit(home, "show", ref, "--json", "--personal").stdout)


def test_forget_contact_erases_it_from_history_the_store_and_every_laptop(central, tmp_path: Path) -> None:
    server, db_path, tokens = central
    thandi, sipho = tmp_path / "thandi", tmp_path / "sipho"
    ref = fieldkit(thandi, "add", "--municipality", "EC121", "--sector", "water", "--title", "No water in Ilitha",
                   "--contact-name", NAMES[0], "--contact-phone", PHONES[0], "--author", "Thandi").stdout.split()[1]
    fieldkit(thandi, "sync", "--server", server.url, "--token", tokens["thandi"])
    fieldkit(sipho, "sync", "--server", server.url, "--token", tokens["sipho"])
    fieldkit(sipho, "edit", ref, "--contact-name", NAMES[1], "--author", "Sipho")  # both change it: a conflict
    fieldkit(thandi, "edit", ref, "--contact-name", NAMES[2], "--author", "Thandi")
    fieldkit(sipho, "sync")
    fieldkit(thandi, "sync")
    assert [c["field"] for c in shown(thandi, ref)["conflicts"]] == ["contact_name"]
    fieldkit(sipho, "edit", ref, "--contact-phone", PHONES[1], "--author", "Sipho")  # queued, not yet sent
    fieldkit(sipho, "backup")
    fieldkit(thandi, "backup")

    done = fieldkit(thandi, "forget-contact", ref, "--author", "Thandi Mokoena")
    assert "erased the community contact" in done.stdout
    assert leaks(thandi, NAMES + PHONES) == []  # at once on this laptop: file, free pages, backups
    fieldkit(thandi, "sync")
    fieldkit(sipho, "sync")  # sends its older phone change (overruled) and takes the erasure
    fieldkit(thandi, "sync")

    for home in (thandi, sipho):
        issue = shown(home, ref)
        assert issue.get("contact_name") in (None, "") and issue.get("contact_phone") in (None, "")
        assert issue["conflicts"] == []
        notes = [entry for entry in issue["timeline"] if "erased (POPIA)" in entry["text"]]
        assert len(notes) == 1 and notes[0]["author"] == "Thandi Mokoena" and notes[0]["at"][:10] == notes[0]["text"][-10:]
        assert leaks(home, NAMES + PHONES) == [], home.name
        assert fieldkit(home, "sync", "--rejected").returncode == 0
    assert server_leaks(db_path, NAMES + PHONES) == []
    history = httpx.get(f"{server.url}/sync/history/{shown(thandi, ref)['id']}",
                        headers={"Authorization": f"Bearer {tokens['admin']}"}).json()
    assert history[-2]["author"] == "Thandi Mokoena" and "contact_name" in history[-2]["fields"]


def test_an_administrator_erases_a_contact_on_the_central_store(central, tmp_path: Path) -> None:
    server, db_path, tokens = central
    thandi, sipho = tmp_path / "thandi", tmp_path / "sipho"
    ref = fieldkit(thandi, "add", "--municipality", "EC121", "--sector", "roads", "--title", "Bridge washed away",
                   "--contact-name", NAMES[0], "--contact-phone", PHONES[0]).stdout.split()[1]
    fieldkit(thandi, "sync", "--server", server.url, "--token", tokens["thandi"])
    fieldkit(sipho, "sync", "--server", server.url, "--token", tokens["sipho"])
    issue_id = shown(sipho, ref)["id"]
    route = f"{server.url}/admin/issues/{issue_id}/forget-contact"

    refused = httpx.post(route, headers={"Authorization": f"Bearer {tokens['sipho']}"})
    assert refused.status_code == 403 and "administrator" in refused.json()["detail"]
    missing = httpx.post(f"{server.url}/admin/issues/{'0' * 8}-0000-7000-8000-{'0' * 12}/forget-contact",
                         headers={"Authorization": f"Bearer {tokens['admin']}"})
    assert missing.status_code == 404
    done = httpx.post(route, headers={"Authorization": f"Bearer {tokens['admin']}"})
    assert done.status_code == 200 and len(done.json()["acknowledged"]) == 2
    assert server_leaks(db_path, NAMES + PHONES) == []

    for home in (thandi, sipho):
        fieldkit(home, "sync")
        issue = shown(home, ref)
        assert issue.get("contact_name") in (None, "") and issue.get("contact_phone") in (None, "")
        assert any("erased (POPIA) by admin" in entry["text"] for entry in issue["timeline"])
        assert leaks(home, NAMES + PHONES) == []


def test_an_erasure_gives_the_same_state_in_any_order_and_overrules_a_late_older_change() -> None:
    """Every replica applies operations in its own order: the erasure must win in all of them."""
    from itertools import permutations

    from fieldkit import erasure, merge

    issue = "01a23400-0000-7000-8000-000000000001"

    def op(n: int, device: str, ms: int, fields: dict, **extra) -> dict:
        return {"op_id": f"01a23400-0000-7000-8000-{n:012d}", "type": "issue", "id": issue, "device": device,
                "author": device, "hlc": f"{ms:016d}:0000:{device}", "fields": fields, "seen": {}, **extra}

    created = op(1, "aaaa", 1000, {"title": "No water", "contact_name": NAMES[0], "contact_phone": PHONES[0]})
    rival = op(2, "bbbb", 2000, {"contact_name": NAMES[1]})
    erase = erasure.erase_fields(op(3, "cccc", 3000, {}))
    late = op(4, "dddd", 2500, {"contact_phone": PHONES[1]})  # made offline before the erasure, arrives after
    assert merge.op_problem(erase) is None
    states = set()
    for order in permutations([created, rival, erase, late]):
        state = merge.apply_ops(None, order)
        assert state["values"]["contact_name"] is None and state["values"]["contact_phone"] is None
        assert state["values"]["title"] == "No water" and merge.conflicts(state) == []
        assert all(erasure.scrub(o, state)["fields"].get(f) is None for o in order for f in erasure.ERASABLE)
        states.add(json.dumps(state, sort_keys=True))
    assert len(states) == 1
    after = op(5, "aaaa", 4000, {"contact_name": "A new contact"})  # typed after the erasure: a new contact
    assert merge.apply_ops(merge.apply_ops(None, [created, erase]), [after])["values"]["contact_name"] == "A new contact"


def test_the_central_store_forgets_a_contact_on_sqlite_and_postgresql(db_url: str, serve, tmp_path: Path) -> None:  # noqa: F811
    server = serve(db_url)
    thandi = tmp_path / "thandi"
    token = add_user(db_url, "thandi", "facilitator", municipalities=("EC121",))
    admin = add_user(db_url, "admin", "admin")
    ref = fieldkit(thandi, "add", "--municipality", "EC121", "--sector", "water", "--title", "Leaking standpipe",
                   "--contact-name", NAMES[0], "--contact-phone", PHONES[0]).stdout.split()[1]
    fieldkit(thandi, "edit", ref, "--contact-name", NAMES[2])
    fieldkit(thandi, "sync", "--server", server.url, "--token", token)
    issue_id = shown(thandi, ref)["id"]
    done = httpx.post(f"{server.url}/admin/issues/{issue_id}/forget-contact", headers={"Authorization": f"Bearer {admin}"})
    assert done.status_code == 200, done.text
    database = Database(db_url)
    try:
        with database.read() as tx:
            stored = [row[0] for row in tx.rows("SELECT op FROM ops")] + [row[0] for row in tx.rows("SELECT state FROM records")]
    finally:
        database.close()
    assert [s for s in NAMES + PHONES for row in stored if s in row] == []
    fieldkit(thandi, "sync")
    assert shown(thandi, ref).get("contact_name") in (None, "")
