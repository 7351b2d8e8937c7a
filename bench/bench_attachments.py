"""Photos on issues (issue #12): attaching a phone photo, and syncing photos over a weak, cut link.

1. Attach: a ~5 MB phone photo (4000x3000 JPEG with EXIF date and GPS) from the call to the moment it
   is acknowledged on disk: original, reduced copy and thumbnail fsynced, the record committed.
   Goal: at most 0.5 s.
2. Sync: photos attached offline, then `sync` to a real `fieldkit serve` (SQLite) through a loopback
   proxy shaped to 1 Mbit/s each way that cuts every connection every 30 s. Counted: bytes the laptop
   sent through the proxy against the reduced copies' (and thumbnails') total, and whether every reduced
   copy arrived. Then the same originals sent whole, one request a file that starts again after a cut,
   as a naive client does, for the same time.

The issue's 200 photos / 800 MB would take hours at 1 Mbit/s; the default is 12 photos (a few minutes),
the same rates and cut interval (``--photos`` to change it). Run from the repository root:

    python bench/bench_attachments.py [--photos 12] [--rate 125000] [--cut-every 30]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from photo_files import phone_photo  # noqa: E402

from fieldkit.attachments import attach  # noqa: E402
from fieldkit.register import Register  # noqa: E402


class ShapedProxy:
    """TCP on loopback limited to ``rate`` bytes a second each way; every connection cut every ``cut_every`` s."""

    def __init__(self, target_port: int, rate: int, cut_every: float):
        self.target_port, self.rate, self.cut_every = target_port, rate, cut_every
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.up = 0
        self.cuts = 0
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._budget = {"up": [time.monotonic(), 0.0], "down": [time.monotonic(), 0.0]}
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()
        threading.Thread(target=self._cutter, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                return
            with self._lock:
                self._open += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, "up"), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, "down"), daemon=True).start()

    def _wait_for(self, direction: str, size: int) -> None:
        """A shared token bucket per direction: the link, not the connection, has the rate."""
        with self._lock:
            start, queued = self._budget[direction]
            now = time.monotonic()
            start = max(start, now - 0.05)
            finish = start + size / self.rate
            self._budget[direction] = [finish, queued]
        delay = finish - now
        if delay > 0:
            time.sleep(delay)

    def _pump(self, source: socket.socket, target: socket.socket, direction: str) -> None:
        while True:
            try:
                data = source.recv(8192)
            except OSError:
                data = b""
            if not data:
                for sock in (source, target):
                    try:
                        sock.close()
                    except OSError:
                        pass
                return
            self._wait_for(direction, len(data))
            try:
                target.sendall(data)
            except OSError:
                return
            if direction == "up":
                with self._lock:
                    self.up += len(data)

    def _cutter(self) -> None:
        while not self._closed:
            time.sleep(self.cut_every)
            with self._lock:
                doomed, self._open = self._open, []
                if doomed:
                    self.cuts += 1
            for sock in doomed:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
                except OSError:
                    pass

    def close(self) -> None:
        self._closed = True
        self.listener.close()


def bench_attach(work: Path, runs: int) -> list[float]:
    photos = [phone_photo(work / f"IMG_{n:04d}.jpg", quality=97, detail=100, seed=n) for n in range(runs)]
    times = []
    with Register.open(work / "laptop-attach", author="Bench") as register:
        issue_id = register.create_issue({"municipality": "BUF", "sector": "water", "title": "Burst main"})["id"]
        for photo in photos:
            start = time.perf_counter()
            attach(register, issue_id, photo, caption="Burst main")
            times.append(time.perf_counter() - start)
    size = statistics.mean(p.stat().st_size for p in photos) / 1e6
    print(f"attach a {size:.1f} MB phone photo (4000x3000): median {statistics.median(times):.3f} s, "
          f"max {max(times):.3f} s over {runs} — goal ≤ 0.5 s {'✓' if max(times) <= 0.5 else '✗'}")
    return times


def bench_sync(work: Path, count: int, rate: int, cut_every: float) -> None:
    import httpx

    from fieldkit.sync import sync
    from sync_fixtures import ServerProcess, add_user

    db_url = f"sqlite:///{work / 'central' / 'central.sqlite3'}"
    (work / "central").mkdir()
    from fieldkit.server.db import Database

    Database(db_url).migrate()
    token = add_user(db_url)
    server = ServerProcess(db_url, work / "central").start()
    try:
        laptop = Register.open(work / "laptop-sync", author="Bench")
        issue_id = laptop.create_issue({"municipality": "BUF", "sector": "water", "title": "Burst main"})["id"]
        assert sync(laptop, server.url, token).finished  # the issue is on the store; the photos come offline
        records = []
        for n in range(count):
            photo = phone_photo(work / f"sync_{n:04d}.jpg", quality=92, detail=40, seed=100 + n)
            records.append(attach(laptop, issue_id, photo).record)
        blobs = laptop.store.blobs
        reduced = sum(r["reduced_size"] for r in records)
        thumbs = sum(len(blobs.get(r["thumb_sha256"])) for r in records)
        originals = sum(r["size"] for r in records)
        proxy = ShapedProxy(server.port, rate, cut_every)
        start = time.monotonic()
        rounds = 0
        while laptop.files_to_send():
            rounds += 1
            result = sync(laptop, proxy.url, token)
            if rounds > 50:
                break
        took = time.monotonic() - start
        proxy.close()
        held = {p.name for p in (work / "central" / "central-files").rglob("*") if p.is_file()}
        arrived = sum(1 for r in records if r["reduced_sha256"] in held)
        print(f"sync {count} photos ({originals / 1e6:.1f} MB of originals, {reduced / 1e6:.2f} MB reduced + "
              f"{thumbs / 1e6:.2f} MB thumbnails) at {rate * 8 / 1e6:g} Mbit/s, cut every {cut_every:g} s:")
        print(f"  {took:.0f} s, {proxy.cuts} cuts, {rounds} sync runs, {arrived}/{count} reduced copies arrived")
        print(f"  bytes sent {proxy.up / 1e6:.2f} MB = {proxy.up / (reduced + thumbs):.3f} × the reduced copies and thumbnails "
              f"({proxy.up / reduced:.3f} × the reduced copies alone) — goal within 5 % "
              f"{'✓' if proxy.up <= 1.05 * (reduced + thumbs) else '✗'}; last result: {result.error or 'finished'}")

        # the same originals sent whole, one request a file, starting again after each cut, for as long
        whole = ShapedProxy(server.port, rate, cut_every)
        deadline = time.monotonic() + took
        sent_whole = 0
        client = httpx.Client(base_url=whole.url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
        pending = [r["sha256"] for r in records]
        while pending and time.monotonic() < deadline:
            sha = pending[0]
            data = blobs.get(sha)
            try:
                reply = client.put(f"/files/{sha}", params={"offset": 0, "total": len(data)}, content=data)
                if reply.status_code == 200:
                    pending.pop(0)
            except httpx.HTTPError:
                client.close()
                client = httpx.Client(base_url=whole.url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
        sent_whole = whole.up
        whole.close()
        done = count - len(pending)
        print(f"  sending the originals whole over the same link for the same {took:.0f} s: {done}/{count} arrived, "
              f"{sent_whole / 1e6:.1f} MB sent ({whole.cuts} cuts; a file larger than {rate * cut_every / 1e6:.2f} MB never gets through)")
        laptop.close()
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=12)
    parser.add_argument("--attach-runs", type=int, default=10)
    parser.add_argument("--rate", type=int, default=125_000, help="bytes a second each way (125,000 = 1 Mbit/s)")
    parser.add_argument("--cut-every", type=float, default=30.0)
    parser.add_argument("--skip-sync", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fk-bench-photos-") as folder:
        work = Path(folder)
        bench_attach(work, args.attach_runs)
        if not args.skip_sync:
            bench_sync(work, args.photos, args.rate, args.cut_every)


if __name__ == "__main__":
    main()
