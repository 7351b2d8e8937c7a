"""In-memory indexes over the issue table, kept current on every write.

Lookups never scan with TinyDB ``Query`` objects (65-190 ms a scan at 100,000
issues) nor test every row with one general rule (1.6-1.9 us a row): a question
is answered by a few tight passes over rows kept in sort order, one pass a
condition, most selective first, each pass over what the last one kept.

Each sort order is computed once and then kept current: an edit moves one row
(a bisect and a list insert), so a save does not cost a re-sort of 100,000
rows.

A cold ``fieldkit find`` builds none of this: an index opened on the store asks
the register file only for the lines that can match (a word through the
trigram index, a place or a status through theirs) and parses only those. The
rows are built the first time something needs all of them (the app).
"""

from __future__ import annotations

import bisect
from typing import Any, Callable, Iterable

from fieldkit.filters import (
    OPEN_STATUSES,
    IssueFilter,
    IssueRow,
    filter_rows,
    row_from_line,
    row_from_values,
    sort_key,
)

ID_CHARS = frozenset("0123456789abcdef-")


#: A question part matching at most this many rows is answered from its own index, not a pass.
FEW = 800
FACET_FILTERS = ("status", "sector", "severity", "municipality", "province")
FACETS = (*FACET_FILTERS, "deleted")


def _chosen(question: IssueFilter) -> tuple[frozenset[str], ...]:
    return (question.statuses, question.sectors, question.severities, question.municipalities, question.provinces)


def _facet_values(question: IssueFilter) -> list[frozenset[str]]:
    return [values for values in _chosen(question) if values]


Pass = Callable[[Iterable[IssueRow]], list[IssueRow]]


def _passes(question: IssueFilter) -> list[Pass]:
    """The passes over the rows, most selective first; each is one list comprehension (no call a row)."""
    passes: list[Pass] = []
    by_facet: dict[str, Callable[[frozenset[str]], Pass]] = {
        "municipality": lambda v: lambda rows: [r for r in rows if r.municipality in v],
        "severity": lambda v: lambda rows: [r for r in rows if r.severity in v],
        "sector": lambda v: lambda rows: [r for r in rows if r.sector in v],
        "status": lambda v: lambda rows: [r for r in rows if r.status in v],
        "province": lambda v: lambda rows: [r for r in rows if r.province in v],
    }
    chosen = [(len(values), facet, values) for facet, values in (
        ("municipality", question.municipalities), ("severity", question.severities), ("sector", question.sectors),
        ("status", question.statuses), ("province", question.provinces)) if values]
    for _, facet, values in sorted(chosen, key=lambda c: (c[0], c[1])):
        passes.append(by_facet[facet](values))
    if question.only_ids is not None:
        passes.append(lambda rows, ids=question.only_ids: [r for r in rows if r.id in ids])
    for word in sorted(question.words, key=len, reverse=True):
        if len(word) >= 4 and set(word) <= ID_CHARS:
            passes.append(lambda rows, w=word: [r for r in rows if w in r.haystack or r.id.startswith(w)])
        else:
            passes.append(lambda rows, w=word: [r for r in rows if w in r.haystack])
    if question.districts:
        passes.append(lambda rows, d=question.districts: [r for r in rows if r.district in d or r.municipality in d])
    if question.open_only:
        passes.append(lambda rows: [r for r in rows if r.status in OPEN_STATUSES])
    if not question.include_deleted:
        passes.append(lambda rows: [r for r in rows if not r.deleted])
    return passes


def _municipalities_of(question: IssueFilter) -> set[str] | None:
    """Every municipality a question's places can match (None: it names no place).

    The smallest of what it asks: the municipalities chosen, the districts with
    their local municipalities, the provinces' municipalities.
    """
    from fieldkit import refdata

    everywhere = refdata.municipalities().values()
    found: list[set[str]] = []
    if question.municipalities:
        found.append(set(question.municipalities))
    if question.districts:
        found.append({m.code for m in everywhere if m.code in question.districts or m.district_code in question.districts})
    if question.provinces:
        found.append({m.code for m in everywhere if m.province in question.provinces})
    return min(found, key=len) if found else None


