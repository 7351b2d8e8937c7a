"""The local store keeps every save that returned, through kill -9, damage, full disks and old copies."""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fieldkit.filters import IssueFilter
from fieldkit.register import Register
from fieldkit.store import Store, StoreCorrupt, StoreError
from fieldkit.store.backups import Backups

from conftest import run_fieldkit

HERE = Path(__file__).parent
WRITER = HERE / "store_writer.py"
EDITOR = HERE / "store_editor.py"
FIXTURE = HERE / "fixtures" / "store-format-1"


def add(register: Register, title: str, **extra) -> dict:
    return register.create_issue({"municipality": "BUF", "sector": "water", "title": title, **extra})


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def test_saves_survive_reopening(home):
    with Register.open(home) as register:
        first = add(register, "Burst main on Oxford Street", ward=3)
        register.edit_issue(first["id"], {"severity": "critical"})
        register.change_status(first["id"], "escalated", "No response in three weeks")
    with Register.open(home) as register:
        issue = register.issue(first["id"])
        assert issue["severity"] == "critical" and issue["status"] == "escalated"
        assert [e.kind for e in register.timeline(first["id"])] == ["created", "edit", "status"]


def test_the_register_keeps_tinydbs_document_api(register):
    from tinydb import Query

    issue = add(register, "Leak at the clinic", ward=4)
    table = register.store.table("issue")
    assert table.get(doc_id=issue["id"])["title"] == "Leak at the clinic"
    assert [d["title"] for d in table.search(Query().ward == 4)] == ["Leak at the clinic"]
    assert len(table) == 1 and table.contains(doc_id=issue["id"])


def test_every_change_goes_to_the_outbox_with_its_field_stamps(register):
    issue = add(register, "Leak")
    register.edit_issue(issue["id"], {"severity": "high"})
    ops = register.pending_ops()
    assert [op["type"] for op in ops] == ["issue", "issue", "note"]  # the edit, and its line in the timeline
    assert ops[1]["fields"] == {"severity": "high"}
    assert ops[1]["seen"] == {"severity": ops[0]["hlc"]}
    register.acknowledge([ops[0]["op_id"]])
    assert [op["op_id"] for op in register.pending_ops()] == [ops[1]["op_id"], ops[2]["op_id"]]


def test_notes_and_actions_added_in_a_burst_are_all_kept(register):
    issue = add(register, "Leak")
    with register.store.transaction():
        for n in range(50):
            register.add_action(issue["id"], f"Action {n}")
            register.add_note(issue["id"], f"Note {n}")
    assert len(register.actions(issue["id"])) == 50 and len(register.notes(issue["id"])) == 50


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


# -- kill -9 -----------------------------------------------------------------------------------


def kill_trials(home: Path, trials: int, seed: int) -> int:
    """Writers of every kind killed with SIGKILL at random moments; every acknowledged save must be there."""
    rng = random.Random(seed)
    acknowledged: list[str] = []
    kinds = ["issues", "import", "pull", "backup"]
    for trial in range(trials):
        kind = kinds[trial % len(kinds)]
        writer = subprocess.Popen([sys.executable, str(WRITER), str(home), str(trial * 100_000), kind],
                                  stdout=subprocess.PIPE, text=True)
        first = writer.stdout.readline()  # it is writing now; kill it somewhere in what follows
        time.sleep(rng.uniform(0.0, 0.3))
        writer.send_signal(signal.SIGKILL)
        out, _ = writer.communicate()
        acknowledged += (first + out).split()
        with Register.open(home) as register:  # opens, or the test fails with StoreCorrupt
            present = set(register.store.documents("issue"))
            missing = [i for i in acknowledged if i not in present]
            assert not missing, f"trial {trial} ({kind}): {len(missing)} acknowledged saves lost"
            assert not [p for p in (home / "backups").glob(".incomplete-*")], "leftovers of a killed backup are removed on open"
    with Register.open(home) as register:
        register.store.check()
        refs = [row.ref for row in register.find()]
        assert len(refs) == len(set(refs)), "no reference is handed out twice"
    return len(acknowledged)


def test_kill_9_at_random_moments_loses_no_save_that_returned(home):
    assert kill_trials(home, trials=8, seed=7) > 20


@pytest.mark.slow
def test_kill_9_a_thousand_times(home):
    assert kill_trials(home, trials=1000, seed=11) > 1000


# -- other processes at the same time ------------------------------------------------------------


