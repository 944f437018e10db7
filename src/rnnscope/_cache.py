"""Per-file results kept in a local SQLite database, so a rerun computes only what changed.

A result is found again by the file's identity (its absolute path and the path as given, its
size and modification time: :func:`identity`, the one place a remote source plugs in its ETag),
the name it is shown under, the per-file function and its settings (``tol``, figures on or off,
the sample size), and the versions that change results (rnnscope, numpy, matplotlib, Pillow).
Any of these changing is a miss; the file is read again and its row replaced.

Values are stored as JSON with tagged numpy arrays and scalars (never pickle: a cache file is
data, not code), so a cached result is bit-identical to a fresh one. The database runs in WAL
mode with a busy timeout: worker processes never touch it (the calling process looks results up
and stores them), and two processes at once wait for each other instead of failing. A database
that cannot be read is moved aside and rebuilt with a note; a location that cannot be written
turns the cache off with a note. Neither is ever an error.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import sys
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ENV", "Cache", "CacheNote", "default_path", "identity", "open_cache"]

ENV = "RNNSCOPE_CACHE"
_OFF = {"", "0", "off", "no", "false", "none"}
_SCHEMA = 2  # 2: when each entry was last used, and the versions that made it
_TOUCH = 3600.0  # a hit records its use when the last one is older than this (seconds)
_SETTLE_NS = 2_000_000_000  # a file modified this recently may still be being written
_TIMEOUT = 30.0  # seconds a process waits for another one's write


class CacheNote(RuntimeWarning):
    """The cache could not be used as asked (rebuilt, or turned off); the results are fresh."""


@dataclass(frozen=True)
class Identity:
    """Which file, and which version of it: ``where`` names it, ``stamp`` changes with it."""

    where: str
    stamp: str
    mtime_ns: int = 0


def identity(source: Any) -> Identity | None:
    """The identity of a checkpoint file, or None for what is not cached (live models).

    Local files: the absolute path plus the path as given (a result holds the path as given),
    and ``size:mtime_ns``. Remote sources (a URL, ``(fs, path)``, an ``OpenFile``): the URL,
    and the object's size and ETag (or its modification time where the store has no ETag), one
    metadata request; an object rewritten under the same name gets a new ETag.
    """
    from ._io._remote import is_remote

    if is_remote(source):
        return _remote_identity(source)
    if not isinstance(source, (str, os.PathLike)):
        return None
    text = os.fspath(source)
    try:
        st = os.stat(text)
    except OSError:
        return None  # its read will fail and say why; failures are never cached
    where = f"{os.path.abspath(text)}\n{text}"
    return Identity(where, f"{st.st_size}:{st.st_mtime_ns}", st.st_mtime_ns)


def _remote_identity(source: Any) -> Identity | None:
    from ._errors import RnnscopeError
    from ._io._remote import hold, stamp

    try:
        url, given = hold(source)  # its filesystem, if given, for this lookup
        size, tag = stamp(url)
        del given
    except RnnscopeError:
        return None  # missing or denied: its read fails and says why; failures are never cached
    if tag is None:
        return None  # a store that says nothing of versions: never trust a stale result
    return Identity(url, f"{size}:{tag!a}")  # any tag is plain text, told apart exactly


def turned_off() -> bool:
    """True when ``$RNNSCOPE_CACHE`` turns the cache off (``off``, ``0``, ``no``, ...)."""
    env = os.environ.get(ENV)
    return env is not None and env.strip().lower() in _OFF


def default_path() -> Path:
    """``$RNNSCOPE_CACHE``, else ``rnnscope/results.sqlite`` in the user's cache folder."""
    env = os.environ.get(ENV)
    if env is not None and env.strip().lower() not in _OFF:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / "rnnscope" / "Cache" / "results.sqlite"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "rnnscope" / "results.sqlite"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "rnnscope" / "results.sqlite"


def _versions() -> str:
    """The versions whose change changes a result (read from metadata: nothing is imported)."""
    from importlib import metadata

    from ._version import __version__

    out = [f"rnnscope {__version__}"]
    for dist in ("numpy", "matplotlib", "pillow"):
        try:
            out.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            out.append(f"{dist} -")
    return "; ".join(out)


class _Uncacheable(TypeError):
    pass


