#!/usr/bin/env python
"""Benchmark of the local store (issue #2): fieldkit's store against plain TinyDB and sqlite3.

    python bench/bench_store.py                          # N = 1,000, 10,000 and 100,000
    python bench/bench_store.py --sizes 10000 --saves 100
    python bench/bench_store.py --quick                  # N = 1,000 in under a minute
    python bench/bench_store.py --sizes 100000 --build-only   # just build (and cache) the register

For each N it prints one table, a column per engine, all measured in the same run
on the same issue values:

- ``fieldkit``: a register made by ``fieldkit.demo.load_demo`` (issues with status
  histories, notes and actions), its outbox acknowledged and the store compacted, as
  a register that came mostly from sync would be. Building 100,000 takes minutes,
  so built registers are cached in bench/.cache/<N>-<seed>/ and reused.
- ``TinyDB JSONStorage``: plain ``TinyDB(path)`` holding the same issue values (one
  ``insert_multiple``), queried with TinyDB ``Query`` objects, query cache off.
- ``sqlite3``: the standard library's sqlite3 in WAL mode with ``synchronous=FULL``,
  a table with the issue columns plus the whole document, an index on
  (sector, status, updated_at), ``LIKE`` for text (no FTS), one commit per save.

The same work everywhere: a durable save edits one issue's description (fieldkit and
sqlite also record the operation for the outbox in the same commit); a text lookup
looks for words in title, description and municipality; a filter lookup asks for one
sector and one status; both return rows newest-updated first. Each engine is measured
in its own child process, so one engine's heap does not slow another's garbage
collector. Targets at 100,000 issues (fieldkit column, ✓/✗): durable save p95 < 30 ms,
lookup < 50 ms, cold ``fieldkit find`` < 1 s.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    CACHE_DIR,
    PYTHON,
    ROOT,
    cold_env,
    fmt_bytes,
    fmt_seconds,
    fresh_dir,
    load_average,
    machine_info,
    markdown_table,
    print_machine,
    repeat,
    run_timed,
    run_wall,
    summary,
    timed,
    timed_cpu,
    tree_bytes,
)

ENGINES = ("fieldkit", "tinydb", "sqlite")
HEADINGS = {"fieldkit": "fieldkit", "tinydb": "TinyDB JSONStorage", "sqlite": "sqlite3 (WAL, FULL)"}
TARGET_SAVE_P95 = 0.030
TARGET_LOOKUP = 0.050
TARGET_COLD = 1.0
TARGET_AT = 100_000
AUTHOR = "Bench Facilitator"
# The sources a cached register depends on: a change here may change what load_demo builds.
BUILD_SOURCES = ("fieldkit/store", "fieldkit/register.py", "fieldkit/filters.py", "fieldkit/demo.py", "fieldkit/ids.py",
                 "fieldkit/merge.py", "fieldkit/model.py")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def edit_text(kind: str, i: int) -> str:
    return f"Bench {kind} {i}: the contractor is back on site and expects to finish within two weeks."


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


# -- the cached fieldkit register ---------------------------------------------------------


def sources_digest() -> str:
    digest = hashlib.sha256()
    for name in BUILD_SOURCES:
        path = ROOT / name
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def cache_dir(n: int, seed: int) -> Path:
    return CACHE_DIR / f"{n}-{seed}"


def ensure_register(n: int, seed: int, rebuild: bool) -> dict[str, Any]:
    """The cached register for N issues (built on first use); returns its meta."""
    dest = cache_dir(n, seed)
    meta_path = dest / "meta.json"
    if meta_path.exists() and not rebuild:
        meta = json.loads(meta_path.read_text())
        if meta.get("compacted_by", meta.get("sources")) != sources_digest():
            # The store code changed since the build: let today's code write the snapshots and
            # whatever it derives from them (compaction), so the figures are today's code's.
            log(f"{dest}: fieldkit sources changed since it was built; compacting it with the current code "
                f"(--rebuild for a fresh load_demo) ...")
            refreshed = subprocess.run([PYTHON, __file__, "--_refresh", str(dest)])
            if refreshed.returncode == 0:
                return json.loads(meta_path.read_text())
            log(f"{dest} does not read back as {n:,} issues with the current code (its layout changed?): rebuilding it")
        else:
            return meta
    log(f"building a {n:,}-issue register with load_demo (about 3 ms an issue, cached in {dest}) ...")
    subprocess.run([PYTHON, __file__, "--_build", str(n), str(seed), str(dest)], check=True)
    return json.loads(meta_path.read_text())


def build_worker(n: int, seed: int, dest: Path) -> None:
    import orjson

    from fieldkit.demo import load_demo
    from fieldkit.register import Register

    digest = sources_digest()  # the sources this process runs (they may change while it builds)
    tmp = fresh_dir(dest.parent / f"{dest.name}.building-{os.getpid()}")
    start = time.perf_counter()
    register = Register.open(tmp / "fieldkit", author=AUTHOR)
    load_demo(register, issues=n, seed=seed)
    demo_s = time.perf_counter() - start
    pending = register.pending_ops()
    ack_s, _ = timed(lambda: register.acknowledge([op["op_id"] for op in pending]))
    compact_s, _ = timed(register.store.compact)
    issues = dict(register.store.documents("issue"))
    ids = sorted(issues)
    (tmp / "issues.json").write_bytes(orjson.dumps(issues))
    (tmp / "ids.json").write_bytes(orjson.dumps(ids))
    counts = {name: len(register.store.documents(name)) for name in ("issue", "status_change", "note", "action")}
    register.close()
    meta = {
        "n": n,
        "seed": seed,
        "built": now_iso(),
        "sources": digest,
        "load_demo_s": demo_s,
        "acknowledged_ops": len(pending),
        "acknowledge_s": ack_s,
        "compact_s": compact_s,
        "total_s": demo_s + ack_s + compact_s,
        "records": counts,
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    log(f"built {n:,} issues in {meta['total_s']:.0f} s (load_demo {demo_s:.0f} s, acknowledge {len(pending):,} ops "
        f"{ack_s:.1f} s, compact {compact_s:.1f} s): {counts}")


def refresh_worker(dest: Path) -> None:
    from fieldkit.register import Register

    home = dest / "fieldkit"
    for path in (home / "tables").iterdir():
        if path.is_file() and path.suffix != ".json":
            path.unlink()  # views derived at compaction by older code; today's code writes its own
    register = Register.open(home, author=AUTHOR)
    meta = json.loads((dest / "meta.json").read_text())
    if register.count() != meta["n"]:
        register.close()
        raise SystemExit(3)  # written by code with another layout: rebuild
    store = register.store
    # Write one document of every table back unchanged, so compaction rewrites every snapshot
    # and every view derived from one (it may skip tables the journal did not touch).
    with store.transaction():
        for name in sorted(store.storage.table_names()):
            documents = store.documents(name)
            if documents:
                doc_id = next(iter(documents))
                store.put(name, doc_id, documents[doc_id])
    register.save_settings(bench_compacted_at=now_iso())
    elapsed, _ = timed(store.compact)
    register.close()
    meta["compacted_by"] = sources_digest()
    meta["compacted_at"] = now_iso()
    (dest / "meta.json").write_text(json.dumps(meta, indent=1))
    log(f"compacted {home} with the current code in {elapsed:.1f} s")


def git_state() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "fieldkit"],
                               capture_output=True, text=True).stdout.splitlines()
    except OSError:
        return "?"
    return f"{head or '?'}" + (f" + {len(dirty)} uncommitted file(s) under fieldkit/" if dirty else "") + f"; store sources {sources_digest()}"


# -- child-process scripts: cold lookups and peak memory ----------------------------------------

SHOW = r'''
def show(rows):
    lines = [("REF", "STATUS", "SEVERITY", "MUNI", "WARD", "SECTOR", "UPDATED", "TITLE")] + rows
    widths = [max(len(line[i]) for line in lines) for i in range(7)]
    sys.stdout.write("\n".join("  ".join(c.ljust(w) for c, w in zip(line[:-1], widths)) + "  " + line[-1] for line in lines) + "\n")
'''


def _hwm_code(label: str) -> str:
    return f'''
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        result["{label}"] = int(line.split()[1])
'''


# Each probe: open, a text and a filter lookup (peak RSS noted), then one edit per shard digit
# (16 saves spread over the register, as a session of edits would; peak RSS noted again).
PROBE_HEAD = "import sys, json\nresult = {}\nparams = json.load(open(sys.argv[2]))\n"
PROBE_TAIL = "print(json.dumps(result))\n"

TINYDB_QUERIES = r'''
import re
from tinydb import Query

def text_query(words):
    Q = Query()
    query = None
    for word in words:
        pattern = re.escape(word)
        part = (Q.title.search(pattern, flags=re.IGNORECASE) | Q.description.search(pattern, flags=re.IGNORECASE)
                | Q.municipality.search(pattern, flags=re.IGNORECASE))
        query = part if query is None else query & part
    return query

def filter_query(sector, status):
    Q = Query()
    return (Q.sector == sector) & (Q.status == status)

def newest_first(docs):
    return sorted(docs, key=lambda d: (d.get("updated_at", ""), d.get("id", "")), reverse=True)
'''

SQLITE_QUERIES = r'''
COLUMNS = "ref, status, severity, municipality, ward, sector, updated_at, title"

def text_sql(words):
    clause = " AND ".join(["(title LIKE ? OR description LIKE ? OR municipality LIKE ?)"] * len(words))
    params = [f"%{w}%" for w in words for _ in range(3)]
    return f"SELECT {COLUMNS} FROM issue WHERE {clause} ORDER BY updated_at DESC, id DESC", params

FILTER_SQL = f"SELECT {COLUMNS} FROM issue WHERE sector = ? AND status = ? ORDER BY updated_at DESC, id DESC"
'''

TINYDB_COLD = "import sys, json\nfrom tinydb import TinyDB\n" + TINYDB_QUERIES + SHOW + r'''
path, words = sys.argv[1], sys.argv[2:]
table = TinyDB(path).table("issue", cache_size=0)
docs = newest_first(table.search(text_query([w.lower() for w in words])))
show([(d.get("ref", ""), d.get("status", ""), d.get("severity", ""), d.get("municipality", ""), str(d.get("ward") or ""),
       d.get("sector", ""), d.get("updated_at", "")[:10], d.get("title", "")) for d in docs])
'''

SQLITE_COLD = "import sys, json, sqlite3\n" + SQLITE_QUERIES + SHOW + r'''
path, words = sys.argv[1], sys.argv[2:]
conn = sqlite3.connect(path)
sql, params = text_sql([w.lower() for w in words])
show([(r[0], r[1], r[2], r[3], str(r[4] or ""), r[5], (r[6] or "")[:10], r[7]) for r in conn.execute(sql, params)])
'''

FIELDKIT_PROBE = PROBE_HEAD + r'''
from fieldkit.filters import IssueFilter
from fieldkit.register import Register
register = Register.open(sys.argv[1], author="Bench Facilitator")
a = register.find(IssueFilter(text=params["text"]))
b = register.find(IssueFilter(sectors=frozenset([params["sector"]]), statuses=frozenset([params["status"]])))
result["text"], result["filter"] = len(a), len(b)
''' + _hwm_code("lookups") + r'''
for k, issue_id in enumerate(params["shard_ids"]):
    register.edit_issue(issue_id, {"description": f"Bench probe {k}"})
''' + _hwm_code("saves") + PROBE_TAIL

TINYDB_PROBE = PROBE_HEAD + "from tinydb import TinyDB, Query\n" + TINYDB_QUERIES + r'''
table = TinyDB(sys.argv[1]).table("issue", cache_size=0)
a = newest_first(table.search(text_query(params["text"].lower().split())))
b = newest_first(table.search(filter_query(params["sector"], params["status"])))
result["text"], result["filter"] = len(a), len(b)
''' + _hwm_code("lookups") + r'''
for k, issue_id in enumerate(params["shard_ids"]):
    table.update({"description": f"Bench probe {k}"}, Query().id == issue_id)
''' + _hwm_code("saves") + PROBE_TAIL

SQLITE_PROBE = PROBE_HEAD + "import sqlite3\n" + SQLITE_QUERIES + r'''
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA synchronous=FULL")
sql, args = text_sql(params["text"].lower().split())
a = conn.execute(sql, args).fetchall()
b = conn.execute(FILTER_SQL, (params["sector"], params["status"])).fetchall()
result["text"], result["filter"] = len(a), len(b)
''' + _hwm_code("lookups") + r'''
for k, issue_id in enumerate(params["shard_ids"]):
    conn.execute("BEGIN IMMEDIATE")
    (doc,) = conn.execute("SELECT doc FROM issue WHERE id = ?", (issue_id,)).fetchone()
    values = json.loads(doc)
    values["description"] = f"Bench probe {k}"
    conn.execute("UPDATE issue SET description = ?, doc = ? WHERE id = ?", (values["description"], json.dumps(values), issue_id))
    conn.execute("COMMIT")
''' + _hwm_code("saves") + PROBE_TAIL


def cold_runs(cmd: list[str], env: dict[str, str], runs: int) -> dict[str, Any]:
    """One untimed run (bytecode, page cache), then ``runs`` timed ones: a new process, warm file cache."""
    _, out = run_wall(cmd, env=env)
    times, cpu = [], []
    for _ in range(runs):
        wall, used, _ = run_timed(cmd, env=env)
        times.append(wall)
        cpu.append(used)
    return {"times": times, "cpu": cpu, "rows": max(0, len(out.splitlines()) - 1)}


def probe_memory(code: str, path: Path, p: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Peak RSS (KiB) of a new process after the lookups and after 16 saves; runs on a copy of ``path``."""
    copy = path.with_name(path.name + ".probe")
    if path.is_dir():
        shutil.copytree(path, copy)
    else:
        shutil.copy2(path, copy)
    try:
        _, out = run_wall([PYTHON, "-c", code, str(copy), p["params_path"]], env=env)
    finally:
        shutil.rmtree(copy) if copy.is_dir() else copy.unlink()
        for extra in (copy.with_name(copy.name + "-wal"), copy.with_name(copy.name + "-shm")):
            if extra.exists():
                extra.unlink()
    return json.loads(out.strip().splitlines()[-1])