def test_a_long_lived_register_and_a_command_editing_one_issue_keep_both_edits(home):
    with Register.open(home) as app:
        issue = add(app, "Burst main", severity="low")
        app.find()  # the app has its register and index loaded
        result = run_fieldkit(home, "edit", issue["ref"], "--severity", "critical")
        assert result.returncode == 0, result.stderr
        app.edit_issue(issue["id"], {"title": "Burst main on Oxford Street"})
        assert (app.issue(issue["id"])["severity"], app.issue(issue["id"])["title"]) == ("critical", "Burst main on Oxford Street")
    shown = json.loads(run_fieldkit(home, "show", issue["ref"], "--json").stdout)
    assert (shown["severity"], shown["title"]) == ("critical", "Burst main on Oxford Street")


def test_two_processes_editing_one_issue_at_once_lose_no_acknowledged_edit(home):
    with Register.open(home) as register:
        issue = add(register, "Leak")
    editors = [subprocess.Popen([sys.executable, str(EDITOR), str(home), issue["id"], field, "60"],
                                stdout=subprocess.PIPE, text=True) for field in ("title", "responsible")]
    last = {}
    for field, editor in zip(("title", "responsible"), editors):
        out, _ = editor.communicate(timeout=120)
        assert editor.returncode == 0
        last[field] = out.split("\n")[-2]
    with Register.open(home) as register:
        saved = register.issue(issue["id"])
        assert (saved["title"], saved["responsible"]) == (last["title"], last["responsible"])


def test_two_processes_adding_while_a_third_writes_never_share_a_reference(home):
    with Register.open(home) as app:
        add(app, "First")
        adders = [subprocess.Popen([sys.executable, str(WRITER), str(home), str(n * 1000), "issues"],
                                   stdout=subprocess.PIPE, text=True) for n in (1, 2)]
        for n in range(40):
            add(app, f"From the app {n}")
        for adder in adders:
            adder.send_signal(signal.SIGKILL)
            adder.communicate()
        refs = [row.ref for row in app.find()]
    assert len(refs) > 40 and len(refs) == len(set(refs))


def test_a_laptop_restored_from_an_old_copy_never_repeats_a_reference(home, tmp_path):
    with Register.open(home) as register:
        add(register, "Before the copy")
    copy = tmp_path / "old-copy"
    shutil.copytree(home, copy)
    with Register.open(home) as register:
        after = {add(register, f"After the copy {n}")["ref"] for n in range(3)}  # then synced, then the disk died
    shutil.rmtree(home)
    shutil.copytree(copy, home)
    with Register.open(home) as register:
        again = {add(register, f"On the restored laptop {n}")["ref"] for n in range(3)}
        assert register.restored
    assert not after & again


def test_an_ambiguous_reference_is_an_error_that_lists_the_candidates(home, tmp_path):
    with Register.open(home) as register:
        first = add(register, "Burst main")
        other = Register.open(tmp_path / "elsewhere")
        twin = other.create_issue({"municipality": "BUF", "sector": "roads", "title": "Pothole"})
        ops = other.pending_ops()
        for op in ops:
            op["fields"] = {**op["fields"], "ref": first["ref"]} if "ref" in op["fields"] else op["fields"]
        register.apply_remote(ops)
        other.close()
    message = one_line_error(run_fieldkit(home, "show", first["ref"]))
    assert first["id"] in message and twin["id"] in message and "2 issues" in message


def test_a_running_register_sees_another_process_save(home):
    with Register.open(home) as app:
        add(app, "From the app")
        app.find()
        assert app.refresh() is False
        assert run_fieldkit(home, "add", "--municipality", "EC121", "--sector", "roads", "--title", "Pothole on R61").returncode == 0
        assert app.refresh() is True
        assert sorted(r.title for r in app.find()) == ["From the app", "Pothole on R61"]


# -- damage ------------------------------------------------------------------------------------


def flip(path: Path, needle: bytes) -> None:
    raw = bytearray(path.read_bytes())
    at = raw.index(needle)
    raw[at] ^= 0x20
    path.write_bytes(bytes(raw))


def test_a_bit_flipped_record_stops_every_command_with_the_file_named(home):
    with Register.open(home) as register:
        issue = add(register, "Severity test", severity="critical")
        register.store.backup()
    database = home / "register.sqlite"
    flip(database, b'"severity":"critical"')
    before = database.read_bytes()
    for args in (["show", issue["ref"]], ["edit", issue["ref"], "--severity", "high"], ["check"]):
        message = one_line_error(run_fieldkit(home, *args))
        assert str(database) in message and "fieldkit recover" in message
    assert database.read_bytes() == before, "a damaged file is never written over"
    flip(database, b"\tcritical\t")  # the compact line a lookup reads
    message = one_line_error(run_fieldkit(home, "find", "--open"))
    assert str(database) in message