def _encode(obj: Any) -> Any:
    """JSON-ready form; numpy arrays and scalars and tuples tagged so they come back exact."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, list):
        return [_encode(v) for v in obj]
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v) for v in obj]}
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise _Uncacheable("a dict with non-string keys")
        if any(k.startswith("__") and k.endswith("__") for k in obj):
            raise _Uncacheable("a dict key that looks like a tag")
        return {k: _encode(v) for k, v in obj.items()}
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, np.ndarray) and obj.dtype.kind in "biuf":
        data = base64.b64encode(np.ascontiguousarray(obj).tobytes()).decode("ascii")
        return {"__array__": [obj.dtype.str, list(obj.shape), data]}
    if np is not None and isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
        data = base64.b64encode(obj.tobytes()).decode("ascii")
        return {"__scalar__": [obj.dtype.str, data]}
    raise _Uncacheable(type(obj).__name__)


def _decode(obj: Any) -> Any:
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tuple__" in obj:
        return tuple(_decode(v) for v in obj["__tuple__"])
    if "__array__" in obj or "__scalar__" in obj:
        import numpy as np

        if "__array__" in obj:
            dtype, shape, data = obj["__array__"]
            raw = base64.b64decode(data)
            return np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(shape).copy()
        dtype, data = obj["__scalar__"]
        return np.frombuffer(base64.b64decode(data), dtype=np.dtype(dtype))[0]
    return {k: _decode(v) for k, v in obj.items()}


def _pack(value: Any) -> bytes:
    text = json.dumps(_encode(value), allow_nan=True, separators=(",", ":"))
    return zlib.compress(text.encode("utf-8"), 1)


def _unpack(blob: bytes) -> Any:
    return _decode(json.loads(zlib.decompress(blob).decode("utf-8")))


@dataclass
class Cache:
    """A results database at ``path``; counts what it found and what was computed.

    Attributes:
        path: the database file.
        hits: results found (files not read).
        computed: results computed (files read) while the cache was on.
        notes: what went wrong with the database itself (rebuilt, turned off).
    """

    path: Path
    hits: int = 0
    computed: int = 0
    notes: list[str] = field(default_factory=list)
    _db: sqlite3.Connection | None = field(default=None, repr=False)
    _off: bool = field(default=False, repr=False)
    _env: str = field(default="", repr=False)
    _why: str = field(default="", repr=False)

    @property
    def on(self) -> bool:
        """False once the database turned out unusable (a note says why)."""
        return not self._off

    def _note(self, text: str) -> None:
        self.notes.append(text)
        warnings.warn(f"rnnscope cache: {text}", CacheNote, stacklevel=4)

    def _connect(self) -> sqlite3.Connection | None:
        if self._db is not None or self._off:
            return self._db
        try:
            self._db = self._open()
        except (OSError, _NotOurs) as err:  # the folder cannot be made or written; or the
            self._give_up(err)  # file is another program's database, or a newer rnnscope's
        except sqlite3.DatabaseError as err:
            if _unwritable(err) or not self.path.exists():
                self._give_up(err)
                return None
            self._rebuild(err)
        return self._db

    def _open(self) -> sqlite3.Connection:
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(self.path), timeout=_TIMEOUT, isolation_level=None)
        try:
            db.execute(f"PRAGMA busy_timeout = {int(_TIMEOUT * 1000)}")
            row = _own_schema(db)  # never touch another program's database
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")  # WAL stays consistent; a crash loses
            # at most the last results, which are computed again
            db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)")
            if row is not None and row[0] != str(_SCHEMA):  # an older layout: start afresh
                db.execute("DROP TABLE IF EXISTS results")
            db.execute(
                "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, stamp TEXT NOT NULL,"
                " file TEXT NOT NULL, value BLOB NOT NULL, stored REAL NOT NULL,"
                " used REAL NOT NULL, env TEXT NOT NULL)"
            )
            if row is None or row[0] != str(_SCHEMA):
                db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(_SCHEMA),))
            db.execute("PRAGMA quick_check").fetchone()
        except BaseException:
            db.close()
            raise
        return db

    def _give_up(self, err: BaseException) -> None:
        self._off = True
        self._why = str(err)
        self._note(f"cannot use '{self.path}' ({err}); reading every file (no cache)")

    def _rebuild(self, err: BaseException) -> None:
        """Move the unreadable database aside (``.corrupt``) and start an empty one; a file
        that is neither an SQLite file nor named like a database (a checkpoint, a CSV given as
        ``--cache`` by mistake) is left where it is and the cache goes off."""
        if not _database_like(self.path):
            self._give_up(
                _NotOurs(f"not an SQLite database ({err}), nor named like one; left untouched")
            )
            return
        aside = self.path.with_name(self.path.name + ".corrupt")
        try:
            for suffix in ("-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            os.replace(self.path, aside)
            self._db = self._open()
        except (OSError, sqlite3.DatabaseError) as again:
            self._give_up(again)
            return
        self._note(f"'{self.path}' could not be read ({err}); moved to '{aside}' and rebuilt")

    def _key(self, ident: Identity, name: str, fn: Callable[..., Any], args: Any) -> str:
        if not self._env:
            self._env = _versions()
        what = [ident.where, name, f"{fn.__module__}.{fn.__qualname__}", _encode(args), self._env]
        text = json.dumps(what, allow_nan=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def get(self, ident: Identity, name: str, fn: Callable[..., Any], args: Any) -> Any:
        """The stored result for this file version and these settings, or None."""
        db = self._connect()
        if db is None:
            return None
        key = self._key(ident, name, fn, args)
        try:
            row = db.execute(
                "SELECT value FROM results WHERE key = ? AND stamp = ?", (key, ident.stamp)
            ).fetchone()
            if row is None:
                return None
            value = _unpack(row[0])
        except (sqlite3.DatabaseError, ValueError, zlib.error) as err:
            self._drop(db, err)
            return None
        self.hits += 1
        self._touch(db, key)
        return value

    def has(self, ident: Identity, name: str, fn: Callable[..., Any], args: Any) -> bool:
        """Whether a result is stored for this file version and these settings (not counted)."""
        db = self._connect()
        if db is None:
            return False
        key = self._key(ident, name, fn, args)
        try:
            row = db.execute(
                "SELECT 1 FROM results WHERE key = ? AND stamp = ?", (key, ident.stamp)
            ).fetchone()
        except sqlite3.DatabaseError:
            return False  # the lookup that follows rebuilds the database and says so
        return row is not None

    def _touch(self, db: sqlite3.Connection, key: str) -> None:
        """Record that an entry was used (at most once per ``_TOUCH``): pruning keeps it."""
        now = time.time()
        try:
            db.execute(
                "UPDATE results SET used = ? WHERE key = ? AND used < ?", (now, key, now - _TOUCH)
            )
        except sqlite3.DatabaseError:
            pass  # a read-only database still serves results; only the date is not kept

    def put(
        self, ident: Identity, name: str, fn: Callable[..., Any], args: Any, value: Any, t0: int
    ) -> bool:
        """Store ``value`` unless its file was modified too close to ``t0`` (when the read
        started, ``time.time_ns()``) to tell a later rewrite apart (the caller checks that the
        file's identity did not change during the read)."""
        self.computed += 1
        db = self._connect()
        if db is None or ident.mtime_ns > t0 - _SETTLE_NS:
            return False
        try:
            blob = _pack(value)
        except _Uncacheable:
            return False
        key = self._key(ident, name, fn, args)
        now = time.time()
        try:
            db.execute(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, ident.stamp, _shown(ident), blob, now, now, self._env),
            )
        except sqlite3.DatabaseError as err:
            if _unwritable(err):
                self.close()
                self._give_up(err)
                return False
            self._drop(db, err)
            return False
        return True

    def _drop(self, db: sqlite3.Connection, err: BaseException) -> None:
        """A database that fails mid-use: closed, rebuilt once, else the cache goes off."""
        db.close()
        self._db = None
        if self.path.exists() and not _unwritable(err):
            self._rebuild(err)
        else:
            self._give_up(err)

    def _usable(self) -> sqlite3.Connection:
        """The open database, for the ``cache`` command; OSError saying why it cannot be."""
        db = self._connect()
        if db is None:
            raise OSError(self._why or f"cannot use the cache database '{self.path}'")
        return db

    def contents(self) -> dict[str, Any]:
        """What the database holds: ``{"entries", "current", "bytes", "oldest_use"}``
        (``current``: entries made by these versions, the only ones a run can find;
        ``oldest_use``: seconds since the least recently used entry was last used)."""
        db = self._usable()
        self._env = self._env or _versions()
        n, current, oldest = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(env = ?), 0), MIN(used) FROM results", (self._env,)
        ).fetchone()
        return {
            "entries": n,
            "current": current,
            "bytes": self._bytes(),
            "oldest_use": None if oldest is None else max(0.0, time.time() - oldest),
        }

    def prune(self, days: float = 30.0) -> dict[str, int]:
        """Remove the entries no run will find again, or that none used for ``days`` days.

        Gone: entries made by other versions of rnnscope, numpy, matplotlib or Pillow (a run
        never finds them), entries of local files that no longer exist, and entries not used
        (found or stored) for ``days`` days. The file is then compacted.

        Returns:
            ``{"other_versions", "missing_files", "unused", "kept", "bytes_before",
            "bytes_after"}``: entries removed for each reason (counted in that order), entries
            kept, and the database's size before and after.
        """
        if not days > 0:  # a negative age would remove every entry; NaN none, silently
            from ._errors import InputError

            raise InputError(f"days must be a number > 0; got {days!r}", argument="days")
        db = self._usable()
        self._env = self._env or _versions()
        before = self._bytes()
        out = {"other_versions": db.execute("DELETE FROM results WHERE env != ?", (self._env,))}
        gone = [
            (f,)
            for (f,) in db.execute("SELECT DISTINCT file FROM results")
            if os.path.isabs(f) and not os.path.exists(f)  # remote URLs are never absolute
        ]
        db.execute("BEGIN")
        counted = db.executemany("DELETE FROM results WHERE file = ?", gone)
        db.execute("COMMIT")
        out["missing_files"] = counted
        cut = time.time() - days * 86400.0
        out["unused"] = db.execute("DELETE FROM results WHERE used < ?", (cut,))
        counts = {k: int(c.rowcount) for k, c in out.items()}
        counts["kept"] = int(db.execute("SELECT COUNT(*) FROM results").fetchone()[0])
        _compact(db)
        counts.update(bytes_before=before, bytes_after=self._bytes())
        return counts

    def clear(self) -> int:
        """Remove every entry and compact the file; returns how many there were."""
        db = self._usable()
        n = int(db.execute("DELETE FROM results").rowcount)
        _compact(db)
        return n

    def _bytes(self) -> int:
        """The database's size on disk, its write-ahead log included."""
        size = 0
        for suffix in ("", "-wal"):
            try:
                size += os.stat(str(self.path) + suffix).st_size
            except OSError:
                pass
        return size

    def close(self) -> None:
        """Close the database (results already stored stay)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def summary(self) -> dict[str, Any]:
        """``{"path", "hits", "computed", "notes"}``: plain data for ``df.attrs["cache"]``."""
        return {
            "path": str(self.path),
            "hits": self.hits,
            "computed": self.computed,
            "notes": list(self.notes),
        }


_MAGIC = b"SQLite format 3\x00"
_DB_SUFFIXES = {".sqlite", ".sqlite3", ".db", ".db3"}


def _database_like(path: Path) -> bool:
    """An SQLite file (its header) or a file named like a database: one a damaged cache may be."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_MAGIC))
    except OSError:
        return False
    return head == _MAGIC or not head or path.suffix.lower() in _DB_SUFFIXES


