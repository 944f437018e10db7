"""``rnnscope report DIR --watch``: the report rebuilt as new checkpoints appear.

Polls the paths every ``--every`` seconds. A file is taken once it is complete: present at the
start and not modified for a poll period, or seen with the same size and modification time on
two polls in a row (a checkpoint still being written changes between polls and waits). When the
set of complete files changes, or the metrics file (``--metrics``: a CSV or JSON file, a monitor
database with its write-ahead log, or every file under a TensorBoard log folder) changed and then
stayed the same for a poll, the report is built again; the per-file cache means only the new
files are read. Each HTML file is replaced atomically (written beside it, then renamed), so a
browser reload never sees half a page. Ctrl-C stops the watch with a message and exit code 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._errors import InputError, RnnscopeError
from ._format import plain

__all__ = ["watch"]

Stamp = tuple[int, int]  # size, mtime_ns
Build = Callable[[list[str], list[str], Any], str]  # paths, names, cache -> the report written


def _listing(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The checkpoint files under the watched paths now, ``(name, path)`` in natural order."""
    from ._tables import collect_sources

    try:
        pairs, _ = collect_sources(list(args.paths), None, args.recursive)
    except InputError:  # nothing there yet
        return []
    return [(name, os.fspath(src)) for name, src in pairs]


def _stamp(path: str) -> Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _metrics_stamp(path: str | None) -> tuple[tuple[str, int, int], ...]:
    """Size and modification time of the metrics: the file (and an SQLite database's ``-wal``
    log, where a monitor's writes land first) or every file under a folder (TensorBoard)."""
    if not path:
        return ()
    root = Path(path)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    files += [] if root.is_dir() else [Path(f"{path}-wal")]
    out = []
    for f in files:
        st = _stamp(str(f))
        if st is not None:
            out.append((str(f), *st))
    return tuple(out)


class _Poller:
    """Which files are complete, poll by poll."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.seen: dict[str, Stamp] = {}
        self.first = True
        self.told: dict[str, Stamp] = {}
        self.metrics_seen: Any = None
        self.metrics: Any = ()

    def settled_metrics(self, now: Any) -> Any:
        """The metrics' stamp as last seen unchanged on two polls in a row (at the first poll:
        as it is), so a metrics file being written is read once it is whole."""
        if self.metrics_seen is None or now == self.metrics_seen:
            self.metrics = now
        self.metrics_seen = now
        return self.metrics

    def poll(self, listing: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[str]]:
        """The complete files (with their stamps folded into the result) and those waiting."""
        now = time.time_ns()
        ready, waiting = [], []
        stamps: dict[str, Stamp] = {}
        for name, path in listing:
            st = _stamp(path)
            if st is None:
                continue
            stamps[path] = st
            old = self.first and now - st[1] > self.every * 1e9
            if self.seen.get(path) == st or old:
                ready.append((name, path))
            elif self.told.get(path) != st:
                self.told[path] = st
                waiting.append(f"{name} ({st[0]:,} bytes so far)")
        self.seen, self.first = stamps, False
        return ready, waiting


def watch(args: argparse.Namespace, cache: Any, build: Build) -> int:
    """Build the report whenever the complete checkpoints change, until Ctrl-C (exit code 0).

    ``build(paths, names, cache)`` writes one report and returns its path.
    """
    from ._cache import Cache

    if not cache:  # no database: remember results in memory for this watch
        cache = Cache(Path(":memory:"))
    poller = _Poller(args.every)
    built: tuple[Any, ...] | None = None
    wrote = ""
    count = 0
    print(
        f"rnnscope: watching {', '.join(plain(p) for p in args.paths)} every {args.every:g} s; "
        "Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    try:
        while True:
            ready, waiting = poller.poll(_listing(args))
            for w in waiting:
                print(f"rnnscope: waiting for {plain(w)}: still being written", flush=True)
            metrics = poller.settled_metrics(_metrics_stamp(getattr(args, "metrics", None)))
            key = (tuple((n, _stamp(p)) for n, p in ready), metrics)
            if ready and key != built:
                old, had = built, set() if built is None else {k[0] for k in built[0]}
                new = [n for n, _ in ready if n not in had]
                try:
                    wrote = build([p for _, p in ready], [n for n, _ in ready], cache)
                except RnnscopeError as err:  # e.g. the only file is unreadable: wait for more
                    print(f"rnnscope: error: {err} (still watching)", file=sys.stderr, flush=True)
                    built = key
                    continue
                built, count = key, len(ready)
                if wrote:
                    what = f"{len(new)} new" + (": " if new else "")  # "0 new", no colon
                    what += ", ".join(plain(n) for n in new[:3]) + (", ..." if len(new) > 3 else "")
                    if old is not None and old[1] != metrics:
                        what += "; the metrics changed"
                    print(f"wrote {wrote} ({count} checkpoints; {what})", flush=True)
            time.sleep(args.every)
    except KeyboardInterrupt:
        last = f"; the last report: {wrote} ({count} checkpoints)" if wrote else ""
        print(f"rnnscope: stopped watching{last}", file=sys.stderr, flush=True)
        return 0
    finally:
        cache.close()
