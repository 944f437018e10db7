"""Exceptions raised by rnnscope.

Every error the library raises on purpose derives from :class:`RnnscopeError`::

    RnnscopeError
     ├── LayerError            (also ValueError)  no such layer, ambiguous name, wrong kind
     ├── UnsupportedError      (also TypeError)   an object or layer rnnscope cannot read
     ├── FormatError           (also ValueError)  a file that is not a readable checkpoint
     ├── InputError            (also ValueError)  an input array of the wrong shape or type
     └── MissingDependencyError (also ImportError) an optional package is not installed

Messages name the argument, layer or file, what was expected and what was found.
"""

from __future__ import annotations

__all__ = [
    "FormatError",
    "InputError",
    "LayerError",
    "MissingDependencyError",
    "RnnscopeError",
    "UnsupportedError",
]


class RnnscopeError(Exception):
    """Base class of every error rnnscope raises on purpose."""


class LayerError(RnnscopeError, ValueError):
    """A layer was not found, is ambiguous, or is not of the kind asked for."""


class UnsupportedError(RnnscopeError, TypeError):
    """An object, layer or setting that rnnscope cannot read."""


class FormatError(RnnscopeError, ValueError):
    """A file that is not a checkpoint rnnscope can read."""


class InputError(RnnscopeError, ValueError):
    """An input array (sequence, initial state) of the wrong shape or type."""


class MissingDependencyError(RnnscopeError, ImportError):
    """An optional dependency is needed and not installed."""


def require(module: str, extra: str, purpose: str) -> None:
    """Raise :class:`MissingDependencyError` unless ``module`` can be imported.

    Args:
        module: top-level module name, e.g. ``"matplotlib"``.
        extra: the rnnscope extra that installs it, e.g. ``"plot"``.
        purpose: what needs it, for the message.
    """
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(
            f"{purpose} needs the '{module}' package, which is not installed; "
            f"install it with: pip install 'rnnscope[{extra}]'"
        )
