"""Numbers and names as table cells, for the command line and the report alike.

Names come from files and are data: :func:`valid_text` makes any string valid UTF-8 (a lone
surrogate, as h5py gives for undecodable bytes, becomes U+FFFD); :func:`plain` also shows
control and bidirectional-override characters as escapes and shortens very long names, for
terminals and figure titles.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["NAME_LIMIT", "as_float", "cell", "plain", "valid_text"]

NAME_LIMIT = 120
_SURROGATE = re.compile("[\ud800-\udfff]")


def as_float(v: Any) -> float:
    """``v`` as a float; NaN for None, ``pd.NA``, text or anything else that is not a number."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def valid_text(s: str) -> str:
    """``s`` with every lone surrogate replaced by U+FFFD: encodable as UTF-8."""
    if s.isascii():  # the common case, and the fast one (100k tensor names per file)
        return s
    return _SURROGATE.sub("\ufffd", s)


def plain(s: str, limit: int | None = NAME_LIMIT) -> str:
    """``s`` for display: valid UTF-8, every non-printable character (newline, escape, bell,
    bidirectional overrides, line separators, ...) as an escape (``\\n``, ``\\x1b``,
    ``\\u202e``), so a name from a file can neither forge a line nor drive the terminal, and
    at most ``limit`` characters (the rest counted, not shown)."""
    out = valid_text(s)
    if not out.isprintable():
        out = "".join(
            c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in out
        )
    if limit is not None and len(out) > limit:
        out = f"{out[: limit - 20]}... ({len(out)} chars)"
    return out


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
        return plain(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isinf(f):
        return str(f)
    if not isinstance(v, float) and f.is_integer():
        return str(int(f))
    return "0" if f == 0 else f"{f:.4g}"
