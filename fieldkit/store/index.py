"""In-memory indexes over the issue table, kept current on every write.

Lookups never scan with TinyDB ``Query`` objects (65-190 ms a scan at 100,000
issues): they read rows that hold only what lists, filters and sorts need,
with each sort order computed once and reused until the register changes.

A cold ``fieldkit find`` must answer in well under a second at 100,000 issues,
and building 100,000 row objects alone takes most of that. So an index opened
from the compact register file (one tab-separated line an issue, written at
compaction) keeps the lines as text: a question is first put to the lines as
plain substring tests, and only the candidates are parsed and checked exactly.
The full rows are built the first time something needs all of them (the app's
register list, a question with no words or filters).
"""

from __future__ import annotations

import bisect
from typing import Any

from fieldkit.filters import (
    IssueFilter,
    IssueRow,
    filter_rows,
    row_from_line,
    row_from_values,
    row_to_line,
    sort_key,
)


def render_rows(documents: dict[str, dict[str, Any]]) -> bytes:
    """The compact register file written beside the issue snapshot: one tab-separated row an issue."""
    return "\n".join(row_to_line(row_from_values(i, v)) for i, v in documents.items()).encode("utf-8")


def _line_tests(question: IssueFilter) -> list[tuple[str, ...]]:
    """Substrings a line must contain (any of each group) to possibly answer the question."""
    tests: list[tuple[str, ...]] = [(word,) for word in question.words]
    for chosen in (question.statuses, question.sectors, question.severities, question.municipalities, question.provinces):
        if chosen:
            tests.append(tuple(f"\t{value}\t" for value in chosen))
    return tests


class IssueIndex:
    def __init__(self, documents: dict[str, dict[str, Any] | None], rows: bytes | None = None):
        """Rows from the issue documents, or from a compact register file plus the documents changed since."""
        self._lines: list[str] | None = None
        self._changed: dict[str, IssueRow | None] = {}
        self._rows: dict[str, IssueRow] | None = None
        if rows is None:
            self._rows = {i: row_from_values(i, v) for i, v in documents.items() if v is not None}
        else:
            self._lines = [line for line in rows.decode("utf-8").split("\n") if line]
            self._changed = {i: (row_from_values(i, v) if v is not None else None) for i, v in documents.items()}
        self._by_ref: dict[str, str] | None = None
        self._sorted_ids: list[str] | None = None
        self._orders: dict[str, list[IssueRow]] = {}

    @property
    def rows(self) -> dict[str, IssueRow]:
        """Every live row by id (built from the lines on first use)."""
        if self._rows is None:
            rows = {}
            for line in self._lines or ():
                if line[:36] not in self._changed:
                    row = row_from_line(line)
                    rows[row.id] = row
            rows.update((i, r) for i, r in self._changed.items() if r is not None)
            self._rows, self._lines, self._changed = rows, None, {}
        return self._rows

    def update(self, issue_id: str, values: dict[str, Any] | None) -> None:
        row = row_from_values(issue_id, values) if values is not None else None
        if self._rows is None:
            self._changed[issue_id] = row
        else:
            old = self._rows.pop(issue_id, None)
            if row is not None:
                self._rows[issue_id] = row
            if old is None or row is None:
                self._sorted_ids = None
        self._by_ref = None
        self._orders.clear()

    def __len__(self) -> int:
        if self._rows is None:
            gone = sum(1 for line in self._lines or () if line[:36] in self._changed)
            added = sum(1 for r in self._changed.values() if r is not None)
            return len(self._lines or ()) - gone + added
        return len(self._rows)

    def ordered(self, sort: str, descending: bool) -> list[IssueRow]:
        """All rows in one sort order, computed once until the register changes."""
        name = f"{sort}:{'desc' if descending else 'asc'}"
        order = self._orders.get(name)
        if order is None:
            order = sorted(self.rows.values(), key=sort_key(sort), reverse=descending)
            self._orders[name] = order
        return order

    def _candidates(self, tests: list[tuple[str, ...]]) -> list[IssueRow]:
        """Rows whose line passes the substring tests, parsed (lines mode only)."""
        changed = self._changed
        found = []
        for line in self._lines or ():
            if all(any(t in line for t in group) for group in tests) and line[:36] not in changed:
                found.append(row_from_line(line))
        found.extend(r for r in changed.values() if r is not None)
        return found

    def find(self, question: IssueFilter) -> list[IssueRow]:
        key = sort_key(question.sort)
        if question.only_ids is not None and len(question.only_ids) < max(len(self), 1) // 50:
            rows = self.rows if self._rows is not None else {r.id: r for r in self._candidates([])}
            candidates = sorted((rows[i] for i in question.only_ids if i in rows), key=key, reverse=question.descending)
            return filter_rows(candidates, question)
        tests = _line_tests(question)
        if self._rows is None and tests:
            candidates = self._candidates(tests)
            candidates.sort(key=key, reverse=question.descending)
            return filter_rows(candidates, question)
        return filter_rows(self.ordered(question.sort, question.descending), question)

    def get(self, issue_id: str) -> IssueRow | None:
        if self._rows is not None:
            return self._rows.get(issue_id)
        if issue_id in self._changed:
            return self._changed[issue_id]
        for line in self._lines or ():
            if line.startswith(issue_id):
                return row_from_line(line)
        return None

    def __contains__(self, issue_id: str) -> bool:
        return self.get(issue_id) is not None

    def by_ref(self, ref: str) -> str | None:
        wanted = ref.strip().upper()
        if self._rows is None:
            probe = f"\t{wanted}\t"
            for row in self._candidates([(probe,)]):
                if row.ref.upper() == wanted:
                    return row.id
            return None
        if self._by_ref is None:
            self._by_ref = {row.ref.upper(): row.id for row in self._rows.values() if row.ref}
        return self._by_ref.get(wanted)

    def ids_with_prefix(self, prefix: str, limit: int = 10) -> list[str]:
        if self._rows is None:
            return [i for i in self._ids_from_lines() if i.startswith(prefix)][:limit]
        if self._sorted_ids is None:
            self._sorted_ids = sorted(self._rows)
        ids = self._sorted_ids
        start = bisect.bisect_left(ids, prefix)
        found = []
        for issue_id in ids[start:]:
            if not issue_id.startswith(prefix) or len(found) >= limit:
                break
            found.append(issue_id)
        return found

    def _ids_from_lines(self) -> list[str]:
        ids = [line[:36] for line in self._lines or () if line[:36] not in self._changed]
        ids.extend(i for i, r in self._changed.items() if r is not None)
        return sorted(ids)

    def refs_with_prefix(self, prefix: str, limit: int = 10) -> list[str]:
        wanted = prefix.strip().upper()
        if self._rows is None:
            return [r.id for r in self._candidates([(f"\t{wanted}",)]) if r.ref.upper().startswith(wanted)][:limit]
        return [row.id for row in self._rows.values() if row.ref.upper().startswith(wanted)][:limit]
