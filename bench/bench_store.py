"""The register at province scale: every goal of issue #8 beside plain sqlite3 doing the same, in one run.

For each size (1,000, 10,000, 100,000 issues) it builds a register as
``fieldkit demo`` leaves it (every change still in the outbox: the heaviest a
laptop gets before it syncs), and a plain SQLite file with the same records
(``sqlite_baseline.py``), then measures what a person meets:

- a command in a terminal (``add``, ``note``, ``status``, ``edit``, ``action``,
  ``show``, ``find`` by text, filter and reference): cold processes, median
  wall time and the worst peak memory of the runs;
- steady saves in a long-lived process with the index loaded, as in the app
  (p95, p99.9 and the worst of up to 10,000);
- the folder on disk, and one backup;
- ``fieldkit demo`` and the import of a CSV of N issues, wall time and peak memory;
- the laptop's side of a pull: 10 changes into a full register, and a whole
  register into a new laptop (page by page, as the snapshot pull applies it).

    python bench/bench_store.py                    # 1,000, 10,000 and 100,000
    python bench/bench_store.py --sizes 1000       # a quick look
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import CACHE_DIR, PYTHON, ROOT, cold_env, fmt_bytes, machine_info, markdown_table, percentile, print_machine, tree_bytes  # noqa: E402

BASELINE = Path(__file__).with_name("sqlite_baseline.py")
GOALS = {  # at 100,000 issues
    "command": 0.150, "command MB": 100, "show": 0.100, "find": 0.150, "save p95": 0.002, "app save": 0.050,
    "disk": 1.5, "backup": 0.5, "fill": 30.0, "fill MB": 300, "pull 10": 0.300, "pull all": 8.0,
}


def cache_dir(size: int, seed: int = 2026) -> Path:
    return CACHE_DIR / f"register-{size}-{seed}"


def timed_process(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak resident MB and stdout of a cold child process."""
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr[-1500:]}")
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    return wall, peak_kib / 1024, done.stdout


