"""What encryption at rest costs: the sealed register beside the plain one, in one run (issue 11's goals).

At 100,000 issues (the register ``bench_store.py`` builds and caches), two
copies: one as it is, one after ``fieldkit encrypt``. Then, for each:

- steady saves in a long-lived process with the index loaded, as in the app
  (median and p95 of up to 2,000 edits, plain and sealed in turns), and the
  time sealing and opening take inside 1,000 such saves (steady saves are
  mostly an fsync, which a busy machine moves more than encryption does);
- a cold ``fieldkit find`` in a new process (text, filter, reference; median
  of a few runs), with the passphrase from FIELDKIT_PASSPHRASE as a script
  gives it, so the sealed figure includes unlocking;
- the same text lookup with the register's key taken from a keyring
  (``fieldkit encrypt --remember``): no key derivation;
- unlocking alone (scrypt, 64 MiB), the folder on disk, and the one-off
  ``fieldkit encrypt`` of the whole register.

    python bench/bench_encryption.py                 # 100,000 issues, about 5 minutes
    python bench/bench_encryption.py --size 10000    # a quick look
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import CACHE_DIR, PYTHON, ROOT, cold_env, fmt_bytes, machine_info, markdown_table, percentile, print_machine, tree_bytes  # noqa: E402
from bench_store import cache_dir, ensure_register, timed_process  # noqa: E402

PASSPHRASE = "bench passphrase for the register"
GOALS = {"save": 0.10, "find": 0.25, "unlock": 0.5}


def copies(size: int, seed: int) -> tuple[Path, Path, float]:
    """A plain and a sealed copy of the cached register; and how long encrypting took."""
    work = CACHE_DIR / "work" / f"encryption-{size}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    plain, sealed = work / "plain", work / "sealed"
    shutil.copytree(cache_dir(size, seed) / "fieldkit", plain)
    shutil.copytree(cache_dir(size, seed) / "fieldkit", sealed)
    env = cold_env(FIELDKIT_HOME=str(sealed), FIELDKIT_STATE=str(work / "state"), FIELDKIT_PASSPHRASE=PASSPHRASE)
    wall, _, _ = timed_process([PYTHON, "-m", "fieldkit", "encrypt"], env)
    timed_process([PYTHON, "-m", "fieldkit", "encrypt", "--remember"], {**env, **keyring_env(sealed)})
    return plain, sealed, wall


def child_saves(home: str, count: int) -> None:
    """Edits spread over a register whose index is loaded, as in the app."""
    from fieldkit.encryption import open_register

    register = open_register(home, author="Bench", ask=None)
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


def child_codec(home: str, count: int) -> None:
    """Time spent sealing and opening (the codec, and the bucket of lookup lines) in each of ``count`` saves.

    Steady saves are mostly an fsync whose time the machine's load moves a lot;
    this is the part encryption adds, measured inside the same saves.
    """
    from fieldkit.encryption import open_register
    from fieldkit.store import sealed_lines

    register = open_register(home, author="Bench", ask=None)
    codec, spent = register.store.codec, [0.0, 0]

    def timed(fn):
        def inner(*args, **kwargs):
            spent[1] += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[1] -= 1
                if spent[1] == 0:
                    spent[0] += time.perf_counter() - start
        return inner

    codec.seal, codec.unseal, sealed_lines.update = timed(codec.seal), timed(codec.unseal), timed(sealed_lines.update)
    rows = register.find()
    rng = random.Random(7)
    spent[0] = 0.0
    start = time.perf_counter()
    for n in range(count):
        register.edit_issue(rows[rng.randrange(len(rows))].id, {"responsible": f"Water services {n}"})
    total = time.perf_counter() - start
    register.close()
    print(json.dumps([spent[0] / count, total / count]))


def child_unlock(home: str, runs: int) -> None:
    from fieldkit.encryption import codec_for

    times = []
    for _ in range(runs):
        start = time.perf_counter()
        codec_for(Path(home), ask=lambda _: PASSPHRASE)
        times.append(time.perf_counter() - start)
    print(json.dumps(times))


def child_find(home: str, runs: int, municipality: str) -> None:
    """A fresh process's lookups once the key is unlocked: what the codec itself costs a cold find."""
    from fieldkit.encryption import codec_for
    from fieldkit.filters import IssueFilter
    from fieldkit.register import Register

    codec = codec_for(Path(home), ask=lambda _: PASSPHRASE)
    start = time.perf_counter()
    register = Register.open(home, codec=codec)
    register.find(IssueFilter(text="burst"))
    register.find(IssueFilter(municipalities=frozenset({municipality}), statuses=frozenset({"new"})))
    print(json.dumps([time.perf_counter() - start]))