# -- the engines, each in its own child process -------------------------------------------------


def measure_in_process(res: dict[str, Any], p: dict[str, Any], list_all, text_lookup, filter_lookup, save, warm_up=None) -> None:
    """The in-process measurements every engine shares, in the same order.

    ``list_all()`` returns every issue newest first (the app's first screen), timed once.
    ``save(issue_id, text)`` edits one issue's description durably. ``warm_up()`` runs
    untimed between the first save after open (reported on its own) and the timed saves.
    """
    engine, queries, saves, budget = p["engine"], p["queries"], p["saves"], p["budget"]
    res["list_all_s"], listed = timed(list_all)
    if len(listed) != p["n"]:
        raise SystemExit(f"{engine}: the whole register lists {len(listed):,} issues, not {p['n']:,}")
    del listed
    res["text_matches"] = len(text_lookup())
    res["filter_matches"] = len(filter_lookup())
    res["text_cpu"], res["filter_cpu"], res["save_cpu"], res["after_save_cpu"] = [], [], [], []
    res["text"], res["text_note"] = repeat(lambda i: text_lookup(), queries, budget, cpu_times=res["text_cpu"])
    log(f"  {engine}: text lookup x{len(res['text'])}")
    res["filter"], res["filter_note"] = repeat(lambda i: filter_lookup(), queries, budget, cpu_times=res["filter_cpu"])
    log(f"  {engine}: filter lookup x{len(res['filter'])}")
    res["first_save_s"], _ = timed(lambda: save(p["first_id"], edit_text("first", 0)))
    if warm_up is not None:
        warm_up()
    res["save"], res["save_note"] = repeat(
        lambda i: save(p["edit_ids"][i], edit_text("edit", i)), saves, budget, cpu_times=res["save_cpu"])
    log(f"  {engine}: save x{len(res['save'])}")
    after: list[float] = []
    spent, note = 0.0, ""
    for i, issue_id in enumerate(p["after_ids"][:queries]):
        spent += timed(lambda: save(issue_id, edit_text("after", i)))[0]
        elapsed, cpu, _ = timed_cpu(text_lookup)
        after.append(elapsed)
        res["after_save_cpu"].append(cpu)
        spent += elapsed
        if spent > budget and len(after) >= 5 and len(after) < queries:
            note = f"capped at {len(after)} of {queries} ({budget:.0f} s budget)"
            break
    res["after_save"], res["after_save_note"] = after, note
    log(f"  {engine}: save then lookup x{len(after)}")