def test_damage_in_the_middle_of_an_import_is_refused_not_read_as_an_empty_register(home, tmp_path):
    sheet = tmp_path / "register.csv"
    rows = ["municipality,sector,title"] + [f"BUF,water,Imported issue {n}" for n in range(300)]
    sheet.write_text("\n".join(rows) + "\n")
    assert run_fieldkit(home, "import", str(sheet)).returncode == 0
    database = home / "register.sqlite"
    flip(database, b"\tImported issue 150\t")  # the lookup line of one imported issue
    message = one_line_error(run_fieldkit(home, "find", "imported"))
    assert str(database) in message
    run_fieldkit(home, "add", "--municipality", "BUF", "--sector", "water", "--title", "After")
    assert str(database) in one_line_error(run_fieldkit(home, "find", "imported")), "a later save never hides the damage"


def test_a_truncated_register_file_is_refused(home):
    with Register.open(home) as register:
        for n in range(200):
            add(register, f"Issue {n}", description="x" * 200)
    database = home / "register.sqlite"
    with open(database, "r+b") as file:
        file.truncate(database.stat().st_size // 2)
    message = one_line_error(run_fieldkit(home, "find", "--json"))
    assert str(database) in message


def test_a_deleted_register_file_is_refused_not_taken_for_a_new_register(home):
    with Register.open(home) as register:
        add(register, "Kept")
    (home / "register.sqlite").unlink()
    message = one_line_error(run_fieldkit(home, "find"))
    assert "missing" in message and str(home / "register.sqlite") in message
    assert not (home / "register.sqlite").exists()


# -- backups -----------------------------------------------------------------------------------


def test_a_backup_is_an_independent_checked_copy_and_recover_restores_it(home):
    with Register.open(home) as register:
        for n in range(5):
            add(register, f"Issue {n}", severity="high")
        backup = register.store.backup()
    database = home / "register.sqlite"
    assert backup.stat().st_nlink == 1 and backup.stat().st_ino != database.stat().st_ino
    flip(database, b'"severity":"high"')  # damage through the live file
    assert Backups(home).unpack(backup, home / ".check.sqlite") is None, "the backup is not touched by it"
    (home / ".check.sqlite").unlink()
    one_line_error(run_fieldkit(home, "check"))
    result = run_fieldkit(home, "recover")
    assert result.returncode == 0, result.stderr
    listed = run_fieldkit(home, "find", "--json")
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 5
    assert any(p.name.startswith("damaged-") for p in home.iterdir())


def test_the_apps_daily_backup_made_in_a_process_of_its_own_restores_like_any_other(home):
    """The app makes its daily backup in another process (so a province's register never stalls the screen);
    it is the same checked backup, also of an encrypted register, and a failure is one line."""
    from fieldkit.encryption import encrypt, open_register

    with Register.open(home) as register:
        for n in range(3):
            add(register, f"Issue {n}")
        encrypt(register.store, "blue reservoir at dawn")
    with open_register(home, ask=lambda _: "blue reservoir at dawn") as register:
        before = register.store.backups.newest()
        os.utime(before, (time.time() - 2 * 86_400,) * 2)
        assert register.backup_if_due(elsewhere=True) is True
        made = register.store.backups.newest()
        assert made != before and Backups(home).unpack(made, home / ".check.sqlite") is None
        (home / ".check.sqlite").unlink()
        add(register, "Not in the backup")
        os.utime(made, (time.time() - 2 * 86_400,) * 2)
        limits = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, limits[1]))  # a full disk, for the backup's process
        try:
            with pytest.raises(StoreError) as refused:
                register.backup_if_due(elsewhere=True)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        assert "\n" not in str(refused.value) and "Free some space there" in str(refused.value)
    (home / "register.sqlite").write_bytes(b"not a database at all")
    wrong = run_fieldkit(home, "recover", extra={"FIELDKIT_PASSPHRASE": "green reservoir at dusk"})
    assert "does not open this register" in one_line_error(wrong)
    assert (home / "register.sqlite").read_bytes() == b"not a database at all", "a wrong passphrase moves nothing"
    result = run_fieldkit(home, "recover", extra={"FIELDKIT_PASSPHRASE": "blue reservoir at dawn"})
    assert result.returncode == 0 and made.name in result.stdout, result.stderr
    listed = run_fieldkit(home, "find", "--json", extra={"FIELDKIT_PASSPHRASE": "blue reservoir at dawn"})
    assert sorted(r["title"] for r in json.loads(listed.stdout)) == ["Issue 0", "Issue 1", "Issue 2"]