def _shown(ident: Identity) -> str:
    """The file an entry is of, as the database keeps it: a URL's credentials masked (pruning
    looks only at local paths; the key, a hash, still tells credentials apart)."""
    from ._errors import redact

    return redact(ident.where.split("\n")[0])


class _NotOurs(Exception):
    """The file is an SQLite database this rnnscope must not change (its words say why)."""


def _own_schema(db: sqlite3.Connection) -> tuple[str] | None:
    """The schema row of an rnnscope cache (None for an empty database, ours to fill).

    Raises:
        _NotOurs: another program's database (tables other than ``meta`` and ``results``, or
            no schema row), or one written by a newer rnnscope; it is left exactly as it is.
    """
    tables = sorted(
        name
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not name.startswith("sqlite_")
    )
    if not tables:
        return None
    row = None
    if set(tables) <= {"meta", "results"} and "meta" in tables:
        try:
            row = db.execute("SELECT v FROM meta WHERE k = 'schema'").fetchone()
        except sqlite3.DatabaseError:
            row = None  # a table named meta of other columns
    if row is None or not str(row[0]).isdigit():
        raise _NotOurs(
            f"an SQLite database of another program (tables: {', '.join(tables)}), not an "
            "rnnscope cache; left untouched"
        )
    if int(row[0]) > _SCHEMA:
        raise _NotOurs(
            f"written by a newer rnnscope (cache layout {row[0]}; this one reads {_SCHEMA}); "
            "left untouched"
        )
    return (str(row[0]),)


def _compact(db: sqlite3.Connection) -> None:
    """Give the space of removed entries back to the file system."""
    db.execute("VACUUM")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()


def _unwritable(err: BaseException) -> bool:
    text = str(err).lower()
    return any(
        s in text for s in ("readonly", "read-only", "unable to open", "permission", "disk i/o")
    )


def open_cache(cache: Any) -> Cache | None:
    """The API's ``cache=`` argument as a :class:`Cache`, or None for no cache.

    ``None`` (default): ``$RNNSCOPE_CACHE`` (``off`` turns it off) or the user's cache folder;
    ``False``: no cache; a path: that database; a :class:`Cache`: itself.
    """
    from ._errors import InputError

    if cache is False:
        return None
    if isinstance(cache, Cache):
        return cache
    if cache is None or cache is True:
        if turned_off():
            return None
        return Cache(default_path())
    if isinstance(cache, (str, os.PathLike)):
        path = Path(cache).expanduser()
        if path.is_dir():
            path = path / "results.sqlite"
        return Cache(path)
    raise InputError(
        f"cache must be a path, True, False or None; got {type(cache).__name__}",
        argument="cache",
    )
