"""What encryption at rest costs: the sealed register beside the plain one, in one run (issue 11's goals).

At 100,000 issues (the register ``bench_store.py`` builds and caches), two
copies: one as it is, one after ``fieldkit encrypt``. ``encrypt`` rebuilds its
file (VACUUM, so no free page keeps plain bytes), which packs every index page
full and makes the first saves after it split pages that a plain register's
saves do not; the plain copy is vacuumed too, so the two differ only by
encryption. Then, beside each other, taking turns so a busy machine weighs on
both alike, what a person meets:

- steady saves in a long-lived process with the index loaded, as in the app:
  median, p95, p99 and mean of up to 2,000 edits spread over the register
  (about one sealed save in 300 also folds the issues saved since into their
  sealed buckets: the mean carries those); and the time sealing, opening and
  folding take inside 1,000 such saves;
- ``fieldkit edit`` changing one issue, a cold process;
- cold ``fieldkit find`` processes (a common word, the word fewest issues
  hold, a word no issue holds, a filter, a reference; median of a few runs) in a login where ``fieldkit unlock`` was
  run: no passphrase, no key derivation;
- the same common-word find with the passphrase in FIELDKIT_PASSPHRASE (as a
  script without a session gives it: 0.2 s of scrypt each command) and with
  the register's key in a keyring (``fieldkit encrypt --remember``);
- unlocking (scrypt, 64 MiB), the folder on disk, and the one-off ``fieldkit
  encrypt`` of the whole register.

    python bench/bench_encryption.py                 # 100,000 issues, about 8 minutes
    python bench/bench_encryption.py --size 10000    # a quick look
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import CACHE_DIR, PYTHON, ROOT, cold_env, fmt_bytes, machine_info, markdown_table, percentile, print_machine, tree_bytes  # noqa: E402
from bench_store import cache_dir, ensure_register, timed_process  # noqa: E402

PASSPHRASE = "bench passphrase for the register"
GOALS = {"save": 0.10, "find": 0.25, "unlock": 0.5}


def copies(size: int, seed: int) -> tuple[Path, Path, float]:
    """A plain and a sealed copy of the cached register, both freshly vacuumed; and how long encrypting took."""
    work = CACHE_DIR / "work" / f"encryption-{size}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    plain, sealed = work / "plain", work / "sealed"
    shutil.copytree(cache_dir(size, seed) / "fieldkit", plain)
    shutil.copytree(cache_dir(size, seed) / "fieldkit", sealed)
    env = cold_env(FIELDKIT_HOME=str(sealed), FIELDKIT_STATE=str(work / "state"), FIELDKIT_PASSPHRASE=PASSPHRASE)
    wall, _, _ = timed_process([PYTHON, "-m", "fieldkit", "encrypt"], env)
    timed_process([PYTHON, "-m", "fieldkit", "encrypt", "--remember"], {**env, **keyring_env(sealed)})
    connection = sqlite3.connect(plain / "register.sqlite")
    connection.execute("VACUUM")  # as `fieldkit encrypt` leaves the sealed copy's pages
    connection.close()
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
    """Time spent sealing and opening (the codec, and folding the issues saved lately into their buckets) in each of ``count`` saves.

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

    codec.seal, codec.unseal = timed(codec.seal), timed(codec.unseal)
    sealed_lines.fold_if_due = timed(sealed_lines.fold_if_due)
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
    from fieldkit.encryption import unlock

    times = []
    for _ in range(runs):
        start = time.perf_counter()
        unlock(Path(home), PASSPHRASE)
        times.append(time.perf_counter() - start)
    print(json.dumps(times))