def ensure_register(size: int, seed: int = 2026) -> dict[str, float]:
    """The cached register of ``size`` demo issues (built once), and what building it cost."""
    folder = cache_dir(size, seed)
    home = folder / "fieldkit"
    figures = folder / "build.json"
    if (home / "register.sqlite").exists() and figures.exists():
        return json.loads(figures.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = cold_env(FIELDKIT_HOME=str(home), FIELDKIT_STATE=str(folder / "state"))
    wall, peak, _ = timed_process([PYTHON, "-m", "fieldkit", "demo", "--issues", str(size), "--seed", str(seed)], env)
    built = {"demo s": wall, "demo MB": peak}
    records = folder / "records.jsonl"
    with open(records, "w", encoding="utf-8") as out:
        sys.path.insert(0, str(ROOT))
        from fieldkit.store import Store

        with Store(home) as store:
            for kind in ("issue", "note", "action", "status_change"):
                for record_id, values, _ in store.iter_kind(kind):
                    out.write(json.dumps([kind, values]) + "\n")
    wall, peak, _ = timed_process([PYTHON, str(BASELINE), "build", str(folder / "baseline.sqlite"), str(records)], cold_env())
    built.update({"baseline build s": wall})
    figures.write_text(json.dumps(built))
    return built


def work_copy(size: int, seed: int, name: str) -> tuple[Path, Path]:
    source = cache_dir(size, seed)
    work = CACHE_DIR / "work" / f"{name}-{size}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copytree(source / "fieldkit", work / "fieldkit")
    shutil.copy2(source / "baseline.sqlite", work / "baseline.sqlite")
    return work / "fieldkit", work / "baseline.sqlite"


def median_run(cmd: list[str] | list[list[str]], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median wall and worst peak of ``runs`` cold runs (a list of commands: one a run)."""
    walls, peaks = [], []
    for run in range(runs):
        wall, peak, _ = timed_process(cmd[run] if isinstance(cmd[0], list) else cmd, env)  # type: ignore[arg-type]
        walls.append(wall)
        peaks.append(peak)
    return statistics.median(walls), max(peaks)


def measure_commands(size: int, seed: int, runs: int) -> dict[str, tuple[float, float, float, float]]:
    """Each command: (fieldkit wall, fieldkit MB, sqlite wall, sqlite MB)."""
    home, baseline = work_copy(size, seed, "commands")
    env = cold_env(FIELDKIT_HOME=str(home), FIELDKIT_STATE=str(home.parent / "state"))
    sys.path.insert(0, str(ROOT))
    from fieldkit.store import Store

    with Store(home) as store:
        lines = list(store.issue_lines())
    rows = [line.split("\t") for line in lines]
    row = rows[len(rows) // 3]
    ref, municipality = row[1], row[2]
    new_refs = [r[1] for r in rows if r[10] == "new"][:runs]
    fk = [PYTHON, "-m", "fieldkit"]
    base = [PYTHON, str(BASELINE)]
    cases = {
        "add": (fk + ["add", "--municipality", "BUF", "--sector", "water", "--title", "Burst main on Oxford Street", "--ward", "12"], ["add"]),
        "note": (fk + ["note", ref, "Met the technical manager on site"], ["note"]),
        "status": ([fk + ["status", new, "acknowledged"] for new in new_refs], ["status"]),
        "edit": (fk + ["edit", ref, "--severity", "critical"], ["edit"]),
        "action": (fk + ["action", ref, "Get a written repair plan", "--due", "2026-12-20"], ["action"]),
        "show": (fk + ["show", ref], ["show"]),
        "find text": (fk + ["find", "burst"], ["text", "burst"]),
        "find filter": (fk + ["find", "--municipality", municipality, "--status", "new"], ["filter", f"{municipality}:new"]),
        "find reference": (fk + ["find", ref], ["ref", ref]),
    }
    found = {}
    for name, (ours, theirs) in cases.items():
        wall, peak = median_run(ours, env, runs)
        base_wall, base_peak = median_run(base + [theirs[0], str(baseline), *theirs[1:]], cold_env(), runs)
        found[name] = (wall, peak, base_wall, base_peak)
    shutil.rmtree(home.parent, ignore_errors=True)
    return found


def child_saves(home: str, count: int) -> None:
    """A long-lived register with its index loaded, as in the app: ``count`` edits spread over it."""
    from fieldkit.register import Register

    register = Register.open(home, author="Bench")
    rows = register.find()
    rng = random.Random(5)
    times = []
    for n in range(count):
        target = rows[rng.randrange(len(rows))]
        start = time.perf_counter()
        register.edit_issue(target.id, {"responsible": f"Technical services {n}"})
        times.append(time.perf_counter() - start)
    register.close()
    print(json.dumps(times))


def baseline_saves(path: str, count: int) -> list[float]:
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    ids = [r[0] for r in conn.execute("SELECT id FROM issue")]
    rng = random.Random(5)
    times = []
    for n in range(count):
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        issue_id = ids[rng.randrange(len(ids))]
        doc = json.loads(conn.execute("SELECT doc FROM issue WHERE id = ?", (issue_id,)).fetchone()[0])
        doc["responsible"] = f"Technical services {n}"
        conn.execute("UPDATE issue SET doc = ? WHERE id = ?", (json.dumps(doc), issue_id))
        conn.execute("INSERT INTO outbox VALUES (?, ?)", (f"op-{n}", json.dumps({"id": issue_id, "fields": {"responsible": doc["responsible"]}})))
        conn.execute("COMMIT")
        times.append(time.perf_counter() - start)
    conn.close()
    return times


def measure_saves(size: int, seed: int, count: int) -> dict[str, float]:
    home, baseline = work_copy(size, seed, "saves")
    done = subprocess.run([PYTHON, __file__, "--_child", "saves", str(home), str(count)],
                          env=cold_env(FIELDKIT_STATE=str(home.parent / "state")), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    ours = json.loads(done.stdout.strip().splitlines()[-1])
    theirs = baseline_saves(str(baseline), count)
    shutil.rmtree(home.parent, ignore_errors=True)
    return {
        "p95": percentile(ours, 95), "p99.9": percentile(ours, 99.9), "max": max(ours),
        "base p95": percentile(theirs, 95), "base p99.9": percentile(theirs, 99.9), "base max": max(theirs),
    }


def measure_disk(size: int, seed: int) -> dict[str, float]:
    home, baseline = work_copy(size, seed, "disk")
    env = cold_env(FIELDKIT_HOME=str(home), FIELDKIT_STATE=str(home.parent / "state"))
    store_bytes = tree_bytes(home)
    wall, peak, _ = timed_process([PYTHON, "-m", "fieldkit", "backup"], env)
    backup = next((home / "backups").glob("backup-*.sqlite.gz"))
    found = {"unsynced": store_bytes, "baseline": baseline.stat().st_size, "backup": backup.stat().st_size,
             "backup s": wall, "backup MB": peak, "folder with backup": tree_bytes(home)}
    synced = ("from fieldkit.register import Register\n"
              "r = Register.open(__import__('sys').argv[1])\n"
              "r.acknowledge([op['op_id'] for op in r.pending_ops()])\n")
    subprocess.run([PYTHON, "-c", synced, str(home)], env=env, check=True)
    found["store"] = tree_bytes(home, skip=["backups"])
    shutil.rmtree(home.parent, ignore_errors=True)
    return found


def measure_import(size: int) -> dict[str, float]:
    work = CACHE_DIR / "work" / f"import-{size}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    sheet = work / "register.csv"
    rng = random.Random(3)
    municipalities = ["BUF", "EC121", "NMA", "TSH", "JHB", "ETH", "WC011", "NC084"]
    with open(sheet, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["municipality", "sector", "title", "ward", "severity", "description"])
        for n in range(size):
            writer.writerow([rng.choice(municipalities), rng.choice(["water", "roads", "sanitation", "electricity"]),
                             f"Imported issue {n} near the clinic", rng.randint(1, 30), rng.choice(["low", "medium", "high"]),
                             "Reported by the ward committee; the community has waited two weeks."])
    env = cold_env(FIELDKIT_HOME=str(work / "fieldkit"), FIELDKIT_STATE=str(work / "state"))
    wall, peak, _ = timed_process([PYTHON, "-m", "fieldkit", "import", str(sheet)], env)
    subprocess.run([PYTHON, str(BASELINE), "build", str(work / "baseline.sqlite"), os.devnull], check=True)
    base_wall, base_peak, _ = timed_process([PYTHON, str(BASELINE), "import", str(work / "baseline.sqlite"), str(size)], cold_env())
    shutil.rmtree(work, ignore_errors=True)
    return {"s": wall, "MB": peak, "base s": base_wall, "base MB": base_peak}


def child_pull(home: str, source: str, count: int) -> None:
    """The laptop's side of a pull: pages of operations merged, the cursor moved, a page a write."""
    from fieldkit.protocol import state_ops
    from fieldkit.register import Register
    from fieldkit.store import Store

    with Store(source) as store:
        ops = []
        for kind in ("issue", "status_change", "note", "action"):
            for record_id, values, packed in store.iter_kind(kind):
                from fieldkit.merge import unpack_state

                ops.extend(state_ops(kind, record_id, unpack_state(packed or {}, values), "0123456789abcdef"))
                if count and len(ops) >= count:
                    break
            if count and len(ops) >= count:
                break
    if count:
        for op in ops:
            op["fields"] = {"responsible": "Changed on another laptop"} if op["type"] == "issue" else op["fields"]
    start = time.perf_counter()
    register = Register.open(home, author="Bench")
    for page in range(0, len(ops), 1000):
        register.apply_remote(ops[page:page + 1000], {"cursor": page})
    register.close()
    print(json.dumps({"s": time.perf_counter() - start, "ops": len(ops)}))


def measure_pull(size: int, seed: int) -> dict[str, float]:
    home, baseline = work_copy(size, seed, "pull")
    source = str(cache_dir(size, seed) / "fieldkit")
    env = cold_env(FIELDKIT_STATE=str(home.parent / "state"))
    wall10, peak10, out10 = timed_process([PYTHON, __file__, "--_child", "pull", str(home), source, "10"], env)
    empty = home.parent / "new-laptop"
    wall_all, peak_all, out_all = timed_process([PYTHON, __file__, "--_child", "pull", str(empty), source, "0"], env)
    base10, base_peak10, _ = timed_process([PYTHON, str(BASELINE), "pull", str(baseline), "10"], cold_env())
    fresh = home.parent / "fresh.sqlite"
    records = cache_dir(size, seed) / "records.jsonl"
    base_all, base_peak_all, _ = timed_process([PYTHON, str(BASELINE), "build", str(fresh), str(records)], cold_env())
    shutil.rmtree(home.parent, ignore_errors=True)
    return {"10 s": wall10, "10 MB": peak10, "all s": wall_all, "all MB": peak_all, "all ops": json.loads(out_all)["ops"],
            "base 10 s": base10, "base 10 MB": base_peak10, "base all s": base_all, "base all MB": base_peak_all}


def mark(value: float, goal_key: str, size: int, largest: int) -> str:
    if size != largest:
        return ""
    return " ✓" if value <= GOALS[goal_key] else " ✗"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds >= 0.0095 else f"{seconds * 1000:.2f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--runs", type=int, default=5, help="cold runs of each command (median)")
    parser.add_argument("--saves", type=int, default=10000, help="steady saves in one process")
    parser.add_argument("--_child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        what, *rest = args._child
        sys.path.insert(0, str(ROOT))
        if what == "saves":
            child_saves(rest[0], int(rest[1]))
        elif what == "pull":
            child_pull(rest[0], rest[1], int(rest[2]))
        return 0

    sizes = [int(s) for s in args.sizes.split(",")]
    largest = max(sizes)
    print_machine(machine_info(["tinydb", "orjson"]))
    header = ["", *[f"{size:,} fieldkit" for size in sizes], *[f"{size:,} sqlite3" for size in sizes]]
    columns: dict[int, dict] = {}
    for size in sizes:
        print(f"-- {size:,} issues", file=sys.stderr, flush=True)
        built = ensure_register(size, args.seed)
        columns[size] = {
            "built": built,
            "commands": measure_commands(size, args.seed, args.runs),
            "saves": measure_saves(size, args.seed, min(args.saves, size)),
            "disk": measure_disk(size, args.seed),
            "import": measure_import(size),
            "pull": measure_pull(size, args.seed),
        }
    rows = []

    def row(label: str, ours, theirs) -> None:
        rows.append([label, *[ours(columns[s], s) for s in sizes], *[theirs(columns[s], s) for s in sizes]])

    for name in ("add", "note", "status", "edit", "action", "show", "find text", "find filter", "find reference"):
        goal = "show" if name == "show" else "find" if name.startswith("find") else "command"
        row(f"`{name}` in a terminal (wall)",
            lambda c, s, n=name, g=goal: ms(c["commands"][n][0]) + mark(c["commands"][n][0], g, s, largest),
            lambda c, s, n=name: ms(c["commands"][n][2]))
        row(f"`{name}` peak memory",
            lambda c, s, n=name: f"{c['commands'][n][1]:.0f} MB" + mark(c["commands"][n][1], "command MB", s, largest),
            lambda c, s, n=name: f"{c['commands'][n][3]:.0f} MB")
    row("save in a long-lived register, p95", lambda c, s: ms(c["saves"]["p95"]) + mark(c["saves"]["p95"], "save p95", s, largest),
        lambda c, s: ms(c["saves"]["base p95"]))
    row("save, p99.9", lambda c, s: ms(c["saves"]["p99.9"]) + mark(c["saves"]["p99.9"], "app save", s, largest),
        lambda c, s: ms(c["saves"]["base p99.9"]))
    row("save, worst", lambda c, s: ms(c["saves"]["max"]), lambda c, s: ms(c["saves"]["base max"]))
    row("folder on disk, outbox full (before a sync)",
        lambda c, s: f"{fmt_bytes(c['disk']['unsynced'])} ({c['disk']['unsynced'] / c['disk']['baseline']:.2f}x)",
        lambda c, s: fmt_bytes(c["disk"]["baseline"]))
    row("folder on disk, synced",
        lambda c, s: f"{fmt_bytes(c['disk']['store'])} ({c['disk']['store'] / c['disk']['baseline']:.2f}x)"
        + mark(c["disk"]["store"] / c["disk"]["baseline"], "disk", s, largest),
        lambda c, s: fmt_bytes(c["disk"]["baseline"]))
    row("one backup (share of the store)",
        lambda c, s: f"{fmt_bytes(c['disk']['backup'])} ({c['disk']['backup'] / c['disk']['unsynced']:.2f}x)"
        + mark(c["disk"]["backup"] / c["disk"]["unsynced"], "backup", s, largest),
        lambda c, s: "")
    row("`fieldkit backup` (wall, peak)", lambda c, s: f"{c['disk']['backup s']:.2f} s, {c['disk']['backup MB']:.0f} MB", lambda c, s: "")
    row("`fieldkit demo` (wall, peak)",
        lambda c, s: f"{c['built']['demo s']:.1f} s, {c['built']['demo MB']:.0f} MB" + mark(c["built"]["demo s"], "fill", s, largest),
        lambda c, s: f"{c['built']['baseline build s']:.1f} s (load)")
    row("import of a CSV (wall, peak)",
        lambda c, s: f"{c['import']['s']:.1f} s, {c['import']['MB']:.0f} MB" + mark(c["import"]["s"], "fill", s, largest),
        lambda c, s: f"{c['import']['base s']:.1f} s, {c['import']['base MB']:.0f} MB")
    row("pull 10 changes into a full laptop",
        lambda c, s: f"{ms(c['pull']['10 s'])}, {c['pull']['10 MB']:.0f} MB" + mark(c["pull"]["10 s"], "pull 10", s, largest),
        lambda c, s: f"{ms(c['pull']['base 10 s'])}, {c['pull']['base 10 MB']:.0f} MB")
    row("pull everything into a new laptop",
        lambda c, s: f"{c['pull']['all s']:.1f} s, {c['pull']['all MB']:.0f} MB ({c['pull']['all ops']:,} ops)" + mark(c["pull"]["all s"], "pull all", s, largest),
        lambda c, s: f"{c['pull']['base all s']:.1f} s, {c['pull']['base all MB']:.0f} MB")
    table = markdown_table(header, rows)
    print(table)
    results = CACHE_DIR / "results"
    results.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (results / f"store-{stamp}.md").write_text(table + "\n")
    (results / f"store-{stamp}.json").write_text(json.dumps(columns, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