def _newest_first(values: Iterable[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """Documents newest first, so rows made from them lie in memory in the register's usual order.

    A pass over 100,000 rows in the order they were made takes about 21 ms; in
    the order the register files happen to hold them, about 50 ms (cache misses).
    """
    return sorted(values, key=lambda item: item[1].get("updated_at") or "", reverse=True)


class _Lines:
    """The register's compact lines, read from the register file only where they can match."""

    def __init__(self, store: Any):
        self.store = store

    @staticmethod
    def _parse(lines: Iterable[str]) -> list[IssueRow]:
        return [row_from_line(line) for line in lines]

    def rows(self, needle: str | None) -> list[IssueRow]:
        """Parsed rows whose line holds ``needle`` (all rows for None)."""
        return self._parse(self.store.issue_lines(needle))

    def rows_by_ref(self, ref: str) -> list[IssueRow]:
        return self._parse(self.store.issue_lines(ref=ref))

    def rows_by_ids(self, ids: Iterable[str]) -> list[IssueRow]:
        return self._parse(self.store.issue_lines(ids=ids))

    def rows_in(self, municipalities: Iterable[str]) -> list[IssueRow]:
        return self._parse(self.store.issue_lines(municipalities=municipalities))

    def rows_with_status(self, statuses: Iterable[str]) -> list[IssueRow]:
        return self._parse(self.store.issue_lines(statuses=statuses))


class IssueIndex:
    def __init__(self, documents: dict[str, dict[str, Any] | None] | None = None, store: Any = None):
        """Rows from the issue documents, or (cold) from the store's compact lines as they are needed."""
        self._lines: _Lines | None = None
        self._rows: dict[str, IssueRow] | None = None
        if store is None:
            live = ((i, v) for i, v in (documents or {}).items() if v is not None)
            self._rows = {i: row_from_values(i, v) for i, v in _newest_first(live)}
        else:
            self._lines = _Lines(store)
        self._reset_structures()

    def _reset_structures(self) -> None:
        self._orders: dict[str, list[IssueRow]] = {}  # ascending, kept current on each edit
        self._descending: dict[str, list[IssueRow]] = {}  # reversed copies, made again after an edit
        self._facets: dict[str, dict[str, set[str]]] | None = None
        self._text: str | None = None
        self._text_starts: list[int] = []
        self._text_ids: list[str] = []
        self._text_stale: set[str] = set()
        self._sorted_ids: list[str] | None = None
        self._by_ref: dict[str, list[str]] | None = None

    @property
    def rows(self) -> dict[str, IssueRow]:
        """Every live row by id (built from the register file on first use)."""
        if self._rows is None:
            assert self._lines is not None
            found = self._lines.rows(None)
            found.sort(key=lambda row: row.updated_at, reverse=True)
            rows = {row.id: row for row in found}
            self._rows, self._lines = rows, None
            self._reset_structures()
        return self._rows

    # -- keeping current ---------------------------------------------------------

    def update(self, issue_id: str, values: dict[str, Any] | None) -> None:
        if self._rows is None:
            return  # cold: the store's lines are written in the same transaction
        row = row_from_values(issue_id, values) if values is not None else None
        old = self._rows.pop(issue_id, None)
        if row is not None:
            self._rows[issue_id] = row
        if self._facets is not None:
            for facet in FACETS:
                if old is not None:
                    self._facets[facet].get(getattr(old, facet), set()).discard(issue_id)
                if row is not None:
                    self._facets[facet].setdefault(getattr(row, facet), set()).add(issue_id)
        if self._text is not None:
            self._text_stale.add(issue_id)
            if len(self._text_stale) > FEW:
                self._text = None
        self._descending.clear()
        for sort, order in self._orders.items():
            key = sort_key(sort)
            if old is not None:
                position = bisect.bisect_left(order, key(old), key=key)
                while order[position] is not old:
                    position += 1
                del order[position]
            if row is not None:
                bisect.insort(order, row, key=key)
        if old is None or row is None:
            self._sorted_ids = None
        if (old.ref if old else "") != (row.ref if row else ""):
            self._by_ref = None

    def __len__(self) -> int:
        if self._rows is None:
            assert self._lines is not None
            return self._lines.store.issue_count()
        return len(self._rows)

    def _ascending(self, sort: str) -> list[IssueRow]:
        order = self._orders.get(sort)
        if order is None:
            order = self._orders[sort] = sorted(self.rows.values(), key=sort_key(sort))
        return order

    def _in_order(self, sort: str, descending: bool) -> list[IssueRow]:
        """A sort order as a list to walk forwards (a reversed walk is a third slower: memory order)."""
        if not descending:
            return self._ascending(sort)
        found = self._descending.get(sort)
        if found is None:
            found = self._descending[sort] = self._ascending(sort)[::-1]
        return found

    # -- answering -------------------------------------------------------------------

    def find(self, question: IssueFilter) -> list[IssueRow]:
        if self._rows is None:
            return self._find_in_lines(question)
        return self._find_in_rows(question)

    def _find_in_rows(self, question: IssueFilter) -> list[IssueRow]:
        few = self._few_candidates(question)
        if few is not None:
            found: Iterable[IssueRow] = sorted(few, key=sort_key(question.sort), reverse=question.descending)
        else:
            found = self._in_order(question.sort, question.descending)
        for narrow in _passes(question):
            found = narrow(found)
        found = found if isinstance(found, list) else list(found)
        return found[: question.limit] if question.limit is not None else found

    def _few_candidates(self, question: IssueFilter) -> list[IssueRow] | None:
        """The rows a selective question can match, found without a pass over every row.

        A rare word is found hit by hit in all rows' search text joined into one
        string (C-speed ``str.find``, ``bisect`` to the row); a rare filter value
        has its set of ids. None when nothing in the question is rare: then the
        passes over the sorted rows are the cheaper way.
        """
        rows = self.rows
        best: set[str] | None = None
        facets = self._facet_sets() if _facet_values(question) else {}
        for facet, values in zip(FACET_FILTERS, _chosen(question)):
            if values and sum(len(facets[facet].get(v, ())) for v in values) <= FEW:
                ids = set().union(*(facets[facet].get(v, ()) for v in values))
                best = ids if best is None or len(ids) < len(best) else best
        if best is None:
            for word in sorted(question.words, key=len, reverse=True)[:1]:
                best = self._ids_with_word(word)
        if best is None:
            return None
        return [rows[i] for i in best if i in rows]

    def _facet_sets(self) -> dict[str, dict[str, set[str]]]:
        if self._facets is None:
            facets: dict[str, dict[str, set[str]]] = {facet: {} for facet in FACETS}
            for row in self.rows.values():
                for facet in FACETS:
                    facets[facet].setdefault(getattr(row, facet), set()).add(row.id)
            self._facets = facets
        return self._facets

    def _ids_with_word(self, word: str) -> set[str] | None:
        """Ids of the rows whose search text holds a rare word; None once it proves common."""
        if self._text is None:
            rows = list(self.rows.values())
            starts, position = [], 0
            for row in rows:
                starts.append(position)
                position += len(row.haystack) + 1
            self._text = "\x00".join(row.haystack for row in rows)
            self._text_starts, self._text_ids, self._text_stale = starts, [r.id for r in rows], set()
        text, starts, ids = self._text, self._text_starts, self._text_ids
        found: set[str] = set()
        position = text.find(word)
        while position >= 0:
            slot = bisect.bisect_right(starts, position) - 1
            found.add(ids[slot])
            if len(found) > FEW:
                return None
            position = text.find(word, starts[slot + 1]) if slot + 1 < len(starts) else -1
        stale = self._text_stale
        found -= stale
        found.update(i for i in stale if i in self.rows and word in self.rows[i].haystack)
        if len(word) >= 4 and set(word) <= ID_CHARS:
            found.update(self.ids_with_prefix(word, limit=FEW))
        return found

    def _find_in_lines(self, question: IssueFilter) -> list[IssueRow]:
        """A cold lookup: parse only the lines that can match the most selective part of the question.

        A word of three letters or more is found by the trigram index; a place by
        the municipality index (a district or province is its municipalities); a
        status by its own. With none of these, the rows are built once and kept.
        """
        assert self._lines is not None
        longest = max(question.words, key=len) if question.words else ""
        places = _municipalities_of(question)
        if len(longest.strip()) >= 3:
            candidates = self._lines.rows(longest)
        elif places is not None:
            candidates = self._lines.rows_in(places)
        elif question.statuses:
            candidates = self._lines.rows_with_status(question.statuses)
        elif longest:
            candidates = self._lines.rows(longest)
        else:
            return self._find_in_rows(question)
        candidates.sort(key=sort_key(question.sort), reverse=question.descending)
        return filter_rows(candidates, question)

    # -- single rows -----------------------------------------------------------------

    def get(self, issue_id: str) -> IssueRow | None:
        if self._rows is not None:
            return self._rows.get(issue_id)
        assert self._lines is not None
        return next(iter(self._lines.rows_by_ids([issue_id])), None)

    def get_many(self, issue_ids: Iterable[str]) -> dict[str, IssueRow]:
        """Rows for many ids at once."""
        wanted = set(issue_ids)
        if self._rows is not None:
            return {i: self._rows[i] for i in wanted if i in self._rows}
        assert self._lines is not None
        return {row.id: row for row in self._lines.rows_by_ids(wanted)}

    def __contains__(self, issue_id: object) -> bool:
        return isinstance(issue_id, str) and self.get(issue_id) is not None

    def ids_by_ref(self, ref: str) -> list[str]:
        """Every issue with this reference: one, or several on a register that was given a duplicate."""
        wanted = ref.strip().upper()
        if self._rows is None:
            assert self._lines is not None
            return sorted(row.id for row in self._lines.rows_by_ref(wanted))
        if self._by_ref is None:
            by_ref: dict[str, list[str]] = {}
            for row in self._rows.values():
                if row.ref:
                    by_ref.setdefault(row.ref.upper(), []).append(row.id)
            self._by_ref = by_ref
        return sorted(self._by_ref.get(wanted, []))

    def by_ref(self, ref: str) -> str | None:
        found = self.ids_by_ref(ref)
        return found[0] if found else None

    def ids_with_prefix(self, prefix: str, limit: int = 10) -> list[str]:
        if self._rows is None:
            assert self._lines is not None
            return self._lines.store.ids_starting(prefix, limit)
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

    def refs_with_prefix(self, prefix: str, limit: int = 10) -> list[str]:
        wanted = prefix.strip().upper()
        if self._rows is None:
            assert self._lines is not None
            return self._lines.store.refs_starting(wanted, limit)
        return [row.id for row in self._rows.values() if row.ref.upper().startswith(wanted)][:limit]
