"""Key-to-echo in the capture form: from a key reaching the app to the frame that shows it.

A script, not a test: run it on an otherwise idle machine and read the table.

    python bench/bench_key_echo.py                    # a 100,000-issue demo register (built once, cached in bench/.cache)
    python bench/bench_key_echo.py --issues 2000      # a smaller one

The real ``FieldkitApp`` runs headless at 100x30 on a copy of the register. ``n`` opens the capture
form; the title is typed one key at a time, each key handed to the app as the terminal driver hands
it (not through Pilot, whose fixed ~60 ms a key would swamp the figure). A key's echo is the first
frame the app composes (``App._display``) once the title box holds that key: what a person sees.

Also counted, per key: how often the screen was laid out again (``Screen._refresh_layout``), which
is what made typing cost 25-70 ms a key (the target is one frame: under 16 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's fieldkit, not an installed one

from _common import machine_info, markdown_table, percentile, print_machine  # noqa: E402

TYPED = "Burst bulk main on Oxford Street next to the taxi rank"
SIZE = (100, 30)
MY_MUNICIPALITIES = ["BUF", "EC121", "EC122", "EC441"]


def register_home(issues: int) -> Path:
    """A copy the app may write to of a demo register with ``issues`` issues (built once, cached)."""
    from _common import CACHE_DIR

    from fieldkit.register import Register

    built = CACHE_DIR / f"key-echo-{issues}"
    if not (built / "done").exists():
        shutil.rmtree(built, ignore_errors=True)
        from fieldkit.demo import load_demo

        print(f"building a {issues:,}-issue demo register in {built} (once; minutes at 100,000) ...", flush=True)
        register = Register.open(built, author="Bench Facilitator")
        load_demo(register, issues=issues)
        register.acknowledge([op["op_id"] for op in register.pending_ops()])  # as after a sync: nothing waits
        register.save_settings(name="Bench Facilitator", municipalities=MY_MUNICIPALITIES, first_run_done=True)
        register.close()
        (built / "done").write_text("built\n")
    work = Path(tempfile.mkdtemp(prefix="fieldkit-key-echo-"))
    shutil.copytree(built, work, dirs_exist_ok=True, ignore=shutil.ignore_patterns("backups"))  # the store's safety copies: gigabytes, not needed
    return work


async def measure(home: Path) -> dict[str, list[float]]:
    from textual import events
    from textual.screen import Screen

    from fieldkit.app import FieldkitApp
    from fieldkit.register import Register

    echoes: list[float] = []
    layouts: list[float] = []
    register = Register.open(home)

    class Timed(FieldkitApp):
        waiting_for: str | None = None
        echoed = asyncio.Event()

        def _display(self, screen, renderable) -> None:
            super()._display(screen, renderable)
            if renderable is not None and self.waiting_for is not None and self.screen.focused is not None \
                    and getattr(self.screen.focused, "value", "").endswith(self.waiting_for):
                self.waiting_for = None
                self.echoed.set()

    laid_out = 0
    original = Screen._refresh_layout

    def counting(self, *args, **kwargs):
        nonlocal laid_out
        laid_out += 1
        return original(self, *args, **kwargs)

    Screen._refresh_layout = counting
    app = Timed(register)
    try:
        async with app.run_test(size=SIZE) as pilot:
            from fieldkit.screens.capture import CaptureScreen

            while app.started_in_ms is None:  # the dashboard is up: the app takes keys
                await pilot.pause(0.1)
            await app.workers.wait_for_complete()
            while not isinstance(app.screen, CaptureScreen):
                await pilot.press("n")
                await pilot.pause(0.5)
            form = app.screen
            form.query_one("#title").focus()
            await pilot.pause(0.3)
            typed = ""
            for character in TYPED:
                typed += character
                app.echoed.clear()
                app.waiting_for = typed
                before = laid_out
                key = events.Key("space" if character == " " else character, character)
                key.set_sender(app)
                started = time.perf_counter()
                app._driver.send_message(key)
                await asyncio.wait_for(app.echoed.wait(), 5)
                echoes.append((time.perf_counter() - started) * 1000)
                layouts.append(laid_out - before)
                await asyncio.sleep(0.12)  # a typist's pace: the form's timers run between keys, as they do by hand
            assert form.query_one("#title").value == TYPED
            await pilot.press("ctrl+q")
    finally:
        Screen._refresh_layout = original
        register.close()
    return {"echo": echoes, "layouts": layouts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=100_000, help="issues in the demo register")
    parser.add_argument("--runs", type=int, default=3, help="times the title is typed (a fresh app each time)")
    args = parser.parse_args(argv)

    print_machine(machine_info(["textual"]))
    home = register_home(args.issues)
    try:
        echoes: list[float] = []
        layouts: list[float] = []
        for _ in range(args.runs):
            result = asyncio.run(measure(home))
            echoes += result["echo"]
            layouts += result["layouts"]
    finally:
        shutil.rmtree(home, ignore_errors=True)
    rows = [[f"{args.issues:,}", f"{len(echoes)}", f"{statistics.median(echoes):.1f}", f"{percentile(echoes, 90):.1f}",
             f"{max(echoes):.1f}", f"{statistics.mean(layouts):.2f}"]]
    print()
    print(markdown_table(["issues", "keys", "echo median ms", "p90 ms", "max ms", "layouts a key"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