def fieldkit_worker(p: dict[str, Any]) -> dict[str, Any]:
    cache = Path(p["cache"])
    home = Path(p["work"]) / "fieldkit"
    if home.exists():
        shutil.rmtree(home)
    shutil.copytree(cache / "fieldkit", home, ignore=shutil.ignore_patterns("backups", "store.lock"))
    meta = json.loads((cache / "meta.json").read_text())
    res: dict[str, Any] = {"fill_s": meta["total_s"], "fill_cached": True}
    res["disk"] = tree_bytes(home)
    env = cold_env(FIELDKIT_HOME=str(home))
    fieldkit_bin = str(Path(PYTHON).with_name("fieldkit"))
    res["cold"] = cold_runs([fieldkit_bin, "find", *p["text"].split()], env, p["cold_runs"])
    log(f"  fieldkit: cold `fieldkit find` x{len(res['cold']['times'])}")
    res["rss"] = probe_memory(FIELDKIT_PROBE, home, p, env)
    log("  fieldkit: memory probe")

    from fieldkit.filters import IssueFilter
    from fieldkit.register import Register

    gc.collect()
    text_q = IssueFilter(text=p["text"])
    filter_q = IssueFilter(sectors=frozenset([p["sector"]]), statuses=frozenset([p["status"]]))
    start = time.perf_counter()
    register = Register.open(home, author=AUTHOR)
    register.find(text_q)
    res["open_first_s"] = time.perf_counter() - start
    if register.count() != p["n"]:
        raise SystemExit(f"{cache} reads back as {register.count():,} issues, not {p['n']:,}, with the current code "
                         f"(the store layout changed?): run again with --rebuild")
    # Before anything asks for the whole register, the index answers from the compact rows file
    # (what one `fieldkit find` does); the app's list then builds every row, and later lookups use them.
    few = min(p["queries"], 20)
    res["lines_text"], _ = repeat(lambda i: register.find(text_q), few, p["budget"], cpu_times=(lines_text_cpu := []))
    res["lines_filter"], _ = repeat(lambda i: register.find(filter_q), few, p["budget"], cpu_times=(lines_filter_cpu := []))
    res["lines_text_cpu"], res["lines_filter_cpu"] = lines_text_cpu, lines_filter_cpu
    log(f"  fieldkit: lookups before the full list x{few}")

    def save(issue_id: str, text: str) -> None:
        register.edit_issue(issue_id, {"description": text})

    def warm_up() -> None:
        # One edit per merge shard (merge_0 .. merge_f), so the timed saves see a warm register,
        # as in the app after its first few edits.
        for k, issue_id in enumerate(p["shard_ids"]):
            save(issue_id, edit_text("warm", k))

    measure_in_process(
        res, p, lambda: register.find(IssueFilter()), lambda: register.find(text_q), lambda: register.find(filter_q), save, warm_up
    )
    saves_made = 1 + len(p["shard_ids"]) + len(res["save"]) + len(res["after_save"])
    res["journal_bytes"] = register.store.storage.journal_bytes
    res["journal_per_save"] = res["journal_bytes"] / saves_made
    res["compact_threshold"] = register.store.storage.compact_bytes
    res["compact_s"], _ = timed(register.store.compact)
    log(f"  fieldkit: compaction {res['compact_s']:.2f} s")
    register.close()
    return res


