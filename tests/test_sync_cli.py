"""End to end, as people type it: an administrator makes accounts, two laptops capture offline, sync
through a real ``fieldkit serve`` (SQLite and PostgreSQL), edit the same issue, sync again — and both
hold the same register, with different-field edits both kept and the same-field clash shown on both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sync_fixtures import db_url, free_port, serve  # noqa: F401 - fixtures


def fieldkit(home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "FIELDKIT_HOME": str(home)}
    done = subprocess.run([sys.executable, "-m", "fieldkit", *args], capture_output=True, text=True, env=env, timeout=120)
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def test_two_laptops_and_one_store_end_in_the_same_register(db_url: str, serve, tmp_path: Path) -> None:
    admin_home, thandi_home, sipho_home = tmp_path / "admin", tmp_path / "thandi", tmp_path / "sipho"
    added = fieldkit(admin_home, "user", "add", "thandi", "--municipality", "EC121", "--municipality", "EC122", "--db", db_url)
    thandi_token = added.stdout.strip()
    assert len(thandi_token) > 30 and "shown only this once" in added.stderr and thandi_token not in added.stderr
    sipho_token = fieldkit(admin_home, "user", "add", "sipho", "--role", "coordinator", "--province", "Eastern Cape", "--db", db_url).stdout.strip()
    everything = db_url.startswith("sqlite")  # the commands around the core flow are checked once, not per database
    if everything:
        listed = fieldkit(admin_home, "user", "list", "--json", "--db", db_url).stdout
        assert [u["name"] for u in json.loads(listed)] == ["sipho", "thandi"] and thandi_token not in listed
        never = fieldkit(thandi_home, "sync", ok=False)
        assert never.returncode == 1 and never.stderr.startswith("fieldkit: no central store set yet")

    mine = fieldkit(thandi_home, "add", "--municipality", "EC121", "--sector", "water", "--title", "Burst main at Dutywa",
                    "--contact-phone", "082 123 4567", "--author", "Thandi").stdout.split()[0]
    fieldkit(sipho_home, "add", "--municipality", "EC122", "--sector", "roads", "--title", "Bridge washed away", "--author", "Sipho")

    if everything:
        dead = f"http://127.0.0.1:{free_port()}"
        offline = fieldkit(thandi_home, "sync", "--server", dead, "--token", thandi_token, ok=False)
        assert offline.returncode == 1
        assert offline.stderr.strip() == f"fieldkit: cannot reach {dead}: connection refused; your 1 change is kept and will be sent next time"

    server = serve(db_url)
    for home, token in ((thandi_home, thandi_token), (sipho_home, sipho_token), (thandi_home, None), (sipho_home, None)):
        extra = ["--server", server.url, "--token", token] if token else []
        done = fieldkit(home, "sync", *extra)
        assert done.stdout.startswith(f"synced with {server.url}: sent ")
        assert thandi_token not in done.stdout + done.stderr and sipho_token not in done.stdout + done.stderr
    ids = [sorted(row["id"] for row in json.loads(fieldkit(home, "find", "--json").stdout)) for home in (thandi_home, sipho_home)]
    assert ids[0] == ids[1] and len(ids[0]) == 2

    fieldkit(thandi_home, "edit", mine, "--severity", "critical", "--description", "Reservoir empty", "--author", "Thandi")
    fieldkit(sipho_home, "edit", mine, "--title", "Burst bulk main at Dutywa", "--description", "Pump station flooded", "--author", "Sipho")
    for home in (thandi_home, sipho_home, thandi_home):
        fieldkit(home, "sync")

    shown = [json.loads(fieldkit(home, "show", mine, "--json").stdout) for home in (thandi_home, sipho_home)]
    for issue in shown:
        assert issue["severity"] == "critical" and issue["title"] == "Burst bulk main at Dutywa"
        assert issue["description"] == "Pump station flooded"  # the later edit wins...
        assert [(c["field"], c["value"], c["author"]) for c in issue["conflicts"]] == [("description", "Reservoir empty", "Thandi")]
        assert issue["contact_phone"] == "(hidden; --personal shows it)"
    if not everything:
        return
    conflicts = fieldkit(sipho_home, "conflicts").stdout
    assert "description — kept 'Pump station flooded', also 'Reservoir empty' by Thandi" in conflicts

    status = fieldkit(thandi_home, "sync", "--status").stdout
    assert f"central store   {server.url}" in status and "token           set" in status and thandi_token not in status

    fieldkit(admin_home, "user", "revoke", "thandi", "--db", db_url)
    refused = fieldkit(thandi_home, "sync", ok=False)
    assert refused.returncode == 1 and "the account thandi has been revoked" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_the_not_yet_sent_marks_follow_saves_syncs_and_other_terminals(serve, tmp_path: Path) -> None:
    """The app asks which records are not yet sent after every save; it reads only what was queued since,
    and still sees what another terminal's sync sent and what its saves queued."""
    from sync_fixtures import add_user

    from fieldkit.register import Register

    db = f"sqlite:///{tmp_path / 'central.sqlite3'}"
    server = serve(db)
    token = add_user(db, "thandi", "facilitator", ("EC121",))
    home = tmp_path / "thandi"

    def ids(*refs: str) -> set[str]:
        return {json.loads(fieldkit(home, "show", ref, "--json").stdout)["id"] for ref in refs}

    refused = fieldkit(home, "add", "--municipality", "BUF", "--sector", "roads", "--title", "Outside her scope").stdout.split()[0]
    with Register.open(home, author="Thandi") as app_register:  # held open, as the app holds it
        first = app_register.create_issue({"municipality": "EC121", "sector": "water", "title": "Burst main at Dutywa"})
        assert app_register.unsynced_record_ids() == ids(refused) | {first["id"]}

        fieldkit(home, "sync", "--server", server.url, "--token", token)  # sends the first; BUF is refused and stays
        later = fieldkit(home, "add", "--municipality", "EC121", "--sector", "roads", "--title", "Bridge washed away").stdout.split()[0]
        app_register.refresh()
        assert app_register.unsynced_record_ids() == ids(refused, later)

        note = app_register.add_note(first["id"], "The WSA promised a team on Monday")
        assert app_register.unsynced_record_ids() == ids(refused, later) | {note["id"]}

        fieldkit(home, "forget-contact", later)  # rebuilds the file, numbering its rows anew
        fieldkit(home, "note", later, "Contact asked to be removed")
        app_register.refresh()
        with Register.open(home) as fresh:
            assert app_register.unsynced_record_ids() == fresh.unsynced_record_ids()
