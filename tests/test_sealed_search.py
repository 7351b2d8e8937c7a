"""Searching an encrypted register finds exactly what the same register unencrypted finds.

A save of an encrypted register notes the issues it changed and folds them into the sealed
buckets of lines a few dozen at a time (``fieldkit/store/sealed_lines.py``); a search reads the
buckets its signatures allow and the issues changed since. Here the same edits go to a plain
register and an encrypted one, and every search must answer the same in both, between folds and
after them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldkit.encryption import encrypt, open_register
from fieldkit.filters import row_from_line
from fieldkit.register import Register
from fieldkit.store import sealed_lines

PASSPHRASE = "blue reservoir at dawn"
WORDS = ["burst", "main", "pothole", "zwelitsha", "clinic", "taxi", "rank", "dimbaza", "sewage", "spill",
         "ncambedlana", "école", "ward", "12", "7", "kwanobuhle", "leak"]
#: Short needles use letters a device code (in every reference) never has: I, L, O, U. Each register is
#: its own device, so the references differ between the two.
NEEDLES = ["burst", "zwelitsha", "ll", "ou", "é", "l", "ward 12", "no such word", "pothole at", "leak",
           "ncamb", "ec121", "titled-3", "titled-11"]

title = st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join)
step = st.one_of(
    st.tuples(st.just("add"), title, st.sampled_from(["EC121", "BUF", "NC092"])),
    st.tuples(st.just("edit"), st.integers(0, 10_000), title),
    st.tuples(st.just("describe"), st.integers(0, 10_000), title),
    st.tuples(st.just("delete"), st.integers(0, 10_000)),
)


def titles(register: Register, needle: str) -> list[str]:
    """What a cold search of the register file answers (the lines of the issues whose words hold the needle)."""
    return sorted(row_from_line(line).title for line in register.store.issue_lines(needle))


def apply(register: Register, ids: list[str], change: tuple) -> None:
    kind, *rest = change
    if kind == "add":
        words, place = rest
        created = register.create_issue({"municipality": place, "sector": "water",
                                         "title": f"titled-{len(ids)} {words}"})
        ids.append(created["id"])
    elif ids and kind == "edit":
        issue_id = ids[rest[0] % len(ids)]
        register.edit_issue(issue_id, {"title": f"titled-{ids.index(issue_id)} {rest[1]}"})
    elif ids and kind == "describe":
        register.edit_issue(ids[rest[0] % len(ids)], {"description": rest[1]})
    elif ids and kind == "delete":
        register.delete_issue(ids[rest[0] % len(ids)])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=st.lists(step, max_size=12), after=st.lists(step, min_size=1, max_size=40),
       fold_after=st.sampled_from([1, 3, 10, sealed_lines.FOLD_AFTER]))
def test_a_sealed_register_answers_every_search_as_the_plain_one_does(before, after, fold_after) -> None:
    with tempfile.TemporaryDirectory() as folder, patch.object(sealed_lines, "FOLD_AFTER", fold_after):
        plain, sealed = Register.open(Path(folder) / "plain", "Thandi"), Register.open(Path(folder) / "sealed", "Thandi")
        plain_ids: list[str] = []
        sealed_ids: list[str] = []
        for change in before:
            apply(plain, plain_ids, change)
            apply(sealed, sealed_ids, change)
        encrypt(sealed.store, PASSPHRASE)  # the buckets and signatures written whole, then kept by saves
        sealed.close()
        sealed = open_register(Path(folder) / "sealed", "Thandi", ask=lambda _: PASSPHRASE)
        for number, change in enumerate(after):
            apply(plain, plain_ids, change)
            apply(sealed, sealed_ids, change)
            if number % 7 == 0 or number == len(after) - 1:
                for needle in NEEDLES:
                    assert titles(sealed, needle) == titles(plain, needle), needle
        sealed.store.check()  # every bucket opens and its signature holds its words
        plain.close()
        sealed.close()


def test_an_issue_taken_out_of_the_register_is_not_found_before_or_after_the_fold(tmp_path: Path) -> None:
    with Register.open(tmp_path / "laptop", "Thandi") as register:
        keep = register.create_issue({"municipality": "EC121", "sector": "water", "title": "Burst main at Dimbaza"})
        other = register.create_issue({"municipality": "EC121", "sector": "roads", "title": "Pothole at Dimbaza"})
        gone = register.create_issue({"municipality": "EC121", "sector": "water", "title": "Burst pipe at Zwelitsha"})
        encrypt(register.store, PASSPHRASE)
    with open_register(tmp_path / "laptop", ask=lambda _: PASSPHRASE) as register:
        register.store.delete("issue", gone["id"])  # as a record taken out by a recovery would be
        assert titles(register, "burst") == ["Burst main at Dimbaza"]
        register.edit_issue(keep["id"], {"title": "Burst main at Dimbaza station"})
        assert sealed_lines.changed(register.store.db) == [keep["id"]]  # read from its own line, not its bucket
        assert titles(register, "burst") == ["Burst main at Dimbaza station"]
        with patch.object(sealed_lines, "FOLD_AFTER", 1):  # the next save folds what is newer than the buckets
            register.edit_issue(other["id"], {"title": "Pothole at Dimbaza station", "description": "Two taxis damaged"})
        assert sealed_lines.changed(register.store.db) == []
        assert titles(register, "burst") == ["Burst main at Dimbaza station"]
        assert titles(register, "station") == ["Burst main at Dimbaza station", "Pothole at Dimbaza station"]
        assert titles(register, "taxis") == ["Pothole at Dimbaza station"]
        assert titles(register, "zwelitsha") == []
        register.store.check()


@given(old=st.binary(max_size=40) | st.text("ab c", max_size=40).map(str.encode),
       new=st.binary(max_size=40) | st.text("ab c", max_size=40).map(str.encode))
def test_a_changed_line_gives_its_bucket_every_piece_it_did_not_have(old: bytes, new: bytes) -> None:
    """A fold sets only the pieces of what changed; a piece left out would be a line a search never finds."""
    assert sealed_lines.pieces(new) - sealed_lines.pieces(old) <= sealed_lines.pieces(sealed_lines._new_part(old, new))
