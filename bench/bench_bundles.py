"""Bundle benchmark: 10,000 changes carried by hand, beside the same changes synced online.

1. A laptop with N new issues writes them into one bundle (sealed, compressed, written whole) — goal ≤ 2 s.
2. The central store takes the bundle in (checks, applies, writes the receipt) — goal ≤ 3 s;
   also the operator's whole command, ``fieldkit server bundle-in``, as a process.
3. The laptop takes the receipt in (its outbox empties).
4. Beside it: another laptop with the same N issues pushes them online to ``fieldkit serve`` on a fresh database.

    python bench/bench_bundles.py [--issues 10000] [--db URL] [--runs 3]

``--db`` a PostgreSQL URL measures the store on PostgreSQL (each run gets its own schema);
by default a SQLite file. Prints a table and writes it to docs/BUNDLE-PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import machine_info, markdown_table, print_machine  # noqa: E402
from bench_sync import Central, fill  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def new_store(base: str | None, folder: Path, label: str) -> tuple[str, object]:
    """A fresh database URL and its clean-up."""
    if base is None:
        return f"sqlite:///{folder / f'{label}.sqlite3'}", lambda: None
    import psycopg

    schema = f"fk_bench_{secrets.token_hex(4)}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in base else "?"

    def drop() -> None:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")

    return f"{base}{separator}options=-csearch_path%3D{schema}", drop


def one_run(issues: int, base: str | None, folder: Path) -> dict[str, float]:
    from fieldkit import bundle_sync, bundles
    from fieldkit.register import Register
    from fieldkit.server.accounts import check_account
    from fieldkit.server.bundles import apply_bundle
    from fieldkit.server.db import Database
    from fieldkit.sync import sync

    figures: dict[str, float] = {}
    url, drop = new_store(base, folder, "bundle")
    try:
        database = Database(url)
        database.migrate()
        user = database.add_user(check_account("operator", "admin", [], [])).user
        laptop = Register.open(folder / "laptop", author="Bench Laptop")
        fill(laptop, issues, seed=2026)
        database.register_device(user, bundle_sync.public_key(laptop), by_operator=True)
        bundle_sync.trust(laptop, database.store_key().line())

        stick = folder / "stick"
        stick.mkdir()
        started = time.perf_counter()
        made = bundle_sync.make_bundle(laptop)
        bundles.write_file(stick / "laptop.fkbundle", made.data)
        figures["write"] = time.perf_counter() - started
        figures["size_mb"] = len(made.data) / 1e6
        assert made.changes == issues, made.changes

        started = time.perf_counter()
        outcome = apply_bundle(database, (stick / "laptop.fkbundle").read_bytes())
        bundles.write_file(stick / "laptop.receipt.fkbundle", outcome.receipt)
        figures["apply"] = time.perf_counter() - started
        assert outcome.stored == issues and not outcome.rejected, (outcome.stored, outcome.rejected[:1])

        started = time.perf_counter()
        again = apply_bundle(database, (stick / "laptop.fkbundle").read_bytes())
        figures["again"] = time.perf_counter() - started
        assert again.stored == 0
        database.close()

        env = {**os.environ, "FIELDKIT_HOME": str(folder / "operator")}
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fieldkit", "server", "bundle-in", str(stick / "laptop.fkbundle"), "--db", url,
                        "-o", str(stick / "again.fkbundle")], check=True, env=env, capture_output=True, cwd=ROOT)
        figures["command"] = time.perf_counter() - started

        started = time.perf_counter()
        bundle_sync.take_in(laptop, (stick / "laptop.receipt.fkbundle").read_bytes())
        figures["receipt"] = time.perf_counter() - started
        assert laptop.waiting_count() == 0
        laptop.close()
    finally:
        drop()

    url, drop = new_store(base, folder, "online")
    try:
        central = Central(url, folder / "central-home")
        try:
            twin = Register.open(folder / "twin", author="Bench Twin")
            fill(twin, issues, seed=2026)
            started = time.perf_counter()
            result = sync(twin, central.url, central.token)
            figures["online"] = time.perf_counter() - started
            assert result.finished and result.sent == issues, result.error
            twin.close()
        finally:
            central.stop()
    finally:
        drop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=10_000)
    parser.add_argument("--db", help="a PostgreSQL URL (default: SQLite files)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only; do not update docs/BUNDLE-PERFORMANCE.md")
    args = parser.parse_args()
    machine = machine_info(["cryptography"])
    print_machine(machine)
    runs = []
    for number in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            runs.append(one_run(args.issues, args.db, Path(folder)))
        print(f"  run {number + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in runs[-1].items()), file=sys.stderr)

    def median(key: str) -> str:
        return f"{statistics.median(r[key] for r in runs):.2f} s"

    store = "PostgreSQL" if args.db else "SQLite"
    rows = [
        ["write the bundle on the laptop (seal, compress, write whole)", median("write"), "≤ 2 s"],
        [f"take it in at the central store ({store}) and write the receipt", median("apply"), "≤ 3 s"],
        ["take the same bundle in again (all already there)", median("again"), ""],
        ["`fieldkit server bundle-in` as a process, start to end", median("command"), ""],
        ["take the receipt in on the laptop", median("receipt"), ""],
        [f"beside it: `fieldkit sync` of the same {args.issues:,} changes to `fieldkit serve`", median("online"), ""],
    ]
    table = markdown_table(["step", f"{args.issues:,} changes, median of {len(runs)}", "goal"], rows)
    size = statistics.median(r["size_mb"] for r in runs)
    about = ", ".join(f"{k} {v}" for k, v in machine.items())
    text = f"# Bundles: {args.issues:,} changes by hand\n\n{about}\n\nBundle size {size:.1f} MB.\n\n{table}\n"
    print(text)
    if not args.no_write:
        (ROOT / "docs" / "BUNDLE-PERFORMANCE.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
