"""The baseline for bench_store.py: plain sqlite3 doing what each fieldkit command does, in a cold process.

The same records (issues, notes, follow-up actions, status changes as JSON
documents, an outbox of operations) in one SQLite file (WAL,
``synchronous=FULL``), with the indexes a hand-written tool would add: the
reference, the filters, the issue of each child record, and FTS5 over the
text. Standard library only, like the commands it is compared with.

    python bench/sqlite_baseline.py build DB RECORDS.jsonl
    python bench/sqlite_baseline.py add|note|status|edit|action|show|text|filter|ref|pull|import DB [ARG]
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
import uuid

SCHEMA = """
CREATE TABLE issue(id TEXT PRIMARY KEY, ref TEXT, municipality TEXT, status TEXT, sector TEXT,
                   severity TEXT, updated_at TEXT, doc TEXT NOT NULL);
CREATE INDEX issue_ref ON issue(ref);
CREATE INDEX issue_filter ON issue(municipality, status);
CREATE TABLE child(id TEXT PRIMARY KEY, kind TEXT, issue_id TEXT, doc TEXT NOT NULL);
CREATE INDEX child_issue ON child(issue_id);
CREATE TABLE outbox(op_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE VIRTUAL TABLE issue_text USING fts5(title, description, content='');
"""


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def put_issue(conn: sqlite3.Connection, doc: dict) -> None:
    conn.execute("INSERT OR REPLACE INTO issue VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (doc["id"], doc.get("ref"), doc.get("municipality"), doc.get("status"), doc.get("sector"),
                  doc.get("severity"), doc.get("updated_at"), json.dumps(doc)))
    rowid = conn.execute("SELECT rowid FROM issue WHERE id = ?", (doc["id"],)).fetchone()[0]
    conn.execute("INSERT INTO issue_text(rowid, title, description) VALUES (?, ?, ?)",
                 (rowid, doc.get("title", ""), doc.get("description", "")))


def op(record_id: str, fields: dict) -> tuple[str, str]:
    op_id = str(uuid.uuid4())
    return op_id, json.dumps({"op_id": op_id, "id": record_id, "fields": fields, "hlc": time.time()})


def some_issue(conn: sqlite3.Connection) -> dict:
    return json.loads(conn.execute("SELECT doc FROM issue ORDER BY id LIMIT 1 OFFSET 7").fetchone()[0])


def main(argv: list[str]) -> None:
    what, path = argv[0], argv[1]
    if what == "build":
        if os.path.exists(path):
            os.remove(path)
        conn = connect(path)
        conn.executescript(SCHEMA)
        conn.execute("BEGIN")
        with open(argv[2], encoding="utf-8") as records:
            for line in records:
                kind, doc = json.loads(line)
                if kind == "issue":
                    put_issue(conn, doc)
                else:
                    conn.execute("INSERT INTO child VALUES (?, ?, ?, ?)", (doc["id"], kind, doc.get("issue_id"), json.dumps(doc)))
        conn.execute("COMMIT")
        conn.close()
        return
    conn = connect(path)
    if what in ("add", "import"):
        count = 1 if what == "add" else int(argv[2])
        conn.execute("BEGIN IMMEDIATE")
        for n in range(count):
            doc = {"id": str(uuid.uuid4()), "ref": f"BUF-26-BASE-{n:05d}", "municipality": "BUF", "sector": "water",
                   "title": f"Burst main {n}", "status": "new", "severity": "high", "updated_at": "2026-12-01"}
            put_issue(conn, doc)
            conn.execute("INSERT INTO outbox VALUES (?, ?)", op(doc["id"], doc))
        conn.execute("COMMIT")
    elif what in ("note", "action", "status"):
        issue = some_issue(conn)
        conn.execute("BEGIN IMMEDIATE")
        doc = {"id": str(uuid.uuid4()), "issue_id": issue["id"], "text": "Met the manager on site"}
        conn.execute("INSERT INTO child VALUES (?, ?, ?, ?)", (doc["id"], what, issue["id"], json.dumps(doc)))
        conn.execute("INSERT INTO outbox VALUES (?, ?)", op(doc["id"], doc))
        if what == "status":
            issue["status"] = "in_progress"
            put_issue(conn, issue)
        conn.execute("COMMIT")
    elif what == "edit":
        conn.execute("BEGIN IMMEDIATE")
        issue = some_issue(conn)
        issue["severity"] = "critical"
        put_issue(conn, issue)
        conn.execute("INSERT INTO outbox VALUES (?, ?)", op(issue["id"], {"severity": "critical"}))
        conn.execute("COMMIT")
    elif what == "show":
        issue = some_issue(conn)
        children = conn.execute("SELECT doc FROM child WHERE issue_id = ?", (issue["id"],)).fetchall()
        print(issue["title"], len(children))
    elif what == "text":
        found = conn.execute("SELECT issue.doc FROM issue_text JOIN issue ON issue.rowid = issue_text.rowid "
                             "WHERE issue_text MATCH ? ORDER BY issue.updated_at DESC", (argv[2],)).fetchall()
        print(len(found))
    elif what == "filter":
        municipality, status = argv[2].split(":")
        found = conn.execute("SELECT doc FROM issue WHERE municipality = ? AND status = ? ORDER BY updated_at DESC",
                             (municipality, status)).fetchall()
        print(len(found))
    elif what == "ref":
        print(conn.execute("SELECT doc FROM issue WHERE ref = ?", (argv[2],)).fetchone() is not None)
    elif what == "pull":
        count = int(argv[2])
        ids = [r[0] for r in conn.execute("SELECT id FROM issue ORDER BY id LIMIT ?", (count,))]
        conn.execute("BEGIN IMMEDIATE")
        for issue_id in ids:
            doc = json.loads(conn.execute("SELECT doc FROM issue WHERE id = ?", (issue_id,)).fetchone()[0])
            doc["severity"] = "low"
            put_issue(conn, doc)
        conn.execute("COMMIT")
    conn.close()


if __name__ == "__main__":
    main(sys.argv[1:])