def child(home: Path, what: str, *rest: str) -> list[float]:
    env = cold_env(FIELDKIT_STATE=str(home.parent / "state"), FIELDKIT_PASSPHRASE=PASSPHRASE)
    done = subprocess.run([PYTHON, __file__, "--_child", what, str(home), *rest], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def keyring_env(home: Path) -> dict[str, str]:
    """A keyring chosen explicitly (a file, standing in for the OS keyring this machine does not have)."""
    return {"PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring", "XDG_DATA_HOME": str(home.parent / "keyring")}


def fieldkit(home: Path, *args: str, **env: str) -> float:
    """Wall seconds of ``fieldkit ARGS``, a cold process, as typed in a terminal of this login."""
    base = cold_env(FIELDKIT_HOME=str(home), FIELDKIT_STATE=str(home.parent / "state"), **env)
    if "FIELDKIT_PASSPHRASE" not in env:
        base.pop("FIELDKIT_PASSPHRASE", None)
    return timed_process([PYTHON, "-m", "fieldkit", *args], base)[0]


def cold_commands(home: Path, sealed: bool, words: dict[str, str], ref: str, municipality: str, edit: int) -> dict[str, float]:
    """One run of each cold command; for the sealed register, in an unlocked session, then without one."""
    if sealed:
        fieldkit(home, "unlock", FIELDKIT_PASSPHRASE=PASSPHRASE)
    found = {}
    for name, word in words.items():
        found[f"find, {name}"] = fieldkit(home, "find", word)
    found["find, filter"] = fieldkit(home, "find", "--municipality", municipality, "--status", "new")
    found["find, reference"] = fieldkit(home, "find", ref)
    found["edit (a command)"] = fieldkit(home, "edit", ref, "--responsible", f"Roads department {edit}")
    if sealed:
        fieldkit(home, "lock")
    found["find, common word, passphrase in FIELDKIT_PASSPHRASE"] = fieldkit(
        home, "find", words["common word"], FIELDKIT_PASSPHRASE=PASSPHRASE)
    found["find, common word, key in a keyring"] = fieldkit(home, "find", words["common word"], **keyring_env(home))
    return found


def search_words(lines: list[list[str]]) -> dict[str, str]:
    """A word many issues hold, the word fewest hold, and a place no issue names, from the register's own words."""
    counts = Counter(word for line in lines for word in set(re.findall(r"[a-z]{5,}", line[-1])))
    common = "burst" if counts.get("burst") else counts.most_common(20)[-1][0]
    rare = min(counts, key=lambda word: (counts[word], word))
    return {"common word": common, "least common word": rare, "word in no issue": "zwelitsha" if not counts.get("zwelitsha") else "qxzvelitsha"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--runs", type=int, default=5, help="cold runs of each command (median)")
    parser.add_argument("--saves", type=int, default=2000)
    parser.add_argument("--_child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        what, *rest = args._child
        sys.path.insert(0, str(ROOT))
        if what == "saves":
            child_saves(rest[0], int(rest[1]))
        elif what == "codec":
            child_codec(rest[0], int(rest[1]))
        elif what == "unlock":
            child_unlock(rest[0], int(rest[1]))
        return 0

    sys.path.insert(0, str(ROOT))
    from fieldkit import session
    from fieldkit.store import Store

    if not session.new_login():  # the bench's sessions are its own, and end with it
        print("This system keeps no unlocked sessions (no kernel keyring): nothing to measure here", file=sys.stderr)
        return 1
    print_machine(machine_info(["cryptography", "orjson"]))
    print(f"-- {args.size:,} issues: the cached register", file=sys.stderr, flush=True)
    ensure_register(args.size, args.seed)
    print("-- a plain and a sealed copy", file=sys.stderr, flush=True)
    plain, sealed, encrypt_s = copies(args.size, args.seed)
    with Store(plain) as store:
        lines = [line.split("\t") for line in store.issue_lines()]
    row = lines[len(lines) // 3]
    ref, municipality = row[1], row[2]
    words = search_words(lines)

    homes = {"plain": plain, "sealed": sealed}
    saves: dict[str, list[float]] = {"plain": [], "sealed": []}
    per_round = max(1, min(args.saves, args.size) // 4)
    print("-- saves, four rounds each, in turn", file=sys.stderr, flush=True)
    for _ in range(4):
        for name, home in homes.items():
            saves[name] += child(home, "saves", str(per_round))
    commands: dict[str, dict[str, list[float]]] = {"plain": {}, "sealed": {}}
    print("-- cold commands, in turn", file=sys.stderr, flush=True)
    for run in range(args.runs):
        for name, home in homes.items():
            for key, wall in cold_commands(home, name == "sealed", words, ref, municipality, run).items():
                commands[name].setdefault(key, []).append(wall)
    figures: dict[str, dict[str, float]] = {}
    for name, home in homes.items():
        figures[name] = {"save median": statistics.median(saves[name]), "save p95": percentile(saves[name], 95),
                         "save p99": percentile(saves[name], 99), "save mean, folds included": statistics.mean(saves[name]),
                         **{key: statistics.median(walls) for key, walls in commands[name].items()},
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
    for key, goal in (("save median", GOALS["save"]), ("save p95", GOALS["save"]), ("save p99", None),
                      ("save mean, folds included", None),
                      ("edit (a command)", None),
                      ("find, common word", GOALS["find"]), ("find, least common word", GOALS["find"]),
                      ("find, word in no issue", GOALS["find"]),
                      ("find, filter", GOALS["find"]), ("find, reference", GOALS["find"]),
                      ("find, common word, passphrase in FIELDKIT_PASSPHRASE", None),
                      ("find, common word, key in a keyring", None)):
        table.append([key, ms(figures["plain"][key]), ms(figures["sealed"][key]), cost(key, goal)])
    table.append(["folder (without backups)", fmt_bytes(figures["plain"]["folder"]), fmt_bytes(figures["sealed"]["folder"]),
                  cost("folder", None)])
    table.append(["encryption's own time in a save", "—", f"{codec_s * 1e6:.0f} µs of {ms(save_s)}",
                  f"{codec_s / (save_s - codec_s):+.0%}" + (" ✓" if codec_s / (save_s - codec_s) <= GOALS["save"] else " ✗")])
    table.append(["unlock with the passphrase (median of 5)", "—", ms(statistics.median(unlock)),
                  " ✓" if statistics.median(unlock) <= GOALS["unlock"] else " ✗"])
    table.append(["fieldkit encrypt (once)", "—", f"{encrypt_s:.1f} s", ""])
    print(f"\n{args.size:,} issues; goals: save ≤ +10%, cold find ≤ +25%, unlock ≤ 0.5 s. Both copies vacuumed. The 'find'\n"
          f"and 'edit' rows are cold `fieldkit` processes, the sealed ones in a login where `fieldkit unlock` was run\n"
          f"(words: '{words['common word']}', '{words['least common word']}', '{words['word in no issue']}'); the last two find rows are without a\n"
          "session: the passphrase from the environment (0.2 s of scrypt each command) or the key from a keyring\n"
          "(`encrypt --remember`; here keyrings.alt's file, chosen explicitly, standing in for an OS keyring).\n")
    print(markdown_table(["", "plain", "sealed", "cost"], table))
    shutil.rmtree(plain.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
