"""Sync by hand: bundles carried on a stick (a folder here) between laptops and a real ``fieldkit serve``.

A bundle taken in at the central store is applied like a sync from its laptop and
answered with a receipt; the receipt leaves the laptop as an online sync would.
Bundles taken in twice, receipts taken in twice or late, bundles passed from laptop
to laptop: nothing is stored twice. A bundle that was altered, cut short, comes from
a laptop the store does not know or has revoked, or writes outside its account's
area, is refused in one line and nothing of it is applied.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from fieldkit import bundle_sync, bundles
from fieldkit.server.bundles import apply_bundle
from fieldkit.server.db import Database
from fieldkit.sync import sync
from sync_fixtures import add_user, central, core, device_ops, laptop_states, open_laptop, server_log, server_states  # noqa: F401


def fieldkit(home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "FIELDKIT_HOME": str(home)}
    done = subprocess.run([sys.executable, "-m", "fieldkit", *args], capture_output=True, text=True, env=env, timeout=120)
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def account(central, municipality: str = "EC121") -> tuple[str, str]:
    name = f"fac-{secrets.token_hex(4)}"
    return name, add_user(central.db_url, name, "facilitator", (municipality,))


def synced(register, central, token: str | None = None) -> None:
    result = sync(register, server=central.url, token=token)
    assert result.finished, result.error
    assert not result.rejected, result.rejected


def new_issue(register, title: str, municipality: str = "EC121") -> str:
    return register.create_issue({"municipality": municipality, "sector": "water", "title": title})["id"]


def at_store(central, data: bytes):
    database = Database(central.db_url)
    try:
        return apply_bundle(database, data)
    finally:
        database.close()


def test_a_bundle_on_a_stick_goes_in_twice_and_its_receipt_comes_back_twice(central, tmp_path: Path) -> None:
    """The hand trial, as people type it: a laptop that never synced online, registered by an operator."""
    stick, laptop, other, operator = tmp_path / "stick", tmp_path / "laptop", tmp_path / "other", tmp_path / "operator"
    stick.mkdir()
    name, token = account(central)
    db = ["--db", central.db_url]
    fieldkit(laptop, "add", "--municipality", "EC121", "--sector", "water", "--title", "Burst main at Dutywa", "--author", "Thandi")

    early = fieldkit(laptop, "bundle", "out", "-o", str(stick), ok=False)
    assert early.returncode == 1 and early.stderr.count("\n") == 1
    assert "does not know the central store's key yet" in early.stderr and not list(stick.iterdir())

    key = fieldkit(laptop, "bundle", "key").stdout.strip()
    added = fieldkit(operator, "user", "add-device", name, key, *db)
    assert added.stdout.startswith("fieldkit bundle trust fieldkit-store:")
    fieldkit(laptop, "bundle", "trust", added.stdout.split()[-1])

    # someone else syncs online meanwhile: the receipt brings it to the laptop
    colleague = open_laptop(other, "Sipho")
    new_issue(colleague, "Sewage spill near the clinic")
    synced(colleague, central, token)

    out = fieldkit(laptop, "bundle", "out", "-o", str(stick))
    assert out.stdout.startswith(f"wrote {stick}/") and "1 change to 1 record by " in out.stdout
    (bundle,) = stick.iterdir()
    assert b"Burst main" not in bundle.read_bytes() and b"Thandi" not in bundle.read_bytes()  # sealed

    first = fieldkit(operator, "server", "bundle-in", str(bundle), *db)
    assert ", 1 new, 0 already here" in first.stdout
    again = fieldkit(operator, "server", "bundle-in", str(bundle), *db)
    assert ", 0 new, 1 already here" in again.stdout
    device = bundle_device(laptop)
    assert len(device_ops(central.db_url, device)) == len(set(device_ops(central.db_url, device))) == 1

    receipt = stick / bundle.name.replace(".fkbundle", ".receipt.fkbundle")
    took = fieldkit(laptop, "bundle", "in", str(receipt))
    assert "1 change acknowledged" in took.stdout
    fieldkit(laptop, "bundle", "in", str(receipt))
    status = fieldkit(laptop, "sync", "--status").stdout
    assert "waiting         0 changes" in status and "last sync       never" not in status
    titles = fieldkit(laptop, "find", "--json").stdout
    assert "Sewage spill near the clinic" in titles and "Burst main at Dutywa" in titles

    # the same state as after an online sync: going online now sends nothing and receives nothing
    online = fieldkit(laptop, "sync", "--server", central.url, "--token", token)
    assert online.stdout.strip().endswith("sent 0 changes, received 0")
    colleague.close()


def bundle_device(home: Path) -> str:
    register = open_laptop(home)
    try:
        return register.device_id
    finally:
        register.close()


def test_a_receipt_leaves_the_laptop_as_an_online_sync_would(central, tmp_path: Path) -> None:
    name, token = account(central)
    laptop, twin = open_laptop(tmp_path / "a", "Thandi"), open_laptop(tmp_path / "b", "Sipho")
    synced(laptop, central, token)
    synced(twin, central, token)
    issue = new_issue(laptop, "Burst main")
    synced(laptop, central)
    synced(twin, central)
    laptop.edit_issue(issue, {"severity": "critical"})
    twin.edit_issue(issue, {"severity": "low"})  # a conflict, kept as online
    laptop.add_note(issue, "Reservoir empty")
    new_issue(twin, "Pothole on the N2")
    synced(twin, central)

    before = len(server_log(central.db_url))
    made = bundle_sync.make_bundle(laptop)
    assert made.changes == 3  # the edit, its line in the timeline, the note
    outcome = at_store(central, made.data)
    assert outcome.stored == 3 and not outcome.rejected and outcome.due == 3
    old_receipt = outcome.receipt
    taken = bundle_sync.take_in(laptop, outcome.receipt)
    assert taken.acknowledged == 3 and taken.cursor_moved
    assert laptop.waiting_count() == 0
    synced(twin, central)

    in_scope = server_states(central.db_url)
    assert laptop_states(laptop) == laptop_states(twin) == {k: v for k, v in in_scope.items() if k in laptop_states(laptop)}
    assert laptop.conflicts(issue) and twin.conflicts(issue)
    cursor = laptop.sync_state()["cursor"]
    assert cursor == len(server_log(central.db_url)) and cursor > before

    # an old receipt taken in late changes nothing, and never moves the cursor back
    new_issue(twin, "Streetlights out")
    synced(twin, central)
    again = at_store(central, made.data)
    assert again.stored == 0
    bundle_sync.take_in(laptop, again.receipt)
    moved = laptop.sync_state()["cursor"]
    bundle_sync.take_in(laptop, old_receipt)
    assert laptop.sync_state()["cursor"] == moved > cursor
    result = sync(laptop)
    assert result.finished and result.sent == 0 and result.received == 0
    laptop.close()
    twin.close()


def test_a_first_online_sync_registers_the_laptop_for_bundles(central, tmp_path: Path) -> None:
    name, token = account(central)
    laptop = open_laptop(tmp_path / "a")
    synced(laptop, central, token)
    database = Database(central.db_url)
    try:
        device = database.device(laptop.device_id)
        assert device is not None and device.user_name == name and not device.revoked
        assert laptop.sync_state()["bundle"]["store"]["key"] == database.store_key().line()
    finally:
        database.close()
    laptop.close()


def _refusal_case(case: str, central, tmp_path: Path) -> bytes:
    name, token = account(central)
    laptop = open_laptop(tmp_path / "laptop", "Thandi")
    try:
        if case == "unknown laptop":
            store_key = Database(central.db_url).store_key().line()
            bundle_sync.trust(laptop, store_key)
        else:
            synced(laptop, central, token)
        new_issue(laptop, "Burst main")
        if case == "outside its area":
            new_issue(laptop, "Substation fire", "BUF")
        data = bundle_sync.make_bundle(laptop).data
    finally:
        laptop.close()
    if case == "altered":
        middle = len(data) // 2
        return data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1:]
    if case == "cut short":
        return data[: len(data) - 100]
    if case == "revoked laptop":
        fieldkit(tmp_path / "operator", "user", "revoke-device", bundle_device(tmp_path / "laptop"), "--db", central.db_url)
    return data


REFUSALS = {
    "altered": "was altered after it was made",
    "cut short": "is cut short",
    "unknown laptop": "does not know laptop",
    "revoked laptop": "were revoked on this central store",
    "outside its area": "outside the area of the account",
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_bad_bundle_is_refused_in_one_line_and_nothing_is_applied(case: str, central, tmp_path: Path) -> None:
    data = _refusal_case(case, central, tmp_path)
    path = tmp_path / "stick.fkbundle"
    path.write_bytes(data)
    before = server_log(central.db_url)
    done = fieldkit(tmp_path / "operator", "server", "bundle-in", str(path), "--db", central.db_url, ok=False)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("fieldkit: ") and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert REFUSALS[case] in done.stderr and "nothing was applied" in done.stderr
    assert server_log(central.db_url) == before


def test_a_bundle_refused_for_its_area_comes_back_marked_and_the_rest_goes_next_time(central, tmp_path: Path) -> None:
    name, token = account(central)
    laptop = open_laptop(tmp_path / "laptop", "Thandi")
    synced(laptop, central, token)
    mine = new_issue(laptop, "Burst main")
    new_issue(laptop, "Substation fire", "BUF")
    outcome = at_store(central, bundle_sync.make_bundle(laptop).data)
    assert outcome.refused and mine not in server_states(central.db_url)
    taken = bundle_sync.take_in(laptop, outcome.receipt)
    assert len(taken.rejected) == 1 and "does not cover BUF" in taken.rejected[0][1]
    assert [entry["op"]["fields"]["title"] for entry in laptop.rejected_ops()] == ["Substation fire"]
    second = at_store(central, bundle_sync.make_bundle(laptop).data)
    assert not second.refused and second.stored == 1 and mine in server_states(central.db_url)
    laptop.close()


def test_a_laptop_refuses_receipts_and_bundles_it_cannot_trust(central, tmp_path: Path) -> None:
    _, token = account(central)
    mine, stranger = open_laptop(tmp_path / "a", "Thandi"), open_laptop(tmp_path / "b", "Sipho")
    synced(mine, central, token)
    synced(stranger, central, token)
    theirs = new_issue(stranger, "Burst main")
    receipt = at_store(central, bundle_sync.make_bundle(stranger).data).receipt
    with pytest.raises(bundles.BundleError, match="this bundle was not made for this laptop"):
        bundle_sync.take_in(mine, receipt)
    peer_bundle = bundle_sync.make_bundle(stranger).data
    with pytest.raises(bundles.BundleError, match="has not been introduced to laptop"):
        bundle_sync.take_in(mine, peer_bundle)
    own = bundle_sync.make_bundle(mine).data
    with pytest.raises(bundles.BundleError, match="was made on this laptop"):
        bundle_sync.take_in(mine, own)
    tampered = bytearray(receipt)
    tampered[-1] ^= 0xFF
    with pytest.raises(bundles.BundleError, match="was altered"):
        bundle_sync.take_in(stranger, bytes(tampered))
    assert theirs not in laptop_states(mine) and mine.waiting_count() == 0
    mine.close()
    stranger.close()


def test_the_store_takes_bundles_uploaded_over_http(central, tmp_path: Path) -> None:
    name, token = account(central)
    laptop = open_laptop(tmp_path / "a", "Thandi")
    synced(laptop, central, token)
    issue = new_issue(laptop, "Burst main")
    data = bundle_sync.make_bundle(laptop).data
    headers = {"Authorization": f"Bearer {central.token}", "Content-Type": "application/octet-stream"}
    answer = httpx.post(f"{central.url}/bundles", content=data, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    assert issue in server_states(central.db_url)
    bundle_sync.take_in(laptop, answer.content)
    assert laptop.waiting_count() == 0
    cut = httpx.post(f"{central.url}/bundles", content=data[:-10], headers=headers, timeout=30)
    assert cut.status_code == 422 and "cut short" in cut.json()["detail"]
    anonymous = httpx.post(f"{central.url}/bundles", content=data, timeout=30)
    assert anonymous.status_code == 401
    laptop.close()


def test_two_laptops_swap_bundles_then_sync_and_nothing_arrives_twice(central, tmp_path: Path) -> None:
    _, thandi_token = account(central)
    _, sipho_token = account(central)
    thandi, sipho = open_laptop(tmp_path / "thandi", "Thandi"), open_laptop(tmp_path / "sipho", "Sipho")
    synced(thandi, central, thandi_token)
    synced(sipho, central, sipho_token)
    bundle_sync.trust(sipho, bundle_sync.public_key(thandi).line(), "Thandi")
    bundle_sync.trust(thandi, bundle_sync.public_key(sipho).line(), "Sipho")

    issue = new_issue(thandi, "Burst main")
    to_sipho = bundle_sync.make_bundle(thandi, peers=["Sipho"])
    assert "laptop Sipho" in to_sipho.made_for
    assert bundle_sync.take_in(sipho, to_sipho.data).merged == 1
    bundle_sync.take_in(sipho, to_sipho.data)  # twice: the same state
    thandi.edit_issue(issue, {"severity": "critical"})
    sipho.edit_issue(issue, {"severity": "low"})
    sipho.add_note(issue, "Pump station flooded")
    to_thandi = bundle_sync.make_bundle(sipho, peers=[thandi.device_id[:6]])
    bundle_sync.take_in(thandi, to_thandi.data)
    bundle_sync.take_in(sipho, bundle_sync.make_bundle(thandi, peers=["sipho"]).data)
    assert laptop_states(thandi) == laptop_states(sipho)
    assert thandi.conflicts(issue)

    # Sipho's edit and note wait for Thandi's issue at the store: carried by hand they are deferred, then go through
    early = at_store(central, to_thandi.data)
    assert len(early.deferred) == 3 and early.stored == 0  # the edit, its line in the timeline, the note
    bundle_sync.take_in(sipho, early.receipt)
    assert sipho.waiting_count() == 3
    synced(thandi, central)
    late = at_store(central, bundle_sync.make_bundle(sipho).data)
    assert late.stored == 3 and not late.deferred
    bundle_sync.take_in(sipho, late.receipt)
    at_store(central, to_sipho.data)  # carried on to the store by hand as well: already there
    synced(sipho, central)
    synced(thandi, central)
    for device in (thandi.device_id, sipho.device_id):
        held = device_ops(central.db_url, device)
        assert len(held) == len(set(held))
    assert len(device_ops(central.db_url, thandi.device_id)) == 3 and len(device_ops(central.db_url, sipho.device_id)) == 3
    store = server_states(central.db_url)
    assert laptop_states(thandi) == laptop_states(sipho) == {k: v for k, v in store.items() if k in laptop_states(thandi)}
    assert thandi.waiting_count() == sipho.waiting_count() == 0
    thandi.close()
    sipho.close()


def test_everything_twice_is_stored_once(central, tmp_path: Path) -> None:
    _, token = account(central)
    laptop = open_laptop(tmp_path / "a", "Thandi")
    synced(laptop, central, token)
    issue = new_issue(laptop, "Burst main")
    laptop.add_note(issue, "Reservoir empty")
    synced(laptop, central)
    first = at_store(central, bundle_sync.make_bundle(laptop, everything=True).data)
    assert first.received >= 2 and first.stored == first.received
    second = at_store(central, bundle_sync.make_bundle(laptop, everything=True).data)
    assert second.stored == 0
    assert core(server_states(central.db_url)[issue]) == laptop_states(laptop)[issue]
    laptop.close()


def test_everything_of_a_moved_issue_goes_in_whole(central, tmp_path: Path) -> None:
    """``--all`` writes a moved issue's states oldest first, the first naming no municipality: none is left behind."""
    token = add_user(central.db_url, f"fac-{secrets.token_hex(4)}", "facilitator", ("EC121", "BUF"))
    laptop = open_laptop(tmp_path / "a", "Thandi")
    synced(laptop, central, token)
    issue = new_issue(laptop, "Burst main")
    laptop.edit_issue(issue, {"municipality": "BUF"})
    laptop.acknowledge([op["op_id"] for op in laptop.pending_ops()])  # as if sent to a store since lost
    outcome = at_store(central, bundle_sync.make_bundle(laptop, everything=True).data)
    assert not outcome.deferred and outcome.stored >= 2
    assert server_states(central.db_url)[issue] == laptop_states(laptop)[issue]
    laptop.close()