def tinydb_worker(p: dict[str, Any]) -> dict[str, Any]:
    import orjson
    from tinydb import TinyDB

    namespace: dict[str, Any] = {}
    exec(TINYDB_QUERIES, namespace)  # the very queries the cold process runs
    text_query, filter_query, newest_first = namespace["text_query"], namespace["filter_query"], namespace["newest_first"]

    path = Path(p["work"]) / "tinydb.json"
    if path.exists():
        path.unlink()
    issues = orjson.loads((Path(p["cache"]) / "issues.json").read_bytes())
    ids = sorted(issues)
    values = [issues[i] for i in ids]
    doc_id_of = {issue_id: number for number, issue_id in enumerate(ids, start=1)}  # insert_multiple numbers 1..N

    def fill() -> None:
        db = TinyDB(path)
        db.table("issue").insert_multiple(values)
        db.close()

    res: dict[str, Any] = {}
    res["fill_s"], _ = timed(fill)
    del issues, values
    gc.collect()
    log(f"  tinydb: filled in {res['fill_s']:.1f} s")
    res["disk"] = tree_bytes(path)
    env = cold_env()
    res["cold"] = cold_runs([PYTHON, "-c", TINYDB_COLD, str(path), *p["text"].split()], env, p["cold_runs"])
    log(f"  tinydb: cold process x{len(res['cold']['times'])}")
    res["rss"] = probe_memory(TINYDB_PROBE, path, p, env)
    log("  tinydb: memory probe")

    gc.collect()
    text_q = text_query(p["text"].lower().split())
    filter_q = filter_query(p["sector"], p["status"])
    start = time.perf_counter()
    db = TinyDB(path)
    table = db.table("issue", cache_size=0)  # no query cache: every lookup is answered, not remembered
    newest_first(table.search(text_q))
    res["open_first_s"] = time.perf_counter() - start

    def save(issue_id: str, text: str) -> None:
        table.update({"description": text, "updated_at": now_iso(), "updated_by": AUTHOR}, doc_ids=[doc_id_of[issue_id]])

    measure_in_process(
        res, p, lambda: newest_first(table.all()), lambda: newest_first(table.search(text_q)),
        lambda: newest_first(table.search(filter_q)), save
    )
    db.close()
    res["disk_after"] = tree_bytes(path)
    return res


