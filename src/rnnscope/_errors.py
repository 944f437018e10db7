"""Exceptions raised by rnnscope.

Every error the library raises on purpose derives from :class:`RnnscopeError`::

    RnnscopeError
     ├── LayerError            (also ValueError)  no such layer, ambiguous name, wrong kind
     ├── UnsupportedError      (also TypeError)   an object or layer rnnscope cannot read
     ├── FormatError           (also ValueError)  a file that is not a readable checkpoint
     ├── InputError            (also ValueError)  an input array of the wrong shape or type
     └── MissingDependencyError (also ImportError) an optional package is not installed

Messages name the argument, layer or file, what was expected and what was found. The same facts
travel as attributes, so callers never parse messages: ``err.path`` (the file), ``err.layer``
(the layer's name) and ``err.argument`` (the keyword argument at fault), each None where it does
not apply.
"""

from __future__ import annotations

import re

__all__ = [
    "FormatError",
    "InputError",
    "LayerError",
    "MissingDependencyError",
    "RnnscopeError",
    "UnsupportedError",
]


class RnnscopeError(Exception):
    """Base class of every error rnnscope raises on purpose.

    Attributes:
        path: the file the error is about, as given, or None.
        layer: the layer's name (or the name or index asked for), or None.
        argument: the name of the keyword argument at fault, e.g. ``"layer"``, or None.

    Example:
        >>> err = FormatError("'m.h5' is empty", path="m.h5")
        >>> err.path, err.layer, str(err)
        ('m.h5', None, "'m.h5' is empty")
    """

    path: str | None
    layer: str | int | None
    argument: str | None

    def __init__(
        self,
        *args: object,
        path: str | None = None,
        layer: str | int | None = None,
        argument: str | None = None,
    ) -> None:
        args = tuple(redact(a) if isinstance(a, str) else a for a in args)
        super().__init__(*args)  # first: ImportError's own __init__ resets .path
        self.path = None if path is None else redact(path)
        self.layer = layer
        self.argument = argument


_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^/\s'\"@]+@")


def redact(text: str) -> str:
    """``text`` with the credentials of every URL in it (``user:password@``) masked.

    Example:
        >>> redact("'s3://KEY:SECRET@bucket/m.keras': no such object")
        "'s3://***@bucket/m.keras': no such object"
    """
    return _USERINFO.sub(r"\1***@", text)


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
