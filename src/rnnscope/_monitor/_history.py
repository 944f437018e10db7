"""``rnnscope.history``: read a training monitor's SQLite database, even while it is written."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .._errors import FormatError, InputError, require
from ._schema import SQLITE_MAGIC, TABLES

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["history", "is_database", "readonly_uri"]


def is_database(path: Any) -> bool:
    """True if ``path`` is an SQLite file (by its first 16 bytes)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(16) == SQLITE_MAGIC
    except (OSError, TypeError):
        return False


def readonly_uri(path: str | os.PathLike[str]) -> str:
    """An SQLite URI opening ``path`` read-only, whatever characters its name holds.

    A raw path in a URI breaks on ``#`` (fragment), ``?`` (query) and ``%`` (escapes): SQLite
    would open, or create, another file. Every character but letters, digits and ``/-._~`` is
    percent-encoded; ``mode=ro`` never creates a file.
    """
    p = os.path.abspath(os.fspath(path))
    uri = f"file:{quote(p, safe='/')}?mode=ro"
    try:
        with open(p, "rb") as fh:
            wal = fh.read(20)[18:20] == b"\x02\x02"  # a WAL database (older rnnscope)
    except OSError:
        wal = False
    if wal and not os.path.exists(p + "-wal"):
        uri += "&immutable=1"  # no writer: read it without creating -wal and -shm files
    return uri


def history(
    path: str | os.PathLike[str], table: str = "stats", run: int | str | None = None
) -> pd.DataFrame:
    """A monitor database's rows as a DataFrame.

    Args:
        path: the database written by ``rnnscope.keras.Monitor`` or ``rnnscope.torch.Monitor``.
        table: ``"stats"`` (per step, layer, part, gate, direction), ``"events"`` (first NaN/Inf
            and the like), ``"timestep_grads"`` or ``"runs"``.
        run: a run id, ``"all"``, or None for the latest run.

    Example:
        >>> h = rnnscope.history("run.db")
        >>> rk = h[(h.layer == "lstm") & (h.part == "recurrent_kernel")]
        >>> list(rk.pivot_table("grad_norm", "step", "gate", sort=False).columns)
        ['input', 'forget', 'cell', 'output']
    """
    require("pandas", "report", "rnnscope.history")

    if table not in TABLES:
        raise InputError(
            f"table must be one of {', '.join(TABLES)}; got {table!r}",
            path=str(Path(path)),
            argument="table",
        )
    p = Path(path)
    if not p.exists():
        raise InputError(f"monitor database '{p}' does not exist", path=str(p))
    if not p.is_file():
        raise FormatError(f"'{p}' is not a regular file (a directory, FIFO or device)", path=str(p))
    if not is_database(p):
        raise FormatError(
            f"'{p}' is not an SQLite database (written by rnnscope's monitor)", path=str(p)
        )
    with _reading(p) as conn:
        return _query(p, conn, table, run)


@contextmanager
def _reading(p: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to ``p``. A writer killed mid-transaction leaves a hot journal
    that only a connection allowed to write can roll back: then the database and its journal
    are copied to a temporary folder and the copy is read (rolled back there, the original left
    untouched)."""
    journal = Path(f"{p}-journal")
    with tempfile.TemporaryDirectory(prefix="rnnscope-history-") as tmp:
        uri = readonly_uri(p)
        if journal.is_file() and journal.stat().st_size > 0:
            copy = Path(tmp) / "run.db"
            shutil.copyfile(p, copy)
            shutil.copyfile(journal, f"{copy}-journal")
            uri = f"file:{quote(str(copy), safe='/')}"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=30)
        except sqlite3.Error as err:
            raise FormatError(f"cannot open '{p}': {err}", path=str(p)) from err
        try:
            yield conn
        finally:
            conn.close()


def _query(p: Path, conn: sqlite3.Connection, table: str, run: Any) -> pd.DataFrame:
    import pandas as pd

    try:
        runs = pd.read_sql_query("SELECT * FROM runs ORDER BY run_id", conn)
        if table == "runs":
            return runs
        if runs.empty:
            raise FormatError(f"'{p}' holds no monitored run", path=str(p))
        if run is None:
            chosen = [int(runs["run_id"].iloc[-1])]
        elif run == "all":
            chosen = [int(r) for r in runs["run_id"]]
        elif int(run) in set(runs["run_id"]):
            chosen = [int(run)]
        else:
            raise InputError(
                f"run {run!r} is not in '{p}'; runs: {', '.join(map(str, runs['run_id']))}",
                path=str(p),
                argument="run",
            )
        marks = ",".join("?" * len(chosen))
        order = "step, rowid" if table != "runs" else "run_id"
        df = pd.read_sql_query(
            f"SELECT * FROM {table} WHERE run_id IN ({marks}) ORDER BY run_id, {order}",
            conn,
            params=chosen,
        )
    except (sqlite3.Error, pd.errors.DatabaseError) as err:
        raise FormatError(f"'{p}' is not a monitor database: {err}", path=str(p)) from err
    df.attrs["runs"] = runs[runs["run_id"].isin(chosen)].to_dict("records")
    return df
