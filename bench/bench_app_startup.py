"""How fast the field app is up, and how the register list compares with Textual's DataTable.

A script, not a test: run it on an otherwise idle machine and read the table.

    python bench/bench_app_startup.py              # empty store and 100,000 issues, 3 cold starts each
    python bench/bench_app_startup.py --runs 5 --datatable-rows 100000   # the DataTable baseline at full size (~30 s a run)

Each start is a new interpreter (bytecode cached, as an install has it), running the real
``FieldkitApp`` headless at 100x30 on a copy of the store. Measured from spawning the process:

- **dashboard**: the dashboard's issue figures are on screen and the keyboard works (the
  target: under 1.5 s with 100,000 issues);
- **follow-ups / chart**: the rest of the dashboard filled in, in the background;
- **register list**: ``r`` pressed right after the dashboard, until the 100,000 rows are shown;
- **search**: "burst main" typed one key at a time; for each key, until its answer is shown
  (includes the 80 ms typing pause) and the time the question itself took (the first key
  asks the whole register; each later key filters the previous answer).

The baseline puts the same register's rows in a ``DataTable`` (what the list would be
without the Line API), in a process of its own.

The 100,000-issue register is the one ``bench/bench_store.py`` builds and caches in
``bench/.cache/register-100000-2026/`` (``fieldkit demo``: about a minute the first time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import CACHE_DIR, PYTHON, cold_env, fmt_seconds, machine_info, markdown_table, print_machine  # noqa: E402

WORK = CACHE_DIR / "app-startup"
MY_MUNICIPALITIES = ["BUF", "EC121", "EC122", "EC441"]
SIZE = (100, 30)
SEARCH = "burst main"  # typed one key at a time, as a person does


def work_copy(source: Path | None, name: str) -> Path:
    """A copy of the register the app may write to."""
    dest = WORK / name
    if dest.exists():
        shutil.rmtree(dest)
    if source is not None:
        shutil.copytree(source, dest)
    else:
        dest.mkdir(parents=True)
    from fieldkit.register import Register

    register = Register.open(dest, author="Bench Facilitator")
    register.save_settings(name="Bench Facilitator", municipalities=MY_MUNICIPALITIES, first_run_done=True)
    register.close()
    return dest


# -- the child processes -------------------------------------------------------------------


def child_app(home: str, spawned: float, measure_list: bool) -> None:
    """Run the real app headless; print the moments (seconds since spawn) as JSON."""
    from fieldkit.app import FieldkitApp
    from fieldkit.register import Register
    from fieldkit.screens.dashboard import DashboardScreen
    from fieldkit.screens.register import RegisterScreen

    moments: dict[str, float] = {"imported": time.time() - spawned}

    class Timed(FieldkitApp):
        def on_dashboard_screen_ready(self) -> None:
            moments["dashboard"] = time.time() - spawned
            super().on_dashboard_screen_ready()
            self.run_worker(self.follow_on(), exclusive=True)

        async def follow_on(self) -> None:
            dashboard = self.screen
            assert isinstance(dashboard, DashboardScreen)
            while dashboard.follow_ups is None:
                await asyncio.sleep(0.005)
            moments["follow-ups"] = time.time() - spawned
            if measure_list:
                pressed = time.time()
                await self.switch_mode("register")
                screen = self.screen
                assert isinstance(screen, RegisterScreen)
                while not screen.issues.rows:
                    await asyncio.sleep(0.005)
                moments["register list"] = time.time() - pressed
                moments["rows"] = len(screen.issues.rows)
                search = screen.query_one("#search")
                for typed_so_far in (SEARCH[:n] for n in range(1, len(SEARCH) + 1)):
                    typed = time.time()
                    search.value = typed_so_far
                    while not (screen._answer and screen._answer[0].text == typed_so_far):
                        await asyncio.sleep(0.002)
                    key = "first key" if len(typed_so_far) == 1 else f"key {len(typed_so_far)}"
                    moments[f"{key} shown"] = time.time() - typed
                    moments[f"{key} in index"] = screen.last_search_ms / 1000
                moments["matches"] = len(screen.issues.rows)
            self.exit()

    register = Register.open(home)
    app = Timed(register)
    app.run(headless=True, size=SIZE)
    register.close()
    print(json.dumps(moments))


def child_datatable(home: str, spawned: float, rows: int) -> None:
    """The baseline: the register's rows in Textual's DataTable, until the table is painted."""
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    from fieldkit.register import Register

    register = Register.open(home)
    found = register.find()[:rows]
    moments: dict[str, float] = {"loaded": time.time() - spawned, "rows": len(found)}

    class Table(App):
        def compose(self) -> ComposeResult:
            yield DataTable()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns("Reference", "Severity", "Status", "Munic.", "Ward", "Sector", "Title")
            table.add_rows((r.ref, r.severity, r.status, r.municipality, r.ward or "", r.sector, r.title) for r in found)
            self.call_after_refresh(self.painted)

        def painted(self) -> None:
            moments["table shown"] = time.time() - spawned
            self.exit()

    Table().run(headless=True, size=SIZE)
    register.close()
    print(json.dumps(moments))


# -- the parent ------------------------------------------------------------------------------


def run_child(*args: str) -> dict[str, float]:
    spawned = time.time()
    done = subprocess.run([PYTHON, __file__, "--_child", *args, repr(spawned)], env=cold_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def median(runs: list[dict[str, float]], key: str) -> float | None:
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else None


def later(runs: list[dict[str, float]], what: str, worst: bool = False) -> float | None:
    """The typical (or worst) time of the keys after the first, over all runs."""
    values = [v for r in runs for k, v in r.items() if k.startswith("key ") and k.endswith(what)]
    if not values:
        return None
    return max(values) if worst else statistics.median(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="cold starts per case (median reported)")
    parser.add_argument("--size", type=int, default=100_000, help="issues in the big register")
    parser.add_argument("--datatable-rows", type=int, default=10_000, help="rows in the DataTable baseline")
    args = parser.parse_args(argv)

    from bench_store import cache_dir, ensure_register

    print_machine(machine_info(["textual", "tinydb"]))
    ensure_register(args.size, 2026)
    big = cache_dir(args.size, 2026) / "fieldkit"
    cases = [("empty store", work_copy(None, "empty"), False), (f"{args.size:,} issues", work_copy(big, "big"), True)]

    results: dict[str, list[dict[str, float]]] = {}
    for label, home, measure_list in cases:
        results[label] = [run_child("app", str(home), str(measure_list)) for _ in range(args.runs)]
        print(f"{label}: {results[label]}", flush=True)
    baseline = [run_child("datatable", str(cases[1][1]), str(args.datatable_rows)) for _ in range(max(1, args.runs // 2))]
    print(f"DataTable: {baseline}", flush=True)

    empty, full = results["empty store"], results[f"{args.size:,} issues"]
    rows = [
        ["process start to interactive dashboard", fmt_seconds(median(empty, "dashboard")), fmt_seconds(median(full, "dashboard")),
         "target under 1.5 s"],
        ["... follow-up actions filled in", fmt_seconds(median(empty, "follow-ups")), fmt_seconds(median(full, "follow-ups")), "in the background"],
        ["register list: r to rows shown", "–", fmt_seconds(median(full, "register list")),
         f"DataTable with {int(median(baseline, 'rows') or 0):,} rows: {fmt_seconds(median(baseline, 'table shown'))} from process start "
         f"({fmt_seconds(median(baseline, 'loaded'))} of it loading)"],
        [f"search, first key ('{SEARCH[0]}'): typed to answer shown", "–", fmt_seconds(median(full, "first key shown")),
         f"includes the 80 ms typing pause; the register's own find {fmt_seconds(median(full, 'first key in index'))}"],
        [f"search, each later key of '{SEARCH}'", "–", fmt_seconds(later(full, "shown")),
         f"median over keys 2-{len(SEARCH)}; filtering the previous answer {fmt_seconds(later(full, 'in index'))} "
         f"(slowest {fmt_seconds(later(full, 'in index', worst=True))})"],
    ]
    print()
    print(markdown_table([f"{args.runs} cold starts, median", "empty store", f"{args.size:,} issues", "note / baseline"], rows))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--_child":
        kind, home, extra, spawned = sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
        if kind == "app":
            child_app(home, spawned, extra == "True")
        else:
            child_datatable(home, spawned, int(extra))
        sys.exit(0)
    sys.exit(main())
