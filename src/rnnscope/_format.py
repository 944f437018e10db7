"""Numbers as table cells, for the command line and the report alike."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["cell", "printable"]


def cell(v: Any) -> str:
    """A value as a short table cell: empty for missing, integers whole, floats to 4 digits."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else ""
    try:
        if v != v:  # NaN, pandas NA
            return ""
    except TypeError:  # pandas NA refuses comparison
        return ""
    if isinstance(v, str):
        return v
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isinf(f):
        return str(f)
    if not isinstance(v, float) and f.is_integer():
        return str(int(f))
    return "0" if f == 0 else f"{f:.4g}"


def printable(text: str) -> str:
    """``text`` for a terminal: control characters (newline, escape, bell, ...) written as
    escapes (``\\n``, ``\\x1b``), so a name from a file can neither forge a line nor drive the
    terminal."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )
