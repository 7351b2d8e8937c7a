"""The pure parts of sync: message shapes, a state written as operations, and the client staying light."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldkit import merge, protocol
from fieldkit.hlc import Stamp

FIELDS = ("title", "severity", "ward")
DEVICES = ("aaaa", "bbbb", "cccc")


@st.composite
def operations(draw, count: int = 8) -> list[dict]:
    """Operations on one record from three devices, with 'seen' stamps taken from earlier operations."""
    ops = []
    for number in range(draw(st.integers(1, count))):
        stamp = str(Stamp(draw(st.integers(1, 40)), number, draw(st.sampled_from(DEVICES))))
        names = draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3, unique=True))
        earlier = [op["hlc"] for op in ops if op["hlc"] < stamp]
        seen = {name: draw(st.sampled_from(earlier)) for name in names if earlier and draw(st.booleans())}
        ops.append({
            "op_id": f"op{number}", "type": "issue", "id": "r", "device": stamp[-4:], "author": stamp[-4:],
            "hlc": stamp, "fields": {name: draw(st.integers(0, 3)) for name in names}, "seen": seen,
        })
    return ops


@settings(max_examples=120, deadline=None)
@given(operations(), operations())
def test_a_state_written_as_operations_merges_like_the_operations_that_made_it(made: list[dict], other: list[dict]) -> None:
    state = merge.apply_ops(None, made)
    copied = protocol.state_ops("issue", "r", state, "central", make_id=iter(range(10**6)).__next__)
    assert merge.apply_ops(None, copied) == state
    assert merge.apply_ops(merge.apply_ops(None, other), copied) == merge.apply_ops(None, other + made)
    for op in copied:
        assert all(seen < op["hlc"] for seen in op["seen"].values())


def test_replies_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_push_reply({"server_id": "s", "acknowledged": [1], "last_seq": 0})
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_pull_reply({"server_id": "s", "ops": [{"id": 3}], "next": 1, "more": False})
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_pull_reply({"server_id": "s", "ops": [], "next": True, "more": False})
    reply = protocol.parse_push_reply({
        "server_id": "s", "acknowledged": ["a"], "rejected": [{"op_id": "b", "reason": "no"}], "deferred": [],
        "first_seq": 4, "last_seq": 4,
    })
    assert reply.rejected == [protocol.Verdict("b", "no")]


def _loaded(code: str) -> str:
    heavy = "('textual', 'rich', 'fastapi', 'uvicorn', 'pydantic', 'psycopg', 'httpx')"
    probe = f"import sys; {code}; print(','.join(m for m in {heavy} if m in sys.modules))"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()


def test_the_sync_client_loads_without_the_server_or_the_app() -> None:
    assert _loaded("import fieldkit.sync") == ""


def test_the_command_line_loads_no_sync_machinery_until_asked() -> None:
    assert _loaded("import fieldkit.cli; fieldkit.cli.build_parser()") == ""
