"""Sync benchmark: fieldkit against PouchDB, over loopback, on this machine.

1. One laptop pushes N new issues to a fresh ``fieldkit serve``; a fresh laptop pulls them all.
2. M simulated laptops (threads speaking the sync protocol), each with 20 new issues, sync with one
   server at the same moment: the latency of each sync, p50 and p99, and how many failed.
3. The same N documents (each issue's operation, about a kilobyte of JSON) replicated by PouchDB
   to pouchdb-server and into a fresh PouchDB — skipped, saying so, when npm is not installed.

    python bench/bench_sync.py [--issues 10000] [--laptops 50] [--db URL] [--no-pouchdb]

Prints a table and writes it to docs/SYNC-PERFORMANCE.md. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, markdown_table, percentile, print_machine  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NODE_DIR = HERE / ".node"  # git-ignored: pouchdb and pouchdb-server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


class Central:
    """``fieldkit serve`` in a subprocess, with an administrator's token."""

    def __init__(self, db_url: str, folder: Path):
        from fieldkit.server.accounts import check_account
        from fieldkit.server.db import Database

        database = Database(db_url)
        database.migrate()
        self.token = database.add_user(check_account(f"bench-{os.getpid()}-{random.randrange(10**6)}", "admin", [], [])).token
        database.close()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "FIELDKIT_HOME": str(folder)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fieldkit", "serve", "--db", db_url, "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )
        wait_for(f"{self.url}/health", self.process)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(20)


def fill(register, count: int, seed: int) -> None:
    """``count`` realistic new issues (``fieldkit.demo`` when there, plain ones otherwise), untimed."""
    from fieldkit import refdata

    rng = random.Random(seed)
    try:
        from fieldkit.demo import demo_issue

        pool = [m for m in refdata.municipalities().values() if m.category != "C"]
        make = lambda: demo_issue(rng, pool)  # noqa: E731
    except ImportError:
        codes = [m.code for m in refdata.municipalities().values() if m.category != "C"]
        make = lambda: {"municipality": rng.choice(codes), "sector": "water", "title": f"Burst main {rng.randrange(10**6)}",  # noqa: E731
                        "description": "Water running down the street since Monday. " * 8, "severity": "high", "ward": rng.randint(1, 40)}
    done = 0
    while done < count:
        with register.store.transaction():
            for _ in range(min(1000, count - done)):
                register.create_issue(make())
                done += 1


def fieldkit_push_pull(db_url: str, folder: Path, issues: int) -> dict:
    from fieldkit.register import Register
    from fieldkit.sync import sync

    central = Central(db_url, folder / "central-home")
    try:
        writer = Register.open(folder / "laptop-a", author="Bench Writer")
        started = time.perf_counter()
        fill(writer, issues, seed=2026)
        print(f"  made {issues} issues on laptop A in {time.perf_counter() - started:.1f} s (not timed)", file=sys.stderr)
        docs = [op for op in writer.pending_ops()]
        started = time.perf_counter()
        pushed = sync(writer, central.url, central.token)
        push = time.perf_counter() - started
        assert pushed.finished and pushed.sent == issues, pushed
        reader = Register.open(folder / "laptop-b", author="Bench Reader")
        started = time.perf_counter()
        pulled = sync(reader, central.url, central.token)
        pull = time.perf_counter() - started
        assert pulled.finished and reader.count() == issues, pulled
        writer.close()
        reader.close()
        return {"push": push, "pull": pull, "docs": docs}
    finally:
        central.stop()


def _simulated_laptop(url: str, token: str, ops: list[dict], cursor: int, start, results) -> None:
    """One laptop's sync as the store sees it: push its changes, then pull pages until up to date."""
    from fieldkit.transport import SyncError, Transport

    start.wait()
    began = time.perf_counter()
    try:
        with Transport(url, token) as client:
            client.info()
            reply = client.push(ops)
            ok = len(reply.acknowledged) == len(ops)
            more = True
            while more:
                page = client.pull(cursor)
                cursor, more = page.next, page.more
        results.append((time.perf_counter() - began, ok, None))
    except SyncError as err:
        results.append((time.perf_counter() - began, False, str(err)))


def many_laptops(db_url: str, folder: Path, laptops: int) -> dict:
    """``laptops`` simulated laptops (threads speaking the sync protocol) at once, each with 20 new issues.

    Simulated rather than ``laptops`` real registers: on a 2-core machine fifty registers merging
    each other's issues would measure the laptops' CPUs, not the central store.
    """
    from fieldkit.register import Register

    central = Central(db_url, folder / "central-home-many")
    try:
        seeded = Register.open(folder / "many-seed", author="Bench")
        fill(seeded, 20 * laptops, seed=7)
        ops = seeded.pending_ops()
        seeded.close()
        with httpx.Client(base_url=central.url, headers={"Authorization": f"Bearer {central.token}"}) as http:
            cursor = http.get("/sync/info").json()["last_seq"]
        start, results = threading.Event(), []
        workers = [threading.Thread(target=_simulated_laptop, args=(central.url, central.token, ops[n * 20:(n + 1) * 20], cursor, start, results))
                   for n in range(laptops)]
        for worker in workers:
            worker.start()
        start.set()
        for worker in workers:
            worker.join(600)
        latencies = [seconds for seconds, _, _ in results]
        errors = [error or "not all acknowledged" for _, ok, error in results if not ok]
        return {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99), "errors": errors}
    finally:
        central.stop()