SQLITE_SCHEMA = """
CREATE TABLE issue (
    id TEXT PRIMARY KEY, ref TEXT, municipality TEXT, ward INTEGER, sector TEXT, category TEXT,
    title TEXT, description TEXT, severity TEXT, status TEXT, responsible TEXT,
    created_at TEXT, updated_at TEXT, doc TEXT NOT NULL
);
CREATE TABLE outbox (op_id TEXT PRIMARY KEY, op TEXT NOT NULL);
"""
SQLITE_INDEXES = """
CREATE INDEX issue_sector_status ON issue (sector, status, updated_at);
CREATE INDEX issue_updated ON issue (updated_at);
"""
SQLITE_COLUMNS = ("id", "ref", "municipality", "ward", "sector", "category", "title", "description", "severity",
                  "status", "responsible", "created_at", "updated_at")


def sqlite_files(path: Path) -> list[Path]:
    return [f for f in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")) if f.exists()]


def sqlite_worker(p: dict[str, Any]) -> dict[str, Any]:
    import sqlite3

    import orjson

    namespace: dict[str, Any] = {}
    exec(SQLITE_QUERIES, namespace)  # the very queries the cold process runs
    text_sql, filter_sql = namespace["text_sql"], namespace["FILTER_SQL"]

    path = Path(p["work"]) / "sqlite.db"
    for old in sqlite_files(path):
        old.unlink()
    issues = orjson.loads((Path(p["cache"]) / "issues.json").read_bytes())

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None)  # we say BEGIN and COMMIT ourselves
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    def fill() -> None:
        conn = connect()
        conn.executescript(SQLITE_SCHEMA)
        rows = [(*(v.get(c) for c in SQLITE_COLUMNS), json.dumps(v)) for v in (issues[i] for i in sorted(issues))]
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO issue VALUES ({', '.join('?' * (len(SQLITE_COLUMNS) + 1))})", rows)
        conn.execute("COMMIT")
        conn.executescript(SQLITE_INDEXES)
        conn.close()

    res: dict[str, Any] = {}
    res["fill_s"], _ = timed(fill)
    del issues
    gc.collect()
    log(f"  sqlite: filled in {res['fill_s']:.1f} s")
    res["disk"] = sum(f.stat().st_size for f in sqlite_files(path))
    env = cold_env()
    res["cold"] = cold_runs([PYTHON, "-c", SQLITE_COLD, str(path), *p["text"].split()], env, p["cold_runs"])
    log(f"  sqlite: cold process x{len(res['cold']['times'])}")
    res["rss"] = probe_memory(SQLITE_PROBE, path, p, env)
    log("  sqlite: memory probe")

    gc.collect()
    sql, params = text_sql(p["text"].lower().split())
    start = time.perf_counter()
    conn = connect()
    conn.execute(sql, params).fetchall()
    res["open_first_s"] = time.perf_counter() - start
    counter = {"op": 0}

    def save(issue_id: str, text: str) -> None:
        # What a sqlite-backed register would do: read, change, write back, record the operation, one commit.
        counter["op"] += 1
        conn.execute("BEGIN IMMEDIATE")
        (doc,) = conn.execute("SELECT doc FROM issue WHERE id = ?", (issue_id,)).fetchone()
        values = json.loads(doc)
        changes = {"description": text, "updated_at": now_iso(), "updated_by": AUTHOR}
        values.update(changes)
        conn.execute("UPDATE issue SET description = ?, updated_at = ?, doc = ? WHERE id = ?",
                     (text, changes["updated_at"], json.dumps(values), issue_id))
        op = {"op_id": f"bench-{os.getpid()}-{counter['op']}", "type": "issue", "id": issue_id, "fields": {"description": text}}
        conn.execute("INSERT INTO outbox VALUES (?, ?)", (op["op_id"], json.dumps(op)))
        conn.execute("COMMIT")

    list_sql = f"SELECT {namespace['COLUMNS']} FROM issue ORDER BY updated_at DESC, id DESC"
    measure_in_process(
        res, p, lambda: conn.execute(list_sql).fetchall(), lambda: conn.execute(sql, params).fetchall(),
        lambda: conn.execute(filter_sql, (p["sector"], p["status"])).fetchall(), save
    )
    res["disk_after"] = sum(f.stat().st_size for f in sqlite_files(path))
    conn.close()
    return res


