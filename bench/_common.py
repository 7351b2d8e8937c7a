"""Helpers shared by the benchmarks under bench/: the machine, timing, statistics, tables.

Standard library only, so a benchmark's cold child processes stay cheap to start.
Benchmarks are scripts, not tests: run them by hand, read the table, paste it in
docs/PERFORMANCE.md.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
CACHE_DIR = BENCH_DIR / ".cache"  # git-ignored: built stores, bytecode for cold runs, results

PYTHON = sys.executable


# -- the machine ---------------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_total() -> str:
    try:
        with open("/proc/meminfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "?"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def package_version(name: str) -> str:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001 - informational only
        return "?"


def machine_info(packages: Iterable[str] = ()) -> dict[str, str]:
    """What a reader needs to judge the figures: CPUs, CPU model, memory, Python, versions."""
    import sqlite3

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {
        "nproc": str(usable),
        "cpu": cpu_model(),
        "memory": memory_total(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()}",
        "sqlite": sqlite3.sqlite_version,
        "load average at start": load_average(),
    }
    for name in packages:
        info[name] = package_version(name)
    return info


def print_machine(info: dict[str, str]) -> None:
    print("Machine: " + "; ".join(f"{k} {v}" for k, v in info.items()), flush=True)


# -- timing and statistics -----------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: the smallest value with at least p% of the values at or below it."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "median": math.nan, "p95": math.nan, "max": math.nan}
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p95": percentile(values, 95),
        "max": max(values),
    }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def timed_cpu(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall time, this process's CPU time (user + system) and the result of ``fn()``.

    On a shared machine the wall time includes waiting for a CPU; the CPU time
    does not (nor does waiting for the disk, e.g. fsync).
    """
    cpu = time.process_time()
    start = time.perf_counter()
    result = fn()
    wall = time.perf_counter() - start
    return wall, time.process_time() - cpu, result


def repeat(
    fn: Callable[[int], Any],
    reps: int,
    budget_s: float,
    min_reps: int = 5,
    slow_call_s: float = 10.0,
    slow_reps: int = 3,
    cpu_times: list[float] | None = None,
) -> tuple[list[float], str]:
    """Time ``fn(i)`` up to ``reps`` times; returns the wall times and a note when capped.

    Stops early once ``budget_s`` is spent and ``min_reps`` are done, and after
    ``slow_reps`` calls when the first call takes more than ``slow_call_s``: a
    store that needs seconds a call gets a few samples, not hours of them.
    CPU times are appended to ``cpu_times`` when given.
    """
    times: list[float] = []
    spent = 0.0
    note = ""
    for i in range(reps):
        elapsed, cpu, _ = timed_cpu(lambda: fn(i))
        if cpu_times is not None:
            cpu_times.append(cpu)
        times.append(elapsed)
        spent += elapsed
        if times[0] > slow_call_s and len(times) >= slow_reps:
            note = f"capped at {len(times)} of {reps} (> {slow_call_s:.0f} s a call)"
            break
        if spent > budget_s and len(times) >= min_reps and len(times) < reps:
            note = f"capped at {len(times)} of {reps} ({budget_s:.0f} s budget)"
            break
    return times, note


# -- child processes ---------------------------------------------------------------------


def cold_env(**extra: str) -> dict[str, str]:
    """The environment for a 'cold' child: a new interpreter, with bytecode cached as an install has it.

    The dev environment sets PYTHONDONTWRITEBYTECODE, which would make every cold
    run recompile fieldkit from source; an installed fieldkit has its .pyc files.
    Bytecode goes to bench/.cache/pycache, not next to the sources.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(CACHE_DIR / "pycache")
    env.update(extra)
    return env


def run_wall(cmd: Sequence[str], env: dict[str, str] | None = None, cwd: str | os.PathLike | None = None) -> tuple[float, str]:
    """Wall time of a child process from spawn to exit, and its stdout; raises if it fails."""
    elapsed, _, out = run_timed(cmd, env, cwd)
    return elapsed, out


def run_timed(cmd: Sequence[str], env: dict[str, str] | None = None, cwd: str | os.PathLike | None = None) -> tuple[float, float, str]:
    """Wall time and CPU time (user + system) of a child process, and its stdout; raises if it fails."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return elapsed, cpu, done.stdout


def vm_hwm_kib() -> int:
    """This process's peak resident set (VmHWM), in KiB."""
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# -- files ---------------------------------------------------------------------------


def tree_bytes(path: Path, skip: Iterable[str] = ()) -> int:
    """Bytes of the regular files under ``path`` (a file counts once however many hard links it has)."""
    skipped = set(skip)
    seen: set[tuple[int, int]] = set()
    total = 0
    if path.is_file():
        return path.stat().st_size
    for folder, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d not in skipped]
        for name in files:
            st = os.lstat(os.path.join(folder, name))
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen.add(key)
            total += st.st_size
    return total


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


# -- formatting -------------------------------------------------------------------------


def fmt_seconds(seconds: float | None) -> str:
    """A duration in the unit a reader compares at a glance: µs, ms or s."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "–"
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s" if seconds < 100 else f"{seconds:.0f} s"


def fmt_bytes(count: float | None) -> str:
    if count is None:
        return "–"
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return "?"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])
