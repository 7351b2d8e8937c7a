"""The merge rule: any order, grouping or repetition of the same operations gives the same state."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from fieldkit import merge
from fieldkit.hlc import ZERO, Clock, Stamp
from fieldkit.ids import new_id

RECORD = new_id()


def op(hlc: str, fields: dict, seen: dict | None = None, author: str = "a") -> dict:
    return {"op_id": new_id(), "type": "issue", "id": RECORD, "device": hlc.split(":")[2], "author": author,
            "hlc": hlc, "fields": fields, "seen": seen or {}}


def stamp(ms: int, device: str = "aaaa", counter: int = 0) -> str:
    return str(Stamp(ms, counter, device))


def test_different_fields_edited_offline_are_both_kept():
    base = op(stamp(1), {"title": "Leak", "severity": "low"})
    a = op(stamp(5, "aaaa"), {"title": "Burst main"}, {"title": stamp(1)})
    b = op(stamp(6, "bbbb"), {"severity": "critical"}, {"severity": stamp(1)})
    state = merge.apply_ops(None, [base, a, b])
    assert state["values"] == {"title": "Burst main", "severity": "critical"}
    assert merge.conflicts(state) == []


def test_same_field_edited_offline_keeps_the_loser_as_a_conflict():
    base = op(stamp(1), {"severity": "low"})
    a = op(stamp(5, "aaaa"), {"severity": "high"}, {"severity": stamp(1)}, author="Thandi")
    b = op(stamp(6, "bbbb"), {"severity": "critical"}, {"severity": stamp(1)}, author="Sipho")
    for order in itertools.permutations([base, a, b]):
        state = merge.apply_ops(None, order)
        assert state["values"]["severity"] == "critical"
        assert [(c["field"], c["value"], c["author"]) for c in merge.conflicts(state)] == [("severity", "high", "Thandi")]


def test_an_edit_that_saw_the_other_is_not_a_conflict():
    base = op(stamp(1), {"severity": "low"})
    a = op(stamp(5, "aaaa"), {"severity": "high"}, {"severity": stamp(1)})
    b = op(stamp(6, "bbbb"), {"severity": "critical"}, {"severity": stamp(5, "aaaa")})
    for order in itertools.permutations([base, a, b]):
        assert merge.conflicts(merge.apply_ops(None, order)) == []


def test_resolving_is_an_edit_that_saw_every_rival():
    base = op(stamp(1), {"severity": "low"})
    a = op(stamp(5, "aaaa"), {"severity": "high"}, {"severity": stamp(1)})
    b = op(stamp(6, "bbbb"), {"severity": "critical"}, {"severity": stamp(1)})
    fix = op(stamp(9, "cccc"), {"severity": "high"}, {"severity": stamp(6, "bbbb")})
    for order in itertools.permutations([base, a, b, fix]):
        state = merge.apply_ops(None, order)
        assert state["values"]["severity"] == "high" and merge.conflicts(state) == []


def test_clock_never_runs_backwards_and_follows_what_it_receives():
    now = [1_000_000]
    clock = Clock("aaaa", now=lambda: now[0])
    first = clock.tick()
    now[0] -= 365 * 24 * 3600 * 1000  # the wall clock jumps back a year
    second = clock.tick()
    assert second > first
    clock.receive(stamp(2_000_000, "bbbb", 3))
    assert clock.tick() > stamp(2_000_000, "bbbb", 3)


def test_a_laptop_a_year_behind_still_edits_after_what_it_saw():
    year = 365 * 24 * 3600 * 1000
    behind = Clock("aaaa", now=lambda: 5 * year)
    seen = stamp(6 * year, "bbbb")
    behind.receive(seen)
    edit = op(behind.tick(), {"severity": "low"}, {"severity": seen})
    state = merge.apply_ops(None, [op(seen, {"severity": "high"}), edit])
    assert state["values"]["severity"] == "low"


FIELDS = ["title", "severity", "ward"]


@st.composite
def histories(draw):
    """Operations from three devices, each editing having seen some earlier stamp of the field."""
    ops = []
    seen_stamps: dict[str, list[str]] = {f: [ZERO] for f in FIELDS}
    for n in range(draw(st.integers(1, 12))):
        device = draw(st.sampled_from(["aaaa", "bbbb", "cccc"]))
        hlc = stamp(100 + n, device)
        fields = draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3, unique=True))
        values = {f: draw(st.sampled_from(["x", "y", "z", 1, 2])) for f in fields}
        seen = {f: draw(st.sampled_from(seen_stamps[f])) for f in fields}
        seen = {f: s for f, s in seen.items() if s != ZERO}
        ops.append(op(hlc, values, seen, author=device))
        for f in fields:
            seen_stamps[f].append(hlc)
    return ops


@settings(max_examples=150, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_any_order_and_repetition_gives_the_same_state(ops, rnd):
    reference = merge.apply_ops(None, ops)
    shuffled = ops + rnd.sample(ops, k=len(ops) // 2)  # duplicates
    rnd.shuffle(shuffled)
    assert merge.apply_ops(None, shuffled) == reference


@settings(max_examples=100, deadline=None)
@given(histories(), st.integers(0, 12))
def test_grouping_does_not_matter(ops, cut):
    """Merging two partial states' operations in pieces equals applying them all at once."""
    first = merge.apply_ops(None, ops[:cut])
    assert merge.apply_ops(first, ops[cut:]) == merge.apply_ops(None, ops)


def test_structural_problems_are_named():
    good = op(stamp(5), {"title": "x"})
    assert merge.op_problem(good) is None
    assert "missing" in merge.op_problem({k: v for k, v in good.items() if k != "hlc"})
    assert "unknown keys" in merge.op_problem({**good, "colour": 1})
    assert "UUIDv7" in merge.op_problem({**good, "id": "not-an-id"})
    assert "clock stamp" in merge.op_problem({**good, "hlc": "yesterday"})
    assert "newer" in merge.op_problem({**good, "seen": {"title": stamp(9)}})
