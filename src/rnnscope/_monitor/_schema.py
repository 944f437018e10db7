"""The monitor database's tables and columns, in one place: the writer creates and fills them
from here, and ``rnnscope.history`` reads the tables named here.

- ``runs(run_id, started, framework, model, every, tol, meta)``
- ``stats(run_id, step, epoch, layer, part, gate, direction, weight_norm, mean, std, abs_max,
  frac_near_zero, nan, inf, grad_norm, grad_nan, grad_inf, update_ratio)``
- ``timestep_grads(run_id, step, layer, timestep, grad_norm)``
- ``events(run_id, step, kind, where_, message)``
"""

from __future__ import annotations

__all__ = [
    "KEY_COLUMNS",
    "SCHEMA",
    "SQLITE_MAGIC",
    "STAT_COLUMNS",
    "TABLES",
    "insert_sql",
]

SQLITE_MAGIC = b"SQLite format 3\x00"

# what identifies a stats row besides its run, and the statistics recorded for it
KEY_COLUMNS = ("step", "epoch", "layer", "part", "gate", "direction")
STAT_COLUMNS = (
    "weight_norm",
    "mean",
    "std",
    "abs_max",
    "frac_near_zero",
    "nan",
    "inf",
    "grad_norm",
    "grad_nan",
    "grad_inf",
    "update_ratio",
)
_TYPES = {
    "step": "INTEGER",
    "epoch": "INTEGER",
    "timestep": "INTEGER",
    "every": "INTEGER",
    "nan": "INTEGER",
    "inf": "INTEGER",
    "grad_nan": "INTEGER",
    "grad_inf": "INTEGER",
    "tol": "REAL",
}

# every table's columns after its run_id, in the order history() names the tables
_COLUMNS = {
    "stats": (*KEY_COLUMNS, *STAT_COLUMNS),
    "events": ("step", "kind", "where_", "message"),
    "timestep_grads": ("step", "layer", "timestep", "grad_norm"),
    "runs": ("started", "framework", "model", "every", "tol", "meta"),
}
TABLES = tuple(_COLUMNS)


def _type(column: str) -> str:
    if column in _TYPES:
        return _TYPES[column]
    return "REAL" if column in STAT_COLUMNS else "TEXT"


def _create(table: str) -> str:
    run = "run_id INTEGER PRIMARY KEY AUTOINCREMENT" if table == "runs" else "run_id INTEGER"
    columns = ", ".join(f"{c} {_type(c)}" for c in _COLUMNS[table])
    return f"CREATE TABLE IF NOT EXISTS {table} ({run}, {columns});"


SCHEMA = "\n".join(
    [
        _create("runs"),
        _create("stats"),
        "CREATE INDEX IF NOT EXISTS stats_step ON stats (run_id, step);",
        _create("timestep_grads"),
        _create("events"),
    ]
)


def insert_sql(table: str) -> str:
    """``INSERT`` of one row of ``table``: the run id, then its columns in schema order (a
    ``runs`` row leaves its id to SQLite)."""
    columns = _COLUMNS[table] if table == "runs" else ("run_id", *_COLUMNS[table])
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