def pouchdb(docs: list[dict], folder: Path) -> dict | str:
    """PouchDB's push and pull of the same documents, or why that column is empty."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return "skipped: node and npm are not installed"
    if not (NODE_DIR / "node_modules" / "pouchdb-server").exists():
        NODE_DIR.mkdir(exist_ok=True)
        print("  installing pouchdb and pouchdb-server into bench/.node (once)", file=sys.stderr)
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "pouchdb@9", "pouchdb-server@4"],
                              cwd=NODE_DIR, capture_output=True, text=True)
        if done.returncode != 0:
            return f"skipped: npm install failed ({(done.stderr.strip().splitlines() or ['?'])[-1]})"
    documents = folder / "pouch-docs.json"
    documents.write_bytes(orjson.dumps([{"_id": op["id"], **op} for op in docs]))
    port = free_port()
    data = folder / "pouchdb-server"
    data.mkdir()
    server = subprocess.Popen(
        [node, str(NODE_DIR / "node_modules" / "pouchdb-server" / "bin" / "pouchdb-server"), "--port", str(port), "--dir", str(data)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=data,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/", server)
        work = folder / "pouch-laptops"
        work.mkdir()
        done = subprocess.run([node, str(HERE / "pouch_bench.js"), str(documents), f"http://127.0.0.1:{port}", str(work)],
                              capture_output=True, text=True, cwd=NODE_DIR, timeout=1200,
                              env={**os.environ, "NODE_PATH": str(NODE_DIR / "node_modules")})
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if "Error" in line] or ["?"]
            return f"skipped: the PouchDB run failed ({errors[0].strip()})"
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        assert measured["docs"] == len(docs), measured
        return measured
    finally:
        server.terminate()
        server.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=10_000)
    parser.add_argument("--laptops", type=int, default=50)
    parser.add_argument("--db", help="the central store's database (default: a new SQLite file)")
    parser.add_argument("--no-pouchdb", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "docs" / "SYNC-PERFORMANCE.md"))
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="fieldkit-bench-"))
    machine = machine_info(["fastapi", "uvicorn", "httpx", "psycopg"])
    print_machine(machine)
    try:
        backend = "PostgreSQL" if args.db else "SQLite"
        print(f"fieldkit: {args.issues} issues over loopback ({backend})", file=sys.stderr)
        ours = fieldkit_push_pull(args.db or f"sqlite:///{folder / 'central.sqlite3'}", folder, args.issues)
        size = statistics.mean(len(orjson.dumps(op)) for op in ours["docs"])
        print(f"fieldkit: {args.laptops} laptops syncing at once", file=sys.stderr)
        crowd = many_laptops(args.db or f"sqlite:///{folder / 'central-many.sqlite3'}", folder, args.laptops)
        theirs = "skipped: --no-pouchdb" if args.no_pouchdb else pouchdb(ours["docs"], folder)
        report(args, ours, crowd, theirs, size, backend, machine)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def report(args, ours: dict, crowd: dict, theirs: dict | str, size: float, backend: str, machine: dict[str, str]) -> None:
    n = args.issues
    rows = []
    for phase in ("push", "pull"):
        mine = f"{ours[phase]:.2f} s ({n / ours[phase]:,.0f} issues/s)"
        if isinstance(theirs, dict):
            other = f"{theirs[phase]:.2f} s ({n / theirs[phase]:,.0f} docs/s)"
            ratio = f"{theirs[phase] / ours[phase]:.1f}x faster"
        else:
            other, ratio = "—", "—"
        rows.append((f"{phase} {n:,} new issues", mine, other, ratio))
    table = markdown_table(("", "fieldkit", "PouchDB + pouchdb-server", "fieldkit is"), rows)
    crowd_line = (f"{args.laptops} simulated laptops syncing at once (20 new issues each, then pulling everyone's): "
                  f"p50 {crowd['p50']:.2f} s, p99 {crowd['p99']:.2f} s, errors: {len(crowd['errors']) or 'none'}")
    note = theirs if isinstance(theirs, str) else "PouchDB 9 replicating to pouchdb-server 4 (LevelDB on disk), default batch size"
    text = "\n".join([
        "# Sync performance",
        "",
        f"Measured by `python bench/bench_sync.py --issues {n} --laptops {args.laptops}` on {time.strftime('%Y-%m-%d')}; "
        f"central store on {backend}, over loopback. Each document is one issue's operation, {size:,.0f} bytes of JSON "
        "on average.",
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in machine.items()),
        "",
        table,
        "",
        crowd_line,
        "",
        f"PouchDB column: {note}.",
        "",
        "Push is one laptop's `fieldkit sync` with all the issues waiting (batches of 500, gzip, one transaction and one",
        "acknowledging write each); pull is a new laptop's first `fieldkit sync` (a snapshot in pages of 1,000, each page",
        "merged and the cursor moved in one write).",
        "",
    ])
    print("\n" + text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    if crowd["errors"]:
        print(f"errors: {crowd['errors'][:3]}", file=sys.stderr)


if __name__ == "__main__":
    main()