WORKERS = {"fieldkit": fieldkit_worker, "tinydb": tinydb_worker, "sqlite": sqlite_worker}


def engine_worker(engine: str, params_path: Path) -> None:
    p = json.loads(params_path.read_text())
    p["engine"] = engine
    res = WORKERS[engine](p)
    print(json.dumps(res))


def run_engine(engine: str, params_path: Path) -> dict[str, Any]:
    done = subprocess.run([PYTHON, __file__, "--_worker", engine, str(params_path)], stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the {engine} worker failed (exit {done.returncode}); see above")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the table --------------------------------------------------------------------------------


def mark(value: float, target: float, n: int) -> str:
    if n < TARGET_AT:
        return ""
    return " ✓" if value < target else " ✗"


def build_table(n: int, results: dict[str, dict[str, Any]], meta: dict[str, Any], cold_runs_n: int, text: str) -> tuple[str, list[str]]:
    engines = [e for e in ENGINES if e in results]
    notes: list[str] = []
    rows: list[list[str]] = []

    def row(label: str, cell, target: float | None = None, value=None) -> None:
        cells = [label]
        for engine in engines:
            r = results[engine]
            text = cell(engine, r)
            if target is not None and engine == "fieldkit":
                text += mark(value(r), target, n)
            cells.append(text)
        rows.append(cells)

    def stat(key: str, which: str):
        def cell(engine: str, r: dict[str, Any]) -> str:
            s = summary(r[key])
            note = r.get(f"{key}_note")
            text = fmt_seconds(s[which])
            if r.get(f"{key}_cpu"):
                text += f" (cpu {fmt_seconds(summary(r[f'{key}_cpu'])[which])})"
            if note:
                text += "*"
                line = f"\\* {HEADINGS[engine]}, {key.replace('_', ' ')}: {note}."
                if line not in notes:
                    notes.append(line)
            return text
        return cell

    def fill_cell(engine: str, r: dict[str, Any]) -> str:
        return fmt_seconds(r["fill_s"]) + ("†" if r.get("fill_cached") else "")

    row("fill the store (informational)", fill_cell)
    row("data on disk", lambda e, r: fmt_bytes(r["disk"]))
    row("peak RSS: open + text + filter lookup (new process)", lambda e, r: fmt_bytes(r["rss"]["lookups"] * 1024))
    row("peak RSS: the same + one edit per shard (16 saves)", lambda e, r: fmt_bytes(r["rss"]["saves"] * 1024))
    row(f"cold process: `find {text}`, median of {cold_runs_n}", lambda e, r: (
        fmt_seconds(summary(r["cold"]["times"])["median"]) + f" (cpu {fmt_seconds(summary(r['cold']['cpu'])['median'])})"),
        TARGET_COLD, lambda r: summary(r["cold"]["times"])["median"])
    row("open + first text lookup, in process", lambda e, r: fmt_seconds(r["open_first_s"]))
    row("before the whole list is built: text / filter lookup, median", lambda e, r: (
        f"{fmt_seconds(summary(r['lines_text'])['median'])} / {fmt_seconds(summary(r['lines_filter'])['median'])}"
        if "lines_text" in r else "–"))
    row("list the whole register newest first, once (the app's first screen)", lambda e, r: fmt_seconds(r["list_all_s"]))
    row("text lookup, median", stat("text", "median"))
    row("text lookup, p95", stat("text", "p95"), TARGET_LOOKUP, lambda r: summary(r["text"])["p95"])
    row("filter lookup (sector + status), median", stat("filter", "median"))
    row("filter lookup (sector + status), p95", stat("filter", "p95"), TARGET_LOOKUP, lambda r: summary(r["filter"])["p95"])
    row("text lookup right after a save, median", stat("after_save", "median"))
    row("text lookup right after a save, p95", stat("after_save", "p95"), TARGET_LOOKUP, lambda r: summary(r["after_save"])["p95"])
    row("durable save (edit one issue), median", stat("save", "median"))
    row("durable save (edit one issue), p95", stat("save", "p95"), TARGET_SAVE_P95, lambda r: summary(r["save"])["p95"])
    row("durable save, max", stat("save", "max"))
    row("first save after open", lambda e, r: fmt_seconds(r["first_save_s"]))
    row("compaction (fieldkit: one save in ~N pays it)", lambda e, r: (
        f"{fmt_seconds(r['compact_s'])} (1 in ~{r['compact_threshold'] / r['journal_per_save']:,.0f} saves)" if "compact_s" in r else "–"))
    row("matches: text / filter / cold rows", lambda e, r: f"{r['text_matches']:,} / {r['filter_matches']:,} / {r['cold']['rows']:,}")
    row("samples: text / filter / save / save+lookup", lambda e, r: f"{len(r['text'])} / {len(r['filter'])} / {len(r['save'])} / {len(r['after_save'])}")
    if "fieldkit" in results:
        records = meta["records"]
        notes.insert(0, f"† fieldkit: a cached `load_demo` build ({records['issue']:,} issues, {records['status_change']:,} status changes, "
                     f"{records['note']:,} notes, {records['action']:,} actions, merge state; {meta['acknowledged_ops']:,} outbox "
                     f"operations acknowledged, then compacted), built {meta['built'][:10]} in {meta['load_demo_s']:.0f} s + "
                     f"{meta['acknowledge_s']:.1f} s + {meta['compact_s']:.1f} s. The other engines hold the issues only, "
                     f"loaded in one batch.")
    header = [f"N = {n:,}", *(HEADINGS[e] for e in engines)]
    return markdown_table(header, rows), notes


# -- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated issue counts (default 1000,10000,100000)")
    parser.add_argument("--saves", type=int, default=200, help="timed saves per engine (default 200)")
    parser.add_argument("--queries", type=int, default=50, help="timed lookups of each kind per engine (default 50)")
    parser.add_argument("--cold-runs", type=int, default=5, help="timed cold processes per engine (default 5)")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds one metric may take before its repetitions are capped (default 30)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--text", default="reservoir", help="the text lookup (default: reservoir)")
    parser.add_argument("--sector", default="water")
    parser.add_argument("--status", default="escalated")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of fieldkit,tinydb,sqlite")
    parser.add_argument("--quick", action="store_true", help="smoke run: N = 1,000, fewer repetitions, under a minute")
    parser.add_argument("--build-only", action="store_true", help="build (and cache) the registers, measure nothing")
    parser.add_argument("--rebuild", action="store_true", help="rebuild cached registers")
    parser.add_argument("--keep", action="store_true", help="keep the work copies in bench/.cache/run-<pid>/")
    parser.add_argument("--_build", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--_refresh", help=argparse.SUPPRESS)
    parser.add_argument("--_worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.saves, args.queries, args.cold_runs, args.budget = "1000", 50, 20, 3, 5.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args._build:
        build_worker(int(args._build[0]), int(args._build[1]), Path(args._build[2]))
        return 0
    if args._refresh:
        refresh_worker(Path(args._refresh))
        return 0
    if args._worker:
        engine_worker(args._worker[0], Path(args._worker[1]))
        return 0

    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        raise SystemExit(f"unknown engine(s) {', '.join(sorted(unknown))}; choose from {', '.join(ENGINES)}")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    info = machine_info(["tinydb", "orjson"])
    info["fieldkit"] = git_state()
    started = time.perf_counter()
    print_machine(info)
    startup = sorted(run_wall([PYTHON, "-c", "pass"], env=cold_env())[0] for _ in range(5))[2]
    print(f"Interpreter start (`python -c pass`, median of 5): {fmt_seconds(startup)}", flush=True)
    print(f"Text lookup: {args.text!r}; filter: sector={args.sector}, status={args.status}; "
          f"{args.saves} saves, {args.queries} lookups of each kind, {args.cold_runs} cold runs, {args.budget:.0f} s budget a metric", flush=True)

    work_root = CACHE_DIR / f"run-{os.getpid()}"
    report: dict[str, Any] = {"machine": info, "interpreter_start_s": startup, "args": vars(args), "sizes": {}}
    markdown: list[str] = []
    try:
        for n in sizes:
            meta = ensure_register(n, args.seed, args.rebuild)
            if args.build_only:
                continue
            cache = cache_dir(n, args.seed)
            ids = json.loads((cache / "ids.json").read_text())
            rng = random.Random(args.seed * 1_000_003 + n)
            shard_ids = [next(i for i in ids if i.endswith(d)) for d in "0123456789abcdef" if any(i.endswith(d) for i in ids)]
            params = {
                "n": n, "cache": str(cache), "work": str(fresh_dir(work_root / str(n))),
                "text": args.text, "sector": args.sector, "status": args.status,
                "saves": args.saves, "queries": args.queries, "cold_runs": args.cold_runs, "budget": args.budget,
                "first_id": rng.choice(ids), "shard_ids": shard_ids,
                "edit_ids": [rng.choice(ids) for _ in range(args.saves)],
                "after_ids": [rng.choice(ids) for _ in range(args.queries)],
            }
            params_path = work_root / str(n) / "params.json"
            params["params_path"] = str(params_path)
            params_path.write_text(json.dumps(params))
            results = {}
            for engine in engines:
                log(f"N={n:,}: {HEADINGS[engine]} ...")
                results[engine] = run_engine(engine, params_path)
            table, notes = build_table(n, results, meta, args.cold_runs, args.text)
            block = "\n".join([table, "", *notes])
            print("\n" + block + "\n", flush=True)
            markdown.append(block)
            report["sizes"][str(n)] = {"meta": meta, "results": results}
    finally:
        if not args.keep and work_root.exists():
            shutil.rmtree(work_root, ignore_errors=True)
    if args.build_only:
        return 0
    print(f"Load average at end: {load_average()}; whole run {fmt_seconds(time.perf_counter() - started)}")
    out = CACHE_DIR / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (out / f"store-{stamp}.json").write_text(json.dumps(report, indent=1))
    (out / f"store-{stamp}.md").write_text("\n\n".join(markdown) + "\n")
    print(f"Saved {out / f'store-{stamp}.md'} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
