"""Option sets as string enums: a ``StrEnum`` base (3.10 has none) and the enums the core shares.

Members equal their strings (``Severity.ERROR == "error"``) and print as them; public outputs
(records, tables, CSV/JSON, messages) keep plain strings, converted at the boundary with
``.value`` or ``str()``. No imports beyond the standard library: every layer may use it.
"""

from __future__ import annotations

import enum
import sys

__all__ = ["Direction", "EquateAxes", "Severity", "StrEnum"]

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10

    class StrEnum(str, enum.Enum):
        """A string enum that prints as its value (``enum.StrEnum`` of Python 3.11)."""

        def __str__(self) -> str:
            return str(self.value)


class Severity(StrEnum):
    """How serious a health flag is, most serious first."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


class Direction(StrEnum):
    """The direction of a recurrent layer's blocks; ``""`` for blocks of non-recurrent layers."""

    FORWARD = "forward"
    BACKWARD = "backward"
    NONE = ""


class EquateAxes(StrEnum):
    """Which histogram panels share bins and limits: the public ``equate_axes`` 0, 1 and 2 of
    ``rnnscope.plot.rnn_histogram`` and See RNN's ``rnn_histogram``, named."""

    NONE = "none"  # 0: each panel its own
    PART = "part"  # 1: the panels of one part (See RNN: kernel beside recurrent kernel)
    ALL = "all"  # 2: every panel (See RNN: and both directions, symmetric)
