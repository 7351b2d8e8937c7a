"""The register index answers exactly what the plain rule says, in both of its forms and after edits."""

from __future__ import annotations

import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from fieldkit.filters import IssueFilter, matches, row_from_values, row_to_line, sort_key
from fieldkit.ids import new_id
from fieldkit.store import Store
from fieldkit.store.index import IssueIndex

TITLES = ["Burst main", "No water in ward 4", "Potholes on R61", "Sewage spill", "Streetlight out", "Burst pipe at clinic"]
issue = st.fixed_dictionaries({
    "municipality": st.sampled_from(["BUF", "EC121", "TSH", "NC084"]),
    "ward": st.sampled_from([None, 4, 12, 123]),
    "sector": st.sampled_from(["water", "roads", "sanitation"]),
    "title": st.sampled_from(TITLES),
    "severity": st.sampled_from(["critical", "high", "low"]),
    "status": st.sampled_from(["new", "in_progress", "closed"]),
    "updated_at": st.sampled_from(["2026-11-01", "2026-11-02", "2026-11-03"]),
    "deleted": st.sampled_from([False, False, True]),
})
question = st.builds(
    IssueFilter,
    text=st.sampled_from(["", "burst", "ward 12", "ward 4", "burst clinic", "buffalo", "r61", "sewage tsh", "st", "100%_"]),
    statuses=st.sampled_from([frozenset(), frozenset({"new"}), frozenset({"new", "closed"})]),
    sectors=st.sampled_from([frozenset(), frozenset({"water"})]),
    municipalities=st.sampled_from([frozenset(), frozenset({"EC121"})]),
    districts=st.sampled_from([frozenset(), frozenset({"DC12"}), frozenset({"BUF"})]),
    provinces=st.sampled_from([frozenset(), frozenset({"GP"}), frozenset({"EC", "NC"})]),
    open_only=st.booleans(),
    sort=st.sampled_from(["updated", "severity", "municipality", "title"]),
    descending=st.booleans(),
)


def expected(rows, q):
    ordered = sorted(rows, key=sort_key(q.sort), reverse=q.descending)
    return [r.id for r in ordered if matches(r, q)]


@settings(max_examples=60, deadline=None)
@given(st.lists(issue, min_size=1, max_size=40), st.lists(issue, max_size=8), st.lists(question, min_size=1, max_size=4))
def test_index_agrees_with_the_rule(values, edits, questions):
    documents = {new_id(): v for v in values}
    ids = list(documents)
    folder = tempfile.TemporaryDirectory()
    store = Store(folder.name)

    def save(issue_id, doc):
        row = row_from_values(issue_id, doc)
        store.put("issue", issue_id, doc, None, (row.ref, row.municipality, row.status, row_to_line(row)))

    with store.transaction():
        for issue_id, doc in documents.items():
            save(issue_id, doc)
    built = IssueIndex(dict(documents))
    cold = IssueIndex(store=store)
    for index in (built, cold):
        for q in questions:
            assert [r.id for r in index.find(q)] == expected([row_from_values(i, v) for i, v in documents.items()], q)
    for number, change in enumerate(edits):
        target = ids[number % len(ids)]
        documents[target] = change
        save(target, change)
        for index in (built, cold):
            index.update(target, change)
    for index in (built, cold):
        for q in questions:
            assert [r.id for r in index.find(q)] == expected([row_from_values(i, v) for i, v in documents.items()], q)
        assert len(index) == len(documents)
    store.close()
    folder.cleanup()
