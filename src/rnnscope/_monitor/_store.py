"""The monitor's SQLite writer: a background thread that training never waits for.

The training thread only appends a batch (one flush: rows, per-timestep norms, events) to a queue;
a writer thread owns the connection and writes each batch as one transaction, so a recorded step
is in the database entirely or not at all. What the disk, the file or other processes do cannot
stop training:

* **No shared-memory file.** The database uses a rollback journal (``journal_mode=TRUNCATE``) and
  ``mmap_size=0``: SQLite maps nothing, and there is no ``-shm`` file whose truncation could
  raise SIGBUS in the training process (as WAL's memory-mapped index does). Readers
  (``rnnscope.history``) still read while training runs, between two writes.
* **Locked database.** Every attempt waits at most ``BUSY_TIMEOUT`` (0.1 s, in the writer
  thread); a locked database keeps the batch queued, and it is retried with a growing pause (up
  to ``MAX_PAUSE``) until the lock is released. One warning says so.
* **Lost database.** The file deleted or replaced (its directory removed, say), or failing
  ``MAX_FAILURES`` times in a row for another reason (damaged, disk full, I/O error): one warning
  names the fresh file beside it (``<name>.recovered-<n>.db``, its folder created again if
  needed) where recording goes on, starting with the queued batches. After ``MAX_SWITCHES`` fresh
  files, recording stops, with a warning.
* **End of training.** ``close`` waits at most ``DRAIN_TIMEOUT`` (5 s) for queued batches; any it
  cannot write are counted in a warning, never dropped silently.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import os
import sqlite3
import threading
import warnings
from collections import deque
from pathlib import Path
from typing import Any

from ._schema import SCHEMA, insert_sql

__all__ = ["BUSY_TIMEOUT", "DRAIN_TIMEOUT", "Store"]

BUSY_TIMEOUT = 0.1
MAX_PAUSE = 1.0
MAX_FAILURES = 3
MAX_SWITCHES = 3
DRAIN_TIMEOUT = 5.0

# one batch: stats rows (*KEY_COLUMNS, *STAT_COLUMNS), timestep rows (step, layer, timestep,
# norm) and events (step, kind, where, message), each a row of its table without the run id
TABLES_WRITTEN = ("stats", "timestep_grads", "events")
Batch = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]


def _warn(message: str) -> None:
    warnings.warn(f"rnnscope monitor: {message}", RuntimeWarning, stacklevel=2)


class _Lost(Exception):
    """The database file is gone or unusable."""


class Store:
    """A monitor database written by a background thread (see the module docstring).

    Args:
        path: the database file (created, or appended to as a new run).
        meta: the run's description (framework, model, every, tol, ...).
    """

    def __init__(self, path: Any, meta: dict[str, Any]) -> None:
        self.path = Path(path)
        self.current = self.path
        self.meta = meta
        self.run_id: int | None = None
        self.written = 0  # batches committed, for tests and the closing warning
        self._queue: deque[Batch] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._gave_up = False
        self._conn: sqlite3.Connection | None = None
        self._inode: tuple[int, int] | None = None
        self._failures = 0
        self._switches = 0
        self._said: set[str] = set()
        self._thread = threading.Thread(
            target=self._run, name="rnnscope-monitor-writer", daemon=True
        )
        self._thread.start()
        atexit.register(self.close)

    # -- the training thread's side: never touches the disk ------------------------------------
    def submit(self, batch: Batch) -> None:
        """Queue one flush for writing."""
        with self._cond:
            if self._gave_up:
                return
            self._queue.append(batch)
            self._cond.notify()

    def close(self) -> None:
        """Write what is queued (waiting at most ``DRAIN_TIMEOUT``), then close."""
        atexit.unregister(self.close)
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(DRAIN_TIMEOUT)
        with self._cond:
            left = len(self._queue)
            self._queue.clear()
            self._gave_up = True
            self._cond.notify()
        if left:
            _warn(
                f"{left} recorded step(s) could not be written to '{self.current}' within "
                f"{DRAIN_TIMEOUT:.0f} s of the end of training (the database stayed locked or "
                "unwritable); they are lost"
            )

    # -- the writer thread -----------------------------------------------------------------------
    def _open_first(self) -> None:
        """Create the file and the run at once (readers see the run before its first step).
        A path that cannot be opened at all is a warning and no database, as for a read-only
        folder; a locked one is retried with the first batch."""
        try:
            self._connect()
        except (sqlite3.Error, OSError) as err:
            if "locked" in str(err) or "busy" in str(err):
                return
            with self._cond:
                self._gave_up = True
                self._queue.clear()
            _warn(f"cannot open '{self.path}': {err}; training goes on without it")

    def _run(self) -> None:
        self._open_first()
        pause = BUSY_TIMEOUT
        while True:
            with self._cond:
                while not self._queue and not (self._closing or self._gave_up):
                    self._cond.wait()
                if self._gave_up or not self._queue:
                    break
                batch = self._queue[0]
            if self._attempt(batch):
                with self._cond:
                    if self._queue and self._queue[0] is batch:
                        self._queue.popleft()
                pause = BUSY_TIMEOUT
                continue
            with self._cond:
                self._cond.wait(pause)  # a pause between attempts, cut short by nothing but close
            pause = min(pause * 2, MAX_PAUSE)
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass

    def _attempt(self, batch: Batch) -> bool:
        try:
            self._check_file()
            conn = self._connect()
            self._insert(conn, batch)
        except _Lost as err:
            self._switch(str(err))
            return False
        except (sqlite3.Error, OSError) as err:
            text = str(err)
            if "locked" in text or "busy" in text:
                self._once(
                    "locked",
                    f"'{self.current}' is locked by another connection; recorded steps are "
                    "queued and written once it is released",
                )
                return False
            self._failures += 1
            self._once(f"fail:{self.current}", f"writing to '{self.current}' failed: {err}")
            if self._failures >= MAX_FAILURES:
                self._switch(f"{MAX_FAILURES} failed writes in a row ({err})")
            return False
        self._failures = 0
        self.written += 1
        return True

    def _check_file(self) -> None:
        if self._conn is None:
            return
        try:
            st = os.stat(self.current)
        except OSError as err:
            raise _Lost(f"'{self.current}' disappeared ({err.strerror})") from err
        if (st.st_dev, st.st_ino) != self._inode:
            raise _Lost(f"'{self.current}' was replaced by another file")

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        if self.current != self.path:
            self.current.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.current), timeout=BUSY_TIMEOUT, isolation_level=None)
        try:
            conn.execute("PRAGMA mmap_size=0")
            mode = conn.execute("PRAGMA journal_mode=TRUNCATE").fetchone()
            if not mode or str(mode[0]).lower() != "truncate":
                raise sqlite3.OperationalError("database is locked (cannot leave WAL mode)")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
            if self.run_id is None or self.current != self.path:
                self.run_id = self._new_run(conn)
            st = os.stat(self.current)
        except BaseException:
            conn.close()
            raise
        self._conn, self._inode = conn, (st.st_dev, st.st_ino)
        return conn

    def _new_run(self, conn: sqlite3.Connection) -> int:
        meta = dict(self.meta)
        if self.current != self.path:
            meta["continues"] = str(self.path)
        cur = conn.execute(
            insert_sql("runs"),
            (
                dt.datetime.now().isoformat(timespec="seconds"),
                meta.get("framework"),
                meta.get("model"),
                meta.get("every"),
                meta.get("tol"),
                json.dumps(meta, default=str),
            ),
        )
        return int(cur.lastrowid or 0)

    def _insert(self, conn: sqlite3.Connection, batch: Batch) -> None:
        run = self.run_id
        conn.execute("BEGIN IMMEDIATE")
        try:
            for table, values in zip(TABLES_WRITTEN, batch, strict=True):
                conn.executemany(insert_sql(table), [(run, *v) for v in values])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise

    def _switch(self, why: str) -> None:
        old = self.current
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
        self._conn, self._inode, self._failures = None, None, 0
        self._switches += 1
        if self._switches > MAX_SWITCHES:
            with self._cond:
                left = len(self._queue)
                self._queue.clear()
                self._gave_up = True
            _warn(
                f"database lost again ({why}); recording stopped after {MAX_SWITCHES} fresh "
                f"files ({left} queued step(s) dropped); training goes on"
            )
            return
        stem = self.path.name[: -len(self.path.suffix)] if self.path.suffix else self.path.name
        self.current = self.path.with_name(
            f"{stem}.recovered-{self._switches}{self.path.suffix or '.db'}"
        )
        _warn(
            f"database '{old}' lost ({why}); recording goes on in '{self.current}' "
            "(a new run, with the steps not yet written)"
        )

    def _once(self, key: str, message: str) -> None:
        if key not in self._said:
            self._said.add(key)
            _warn(message)