def test_a_damaged_backup_is_never_restored(home):
    with Register.open(home) as register:
        add(register, "One")
        older = register.store.backup()
        add(register, "Two")
        newer = register.store.backup()
    raw = bytearray(newer.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    newer.write_bytes(bytes(raw))
    (home / "register.sqlite").write_bytes(b"not a database at all")
    result = run_fieldkit(home, "recover")
    assert result.returncode == 0 and older.name in result.stdout
    assert sorted(r["title"] for r in json.loads(run_fieldkit(home, "find", "--json").stdout)) == ["One"]


def test_a_backup_killed_part_way_is_never_listed_and_is_cleaned_up(home):
    with Register.open(home) as register:
        with register.store.transaction():
            for n in range(3000):
                add(register, f"Issue {n}", description="a long description " * 20)
    for delay in (0.05, 0.15, 0.3):
        backup = subprocess.Popen([sys.executable, "-m", "fieldkit", "backup"], env={**os.environ, "FIELDKIT_HOME": str(home)},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(delay)
        backup.send_signal(signal.SIGKILL)
        backup.communicate()
        for listed in Backups(home).list():
            assert Backups(home).unpack(listed, home / ".check.sqlite") is None
    with Register.open(home):
        assert not list((home / "backups").glob(".incomplete-*")) if (home / "backups").exists() else True


def test_backups_are_ordered_by_number_not_by_a_clock_set_back(home, monkeypatch):
    with Register.open(home) as register:
        add(register, "One")
        first = register.store.backup()
        monkeypatch.setattr(time, "time", lambda: 86_400.0)  # the clock set back to 1970
        add(register, "Two")
        second = register.store.backup()
        for _ in range(3):
            register.store.backup()
    kept = Backups(home).list()
    assert len(kept) == 3 and first not in kept and second not in kept
    assert kept[0].name == "backup-000005.sqlite.gz"


def test_a_full_disk_changes_nothing_and_says_what_to_free(home):
    with Register.open(home) as register:
        add(register, "Before")
    size = (home / "register.sqlite").stat().st_size

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    for attempt in range(3):
        result = subprocess.run([sys.executable, "-m", "fieldkit", "add", "--municipality", "BUF", "--sector", "water",
                                 "--title", f"Attempt {attempt}", "--description", "y" * 4900],
                                env={**os.environ, "FIELDKIT_HOME": str(home)}, capture_output=True, text=True,
                                preexec_fn=small_disk)
        message = one_line_error(result)
        assert str(home) in message and "free" in message.lower()
    with Register.open(home) as register:
        assert [r.title for r in register.find()] == ["Before"], "a command that said it failed saved nothing"
        register.store.check()


def test_a_read_only_store_answers_lookups_and_says_changes_are_off(home, tmp_path):
    with Register.open(home) as register:
        add(register, "Burst main on Oxford Street")
    stick = tmp_path / "stick"
    stick.mkdir()
    if subprocess.run(["mount", "--bind", str(home), str(stick)], capture_output=True).returncode != 0:
        pytest.skip("this machine does not allow a read-only bind mount")
    try:
        assert subprocess.run(["mount", "-o", "remount,ro,bind", str(stick)], capture_output=True).returncode == 0
        found = run_fieldkit(stick, "find", "oxford", "--json")
        assert found.returncode == 0, found.stderr
        assert [r["title"] for r in json.loads(found.stdout)] == ["Burst main on Oxford Street"]
        assert "read-only" in found.stderr
        refused = run_fieldkit(stick, "add", "--municipality", "BUF", "--sector", "water", "--title", "New")
        assert "read-only" in one_line_error(refused)
    finally:
        subprocess.run(["umount", str(stick)], capture_output=True)


# -- formats ------------------------------------------------------------------------------------


def test_a_store_of_the_previous_format_is_migrated_with_its_original_kept(home):
    shutil.copytree(FIXTURE, home)
    with Register.open(home) as register:
        titles = sorted(r.title for r in register.find())
        assert titles == ["Burst bulk main on Oxford Street", "Potholes on the R61 near Ngcobo"]
        burst = register.resolve("BUF-26-502F-0001")
        issue = register.issue(burst)
        assert issue["status"] == "escalated" and issue["contact_name"] == "Sipho Dlamini"
        assert [a["done"] for a in register.actions(burst)] == [True]
        assert [e.kind for e in register.timeline(burst)].count("note") == 1
        assert register.waiting_count() == 8
        assert register.settings()["name"] == "Thandi Mokoena"
        assert register.sync_state()["server"] == "http://127.0.0.1:8765"
        register.edit_issue(burst, {"severity": "high"})  # it goes on working
    original = home / "backups" / "format-1-original"
    assert (original / "journal.log").exists() and (original / "tables" / "issue.9.json").exists()
    assert not (home / "tables").exists()


def test_a_store_of_an_unknown_newer_format_is_refused(home):
    with Register.open(home) as register:
        add(register, "Kept")
    (home / "fieldkit-store.json").write_text('{"format": 9}')
    message = one_line_error(run_fieldkit(home, "find"))
    assert "newer fieldkit" in message


def test_saving_one_edit_does_not_rewrite_the_register(home):
    with Register.open(home) as register:
        first = add(register, "Leak")
        with register.store.transaction():
            for n in range(2000):
                add(register, f"Issue {n}", description="x" * 300)
        database = home / "register.sqlite"
        before = database.read_bytes()
        register.edit_issue(first["id"], {"severity": "high"})
        after = database.read_bytes()
    changed = sum(1 for start in range(0, len(after), 4096) if before[start:start + 4096] != after[start:start + 4096])
    pages = len(after) // 4096
    assert pages > 300 and changed <= 30, f"{changed} of {pages} pages written for one edit"


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


def test_an_odd_value_that_got_in_never_stops_the_register_opening(register):
    issue = add(register, "Odd")
    from fieldkit.ids import new_id

    register.apply_remote([{**register.pending_ops()[0], "op_id": new_id(), "hlc": register.clock.tick(), "seen": {},
                            "fields": {"created_at": "2026-01-05\t10:00:00", "ward": "12a", "title": "Tab\tin\ttitle"}}])
    rows = register.find(IssueFilter(text="tab"))
    assert [r.id for r in rows] == [issue["id"]]
    assert Register(Store(register.store.home)).find()[0].id == issue["id"]


def test_a_backup_is_made_when_the_newest_is_a_day_old_or_from_a_clock_that_went_back(register):
    add(register, "One")
    assert register.backup_if_due() is True
    assert register.backup_if_due() is False
    newest = register.store.backups.newest()
    os.utime(newest, (time.time() - 2 * 86_400,) * 2)
    assert register.backup_if_due() is True
    newest = register.store.backups.newest()
    os.utime(newest, (time.time() + 3 * 86_400,) * 2)  # made while the clock was days ahead
    assert register.backup_if_due() is True
    assert len(register.store.backups.list()) == 3


def test_every_edit_appears_in_the_timeline_and_personal_details_are_not_written_there(register):
    issue = add(register, "Leak", severity="low", contact_name="Sipho Dlamini")
    register.edit_issue(issue["id"], {"severity": "critical", "ward": 4, "contact_name": "Nomsa Khumalo"})
    action = register.add_action(issue["id"], "Fix the valve")
    register.set_action_done(action["id"])
    register.set_action_done(action["id"], done=False)
    kinds = [(e.kind, e.text) for e in register.timeline(issue["id"])]
    edits = [text for kind, text in kinds if kind == "edit"]
    assert edits == ["Severity: Low → Critical; Ward: (none) → 4; Contact name changed"]
    assert "Nomsa" not in str(kinds) and "Sipho" not in str(kinds)
    assert [kind for kind, _ in kinds if kind.startswith("action")] == ["action", "action_done", "action_reopened"]


def test_a_backup_beside_a_long_read_and_saves_in_other_threads_finishes(register):
    import threading

    issue = add(register, "Leak")
    with register.store.transaction():
        for n in range(4500):
            register.add_note(issue["id"], f"Note {n}")
    reading = register.all_status_changes()
    notes = register.store.iter_kind("note")
    next(notes)  # a long read left open part-way, as the dashboard's thread does
    done = []
    backup = threading.Thread(target=lambda: done.append(register.store.backup()))
    backup.start()
    for n in range(5):
        register.add_note(issue["id"], f"Saved during the backup {n}")
    backup.join(timeout=30)
    assert done, "the backup finished"
    assert sum(1 for _ in notes) == 4504 and list(reading) == []