def child(home: Path, what: str, *rest: str) -> list[float]:
    env = cold_env(FIELDKIT_STATE=str(home.parent / "state"), FIELDKIT_PASSPHRASE=PASSPHRASE)
    done = subprocess.run([PYTHON, __file__, "--_child", what, str(home), *rest], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def keyring_env(home: Path) -> dict[str, str]:
    """A keyring chosen explicitly (a file, standing in for the OS keyring this machine does not have)."""
    return {"PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring", "XDG_DATA_HOME": str(home.parent / "keyring")}


def cold_finds(home: Path, runs: int, ref: str, municipality: str) -> dict[str, float]:
    env = cold_env(FIELDKIT_HOME=str(home), FIELDKIT_STATE=str(home.parent / "state"), FIELDKIT_PASSPHRASE=PASSPHRASE)
    fk = [PYTHON, "-m", "fieldkit", "find"]
    found = {}
    for name, args in (("text", ["burst"]), ("filter", ["--municipality", municipality, "--status", "new"]), ("reference", [ref])):
        found[name] = statistics.median(timed_process(fk + args, env)[0] for _ in range(runs))
    from_keyring = cold_env(FIELDKIT_HOME=str(home), FIELDKIT_STATE=str(home.parent / "state"), **keyring_env(home))
    found["text, key in keyring"] = statistics.median(timed_process(fk + ["burst"], from_keyring)[0] for _ in range(runs))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--runs", type=int, default=5, help="cold runs of each find (median)")
    parser.add_argument("--saves", type=int, default=2000)
    parser.add_argument("--_child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        what, *rest = args._child
        sys.path.insert(0, str(ROOT))
        if what == "saves":
            child_saves(rest[0], int(rest[1]))
        elif what == "find":
            child_find(rest[0], 1, rest[1])
        elif what == "codec":
            child_codec(rest[0], int(rest[1]))
        elif what == "unlock":
            child_unlock(rest[0], int(rest[1]))
        return 0

    print_machine(machine_info(["cryptography", "orjson"]))
    print(f"-- {args.size:,} issues: the cached register", file=sys.stderr, flush=True)
    ensure_register(args.size, args.seed)
    print("-- a plain and a sealed copy", file=sys.stderr, flush=True)
    plain, sealed, encrypt_s = copies(args.size, args.seed)
    sys.path.insert(0, str(ROOT))
    from fieldkit.store import Store

    with Store(plain) as store:
        rows = [line.split("\t") for line in store.issue_lines()]
    row = rows[len(rows) // 3]
    ref, municipality = row[1], row[2]

    # Plain and sealed take turns, run by run, so a busy machine weighs on both alike.
    homes = {"plain": plain, "sealed": sealed}
    saves: dict[str, list[float]] = {"plain": [], "sealed": []}
    per_round = max(1, min(args.saves, args.size) // 4)
    print("-- saves, four rounds each, in turn", file=sys.stderr, flush=True)
    for _ in range(4):
        for name, home in homes.items():
            saves[name] += child(home, "saves", str(per_round))
    finds: dict[str, dict[str, list[float]]] = {"plain": {}, "sealed": {}}
    print("-- cold finds, in turn", file=sys.stderr, flush=True)
    for _ in range(args.runs):
        for name, home in homes.items():
            for key, wall in cold_finds(home, 1, ref, municipality).items():
                finds[name].setdefault(f"find {key}", []).append(wall)
            finds[name].setdefault("find unlocked", []).append(child(home, "find", municipality)[0])
    figures: dict[str, dict[str, float]] = {}
    for name, home in homes.items():
        figures[name] = {"save median": statistics.median(saves[name]), "save p95": percentile(saves[name], 95),
                         **{key: statistics.median(walls) for key, walls in finds[name].items()},
                         "folder": tree_bytes(home, skip=["backups"])}
    unlock = child(sealed, "unlock", "5")
    codec_s, save_s = child(sealed, "codec", str(min(1000, args.size)))

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.0095 else f"{seconds * 1000:.2f} ms"

    def cost(key: str, goal: float | None) -> str:
        ratio = figures["sealed"][key] / figures["plain"][key] - 1
        verdict = "" if goal is None else (" ✓" if ratio <= goal else " ✗")
        return f"{ratio:+.0%}{verdict}"

    table = []
    for key, goal in (("save median", GOALS["save"]), ("save p95", GOALS["save"]), ("find text", GOALS["find"]),
                      ("find filter", GOALS["find"]), ("find reference", GOALS["find"]),
                      ("find text, key in keyring", GOALS["find"]), ("find unlocked", GOALS["find"])):
        table.append([key, ms(figures["plain"][key]), ms(figures["sealed"][key]), cost(key, goal)])
    table.append(["folder (without backups)", fmt_bytes(figures["plain"]["folder"]), fmt_bytes(figures["sealed"]["folder"]),
                  cost("folder", None)])
    table.append(["encryption's own time in a save", "—", f"{codec_s * 1e6:.0f} µs of {ms(save_s)}",
                  f"{codec_s / (save_s - codec_s):+.0%}" + (" ✓" if codec_s / (save_s - codec_s) <= GOALS["save"] else " ✗")])
    table.append(["unlock (median of 5)", "—", ms(statistics.median(unlock)),
                  " ✓" if statistics.median(unlock) <= GOALS["unlock"] else " ✗"])
    table.append(["fieldkit encrypt (once)", "—", f"{encrypt_s:.1f} s", ""])
    print(f"\n{args.size:,} issues; goals: save ≤ +10%, cold find ≤ +25%, unlock ≤ 0.5 s. 'find text/filter/reference' are\n"
          "cold `fieldkit find` processes (the sealed ones include unlocking, about 0.2 s of scrypt); 'find unlocked' is a\n"
          "fresh process opening the register and answering a text and a filter lookup once the key is unlocked;\n"
          "'key in keyring' takes the register's key from a keyring (`encrypt --remember`; here keyrings.alt's file,\n"
          "chosen explicitly, standing in for an OS keyring).\n")
    print(markdown_table(["", "plain", "sealed", "cost"], table))
    shutil.rmtree(plain.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
