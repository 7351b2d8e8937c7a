"""The field app on a province's register: the first key after the dashboard, saves, and memory after a day's work.

The real app runs headless on a copy of the register ``bench_store.py``
caches (as ``fieldkit demo`` leaves it: every change still unsent). Each run
is a new process:

1. the dashboard appears; a key (``r``, the register) is pressed at once; the
   time until the register screen answers is the first key;
2. 50 issues spread over the register are opened (their screens pushed and
   popped) and each edited through the app's own register, timed;
3. the resident memory (VmRSS) then, and the peak (VmHWM).

Beside it, the same in a bare process holding only the register and its index
(no Textual), and a plain sqlite3 connection holding the same rows as Python
objects, so the app's own share is visible.

    python bench/bench_app_memory.py [--size 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import CACHE_DIR, PYTHON, ROOT, cold_env, machine_info, markdown_table, print_machine  # noqa: E402

WORK = CACHE_DIR / "app-memory"


def memory() -> dict[str, float]:
    found = {}
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                found[line.split(":")[0]] = int(line.split()[1]) / 1024
    return found


def child_app(home: str) -> None:
    from fieldkit.app import FieldkitApp
    from fieldkit.register import Register
    from fieldkit.screens.register import RegisterScreen

    moments: dict[str, float] = {}
    register = Register.open(home)

    class Timed(FieldkitApp):
        def on_dashboard_screen_ready(self) -> None:
            super().on_dashboard_screen_ready()
            moments["dashboard at"] = time.perf_counter()
            self.simulate_key("r")
            self.run_worker(self.day(), exclusive=True)

        async def day(self) -> None:
            while not isinstance(self.screen, RegisterScreen):
                await asyncio.sleep(0.001)
            moments["first key"] = time.perf_counter() - moments.pop("dashboard at")
            rows = await asyncio.to_thread(self.read, lambda r: r.find())  # under the app's lock, as its screens ask
            rng = random.Random(1)
            saves, shown = [], []
            for n in range(50):
                target = rows[rng.randrange(len(rows))]
                self.open_issue(target.id)
                await asyncio.sleep(0.05)
                saved = asyncio.Event()
                start = time.perf_counter()

                def edit(r, n=n, t=target.id):
                    began = time.perf_counter()
                    r.edit_issue(t, {"responsible": f"Technical services {n}"})
                    saves.append(time.perf_counter() - began)

                self.write(edit, lambda _: saved.set())  # the app's own way to save: a worker, under its register lock
                await saved.wait()
                shown.append(time.perf_counter() - start)
                await self.show_view("register")  # as `r` does: back to the list, the issue closed
                await asyncio.sleep(0.01)
            moments["save median"] = statistics.median(saves)
            moments["save worst"] = max(saves)
            moments["round trip median"] = statistics.median(shown)
            moments.update(memory())
            self.exit()

    Timed(register).run(headless=True, size=(100, 30))
    register.close()
    print(json.dumps(moments))


def child_register(home: str) -> None:
    """The register alone, as the app holds it: index rows built, the dashboard's lists read, 50 edits."""
    from fieldkit.register import Register

    register = Register.open(home)
    rows = register.find()
    register.overdue_actions()
    sum(1 for _ in register.all_status_changes())
    rng = random.Random(1)
    for n in range(50):
        target = rows[rng.randrange(len(rows))]
        register.issue(target.id)
        register.timeline(target.id)
        register.edit_issue(target.id, {"responsible": f"Technical services {n}"})
    print(json.dumps(memory()))
    register.close()


def child_sqlite(path: str) -> None:
    """The baseline: the same issues read from plain SQLite into Python objects, as a list would hold them."""
    import sqlite3

    conn = sqlite3.connect(path)
    rows = [json.loads(doc) for (doc,) in conn.execute("SELECT doc FROM issue")]
    print(json.dumps({**memory(), "rows": len(rows)}))


def run_child(*args: str) -> dict[str, float]:
    done = subprocess.run([PYTHON, __file__, "--_child", *args], env=cold_env(FIELDKIT_STATE=str(WORK / "state")),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    from bench_store import cache_dir, ensure_register

    print_machine(machine_info(["textual", "tinydb"]))
    ensure_register(args.size)
    source = cache_dir(args.size)
    runs: dict[str, list[dict[str, float]]] = {"app": [], "register": [], "sqlite": []}
    for _ in range(args.runs):
        for kind in ("app", "register"):
            home = WORK / kind
            shutil.rmtree(home, ignore_errors=True)
            shutil.copytree(source / "fieldkit", home)
            if kind == "app":
                sys.path.insert(0, str(ROOT))
                from fieldkit.register import Register

                with Register.open(home) as register:
                    register.save_settings(name="Bench", municipalities=["BUF", "EC121"], first_run_done=True)
            runs[kind].append(run_child(kind, str(home)))
        runs["sqlite"].append(run_child("sqlite", str(source / "baseline.sqlite")))

    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[kind])

    rows = [
        ["first key answered after the dashboard appears", f"{med('app', 'first key') * 1000:.0f} ms", "", "", "≤ 300 ms"],
        ["save from the app (median / worst of 50)",
         f"{med('app', 'save median') * 1000:.1f} / {max(r['save worst'] for r in runs['app']) * 1000:.1f} ms", "", "", "≤ 50 ms"],
        ["... key to the screens showing it (median)", f"{med('app', 'round trip median') * 1000:.0f} ms", "", "", ""],
        ["resident after opening and editing 50 issues", f"{med('app', 'VmRSS'):.0f} MB", f"{med('register', 'VmRSS'):.0f} MB",
         f"{med('sqlite', 'VmRSS'):.0f} MB", "≤ 400 MB"],
        ["peak resident", f"{med('app', 'VmHWM'):.0f} MB", f"{med('register', 'VmHWM'):.0f} MB", f"{med('sqlite', 'VmHWM'):.0f} MB", ""],
    ]
    print(markdown_table([f"{args.size:,} issues, {args.runs} runs, median", "the app", "register alone",
                          "sqlite3: every issue as a dict", "goal"], rows))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--_child":
        kind, target = sys.argv[2], sys.argv[3]
        sys.path.insert(0, str(ROOT))
        {"app": child_app, "register": child_register, "sqlite": child_sqlite}[kind](target)
        sys.exit(0)
    sys.exit(main())