@pytest.mark.parametrize("restored", ["with a new server id", "from an older copy, same id"])
def test_a_store_restored_from_a_backup_gets_everything_again_by_bundle(restored: str, tmp_path: Path) -> None:
    import shutil

    path = tmp_path / "central.sqlite3"
    database = Database(f"sqlite:///{path}")
    database.migrate()
    add_user(database.url, "thandi", "facilitator", ("EC121",))
    user = database.user_named("thandi")
    laptop = open_laptop(tmp_path / "laptop", "Thandi")
    database.register_device(user, bundle_sync.public_key(laptop), by_operator=True)
    bundle_sync.trust(laptop, database.store_key().line())

    def round_trip() -> bundle_sync.TakenIn:
        return bundle_sync.take_in(laptop, apply_bundle(database, bundle_sync.make_bundle(laptop).data).receipt)

    first = new_issue(laptop, "Burst main")
    round_trip()
    database.close()
    shutil.copy(path, tmp_path / "backup.sqlite3")
    second = new_issue(laptop, "Bridge washed away")
    old_receipt = apply_bundle(database, bundle_sync.make_bundle(laptop).data).receipt
    bundle_sync.take_in(laptop, old_receipt)
    database.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copy(tmp_path / "backup.sqlite3", path)  # the store loses the second issue
    if restored == "with a new server id":
        database.renew_server_id()
    else:  # a change by someone else takes the lost one's place in the log
        other = open_laptop(tmp_path / "other2", "Sipho")
        new_issue(other, "Dump on fire")
        database.push(user, other.pending_ops())
        other.close()
    assert second not in server_states(database.url)

    third = new_issue(laptop, "Streetlights out")
    taken = round_trip()
    assert taken.resend >= 2 and laptop.waiting_count() >= 2
    taken = round_trip()
    assert taken.resend == 0 and laptop.waiting_count() == 0
    held = server_states(database.url)
    assert {first, second, third} <= set(held)
    assert {k: v for k, v in held.items() if k in laptop_states(laptop)} == laptop_states(laptop)
    cursor = laptop.sync_state()["cursor"]
    bundle_sync.take_in(laptop, old_receipt)  # from before the restore: merges, moves nothing
    assert laptop.sync_state()["cursor"] == cursor and laptop.waiting_count() == 0
    laptop.close()
    database.close()
