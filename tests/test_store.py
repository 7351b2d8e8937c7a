"""The local store keeps every save that returned, through kill -9, torn writes and damaged files."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fieldkit.filters import IssueFilter
from fieldkit.register import Register
from fieldkit.store import Store, StoreCorrupt

from conftest import run_fieldkit

WRITER = Path(__file__).with_name("store_writer.py")


def add(register: Register, title: str, **extra) -> dict:
    return register.create_issue({"municipality": "BUF", "sector": "water", "title": title, **extra})


def test_saves_survive_reopening(home):
    with Register.open(home) as register:
        first = add(register, "Burst main on Oxford Street", ward=3)
        register.edit_issue(first["id"], {"severity": "critical"})
        register.change_status(first["id"], "escalated", "No response in three weeks")
    with Register.open(home) as register:
        issue = register.issue(first["id"])
        assert issue["severity"] == "critical" and issue["status"] == "escalated"
        assert [e.kind for e in register.timeline(first["id"])] == ["created", "status"]


def test_every_change_goes_to_the_outbox_with_its_field_stamps(register):
    issue = add(register, "Leak")
    register.edit_issue(issue["id"], {"severity": "high"})
    ops = register.pending_ops()
    assert [op["type"] for op in ops] == ["issue", "issue"]
    assert ops[1]["fields"] == {"severity": "high"}
    assert ops[1]["seen"] == {"severity": ops[0]["hlc"]}
    register.acknowledge([ops[0]["op_id"]])
    assert [op["op_id"] for op in register.pending_ops()] == [ops[1]["op_id"]]


def test_notes_and_actions_added_in_a_burst_are_all_kept(register):
    issue = add(register, "Leak")
    with register.store.transaction():
        for n in range(50):
            register.add_action(issue["id"], f"Action {n}")
            register.add_note(issue["id"], f"Note {n}")
    assert len(register.actions(issue["id"])) == 50 and len(register.notes(issue["id"])) == 50
    assert {a["id"][-1] for a in register.actions(issue["id"])} == {issue["id"][-1]}


def test_a_failed_transaction_leaves_nothing_behind(register):
    kept = add(register, "Kept")
    with pytest.raises(RuntimeError):
        with register.store.transaction():
            add(register, "Lost")
            register.edit_issue(kept["id"], {"title": "Changed"})
            raise RuntimeError("power cut")
    assert [row.title for row in register.find(IssueFilter())] == ["Kept"]
    assert register.issue(kept["id"])["title"] == "Kept"
    assert len(register.pending_ops()) == 1


def test_kill_9_at_random_moments_loses_no_save_that_returned(home):
    """A writer is killed with SIGKILL again and again, also mid-compaction; every acknowledged save is there."""
    rng = random.Random(7)
    acknowledged: list[str] = []
    for trial in range(30):
        writer = subprocess.Popen(
            [sys.executable, str(WRITER), str(home), str(trial * 100_000)],
            stdout=subprocess.PIPE, text=True,
        )
        first = writer.stdout.readline()  # it is writing now; kill it somewhere in what follows
        time.sleep(rng.uniform(0.0, 0.5))
        writer.send_signal(signal.SIGKILL)
        out, _ = writer.communicate()
        acknowledged += (first + out).split()
        with Register.open(home) as register:  # loads, or the test fails with StoreCorrupt
            missing = [i for i in acknowledged if i not in register.index]
            assert not missing, f"trial {trial}: {len(missing)} acknowledged saves lost"
    assert len(acknowledged) > 100
    assert list((home / "backups").iterdir()), "compaction ran (and was interrupted) during the trials"


def test_saves_after_a_compaction_in_another_session_are_kept(home):
    with Register.open(home) as register:
        add(register, "Before")
        register.store.compact()
    with Register.open(home) as register:
        add(register, "After")  # the journal is empty now; its numbering must go on after the snapshot's
    with Register.open(home) as register:
        assert sorted(r.title for r in register.find()) == ["After", "Before"]
        assert sorted(v["title"] for v in register.store.documents("issue").values()) == ["After", "Before"]


def test_a_torn_last_line_is_dropped_and_later_saves_are_kept(home):
    with Register.open(home) as register:
        add(register, "Before the crash")
    with open(home / "journal.log", "ab") as journal:
        journal.write(b'1234abcd {"seq": 99, "wri')  # a write cut off by a power failure
    with Register.open(home) as register:
        assert [r.title for r in register.find()] == ["Before the crash"]
        add(register, "After the crash")
    with Register.open(home) as register:
        assert sorted(r.title for r in register.find()) == ["After the crash", "Before the crash"]


def test_damage_inside_the_journal_stops_with_a_clear_message(home):
    with Register.open(home) as register:
        for n in range(3):
            add(register, f"Issue {n}")
    journal = home / "journal.log"
    lines = journal.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b"Issue", b"Issxe")
    journal.write_bytes(b"\n".join(lines))
    before = journal.read_bytes()
    with pytest.raises(StoreCorrupt) as caught:
        Store(home)
    assert str(journal) in str(caught.value) and "fieldkit recover" in str(caught.value)
    assert journal.read_bytes() == before


def test_corrupt_snapshot_is_never_overwritten_and_recover_restores_the_backup(home):
    with Register.open(home) as register:
        for n in range(5):
            add(register, f"Issue {n}")
        register.store.compact()
        register.store.compact()  # nothing new: no second backup
        add(register, "Issue 5")
        register.store.compact()
    backups = sorted((home / "backups").iterdir())
    assert len(backups) == 2
    victim = json.loads(run_fieldkit(home, "find", "--json").stdout)[0]
    snapshot = home / "tables" / f"issue.{victim['id'][-1]}.json"  # the shard that holds it
    damaged = snapshot.read_bytes()[: snapshot.stat().st_size // 2]
    snapshot.write_bytes(damaged)

    listed = run_fieldkit(home, "find", "--json")  # lookups still answer, from the compact register file
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 6
    for args in (["show", victim["ref"]], ["edit", victim["ref"], "--severity", "high"]):
        result = run_fieldkit(home, *args)
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert str(snapshot) in result.stderr and str(backups[-1]) in result.stderr
    assert snapshot.read_bytes() == damaged, "a damaged file is never written over"

    result = run_fieldkit(home, "recover")
    assert result.returncode == 0, result.stderr
    moved = [p for p in home.iterdir() if p.name.startswith("damaged-")]
    assert (moved[0] / "tables" / snapshot.name).read_bytes() == damaged
    listed = run_fieldkit(home, "find", "--json")
    assert listed.returncode == 0
    assert len(json.loads(listed.stdout)) == 6


def test_two_processes_share_one_store(home):
    with Register.open(home) as app_side:
        add(app_side, "From the app")
        result = run_fieldkit(home, "add", "--municipality", "EC121", "--sector", "roads", "--title", "From the command line")
        assert result.returncode == 0, result.stderr
        add(app_side, "From the app again")  # writing first catches up with the other process
        assert sorted(r.title for r in app_side.find()) == ["From the app", "From the app again", "From the command line"]
    with Register.open(home) as again:
        assert again.count() == 3


def test_compaction_by_another_process_is_noticed(home):
    with Register.open(home) as first:
        add(first, "One")
        with Register.open(home) as second:
            add(second, "Two")
            second.store.compact()
        first.refresh()
        add(first, "Three")
        assert sorted(r.title for r in first.find()) == ["One", "Three", "Two"]


def test_saving_one_edit_appends_a_short_line_instead_of_rewriting(home):
    with Register.open(home) as register:
        first = add(register, "Leak")
        with register.store.transaction():
            for n in range(2000):
                add(register, f"Issue {n}", description="x" * 300)
        register.store.compact()
        sizes = {p: p.stat().st_mtime_ns for p in (home / "tables").iterdir()}
        register.edit_issue(first["id"], {"severity": "high"})
        assert (home / "journal.log").stat().st_size < 4000
        assert {p: p.stat().st_mtime_ns for p in (home / "tables").iterdir()} == sizes


def test_a_same_field_conflict_is_kept_until_resolved(tmp_path):
    """Two laptops change one field offline: both end on the same value, the other kept as a conflict."""
    thandi = Register.open(tmp_path / "thandi", author="Thandi")
    sipho = Register.open(tmp_path / "sipho", author="Sipho")
    issue = add(thandi, "Leak at the clinic")
    sipho.apply_remote(thandi.pending_ops())
    thandi.edit_issue(issue["id"], {"severity": "high"})
    sipho.edit_issue(issue["id"], {"severity": "critical", "ward": 4})
    thandi_ops, sipho_ops = thandi.pending_ops(), sipho.pending_ops()
    thandi.apply_remote(sipho_ops)
    sipho.apply_remote(thandi_ops)
    for laptop in (thandi, sipho):
        shown = laptop.issue(issue["id"])
        assert (shown["severity"], shown["ward"]) == (sipho.issue(issue["id"])["severity"], 4)
        assert [(c.field, c.author) for c in shown.conflicts] == [
            ("severity", "Thandi" if shown["severity"] == "critical" else "Sipho")]
    thandi.resolve_conflict(issue["id"], "severity", "high")
    sipho.apply_remote(thandi.pending_ops())
    for laptop in (thandi, sipho):
        assert laptop.issue(issue["id"])["severity"] == "high" and laptop.issue(issue["id"]).conflicts == []
    thandi.close()
    sipho.close()
