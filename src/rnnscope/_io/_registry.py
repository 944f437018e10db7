"""The readers rnnscope knows, in one list, and everything derived from it.

Format detection (:func:`detect_format`), the format list in messages, ``FORMATS`` and the file
suffixes a folder is searched for (:func:`checkpoint_suffixes`) all read :data:`READERS`.

A new format (ONNX, say) is one new module, ``_io/_onnx.py``, holding a
:class:`~rnnscope._io._reader.Reader` subclass: ``name``, ``description``, ``suffixes``;
``guess_can_open`` from the first bytes (its magic) and, as a fallback, the name; ``open``, which
imports its heavy dependencies inside itself, raises ``FormatError(..., path=path)`` for a damaged
file (and :class:`MissingDependencyError` for a missing package) and returns a
:class:`Checkpoint` of :class:`LayerRef` records whose arrays are read when extracted. Then one
entry in :data:`READERS` below. ``load`` adds the rest: a regular-file check, the guard that
turns any other failure into a FormatError carrying the path (and the layer, on extraction),
and valid UTF-8 names.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

from .._errors import FormatError
from ._limits import directory_error
from ._onnx import OnnxReader
from ._reader import HEAD_BYTES, ZIP_MAGIC, Match, Reader, zip_names
from ._readers import KerasH5Reader, KerasReader, SafetensorsReader, TorchReader
from ._remote import is_url

__all__ = [
    "FORMATS",
    "READERS",
    "checkpoint_suffixes",
    "detect_format",
    "reader_for",
    "register",
    "supported",
    "unregister",
]

# In this order: messages list the formats so, and a file two readers claim goes to the first.
READERS: list[Reader] = [KerasReader(), KerasH5Reader(), SafetensorsReader(), TorchReader()]
READERS.append(OnnxReader())  # after the others: ONNX has no magic number, only a likely start


def register(reader: Reader) -> Reader:
    """Add ``reader`` after the others (a format of the same name is replaced in its place).

    For readers outside the package (tests, plug-ins); it affects this process only: worker
    processes (``jobs=N``) start fresh and know the readers listed in :data:`READERS`.
    """
    for i, r in enumerate(READERS):
        if r.name == reader.name:
            READERS[i] = reader
            return reader
    READERS.append(reader)
    return reader


def unregister(name: str) -> None:
    """Remove the reader of format ``name`` (no error if there is none)."""
    READERS[:] = [r for r in READERS if r.name != name]


class _Formats(Mapping[str, str]):
    """Format name -> description, in registry order (a live view: registering shows here)."""

    def __getitem__(self, name: str) -> str:
        return reader_for(name).description

    def __iter__(self) -> Iterator[str]:
        return iter([r.name for r in READERS])

    def __len__(self) -> int:
        return len(READERS)


FORMATS: Mapping[str, str] = _Formats()


def reader_for(name: str) -> Reader:
    """The reader of format ``name``."""
    for r in READERS:
        if r.name == name:
            return r
    raise KeyError(name)


def checkpoint_suffixes() -> tuple[str, ...]:
    """Every registered file suffix, in registry order: what a folder is searched for."""
    return tuple(dict.fromkeys(s for r in READERS for s in r.suffixes))


def supported() -> str:
    """The formats for a message: ``"keras: Keras 3 .keras archive ...; keras-h5: ..."``."""
    return "; ".join(f"{r.name}: {r.description}" for r in READERS)


def _read_head(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(HEAD_BYTES)
    except IsADirectoryError as err:
        raise directory_error(path) from err
    except OSError as err:
        raise FormatError(f"cannot read '{path}': {err.strerror or err}", path=path) from err


def _best(path: str, head: bytes, level: Match) -> Reader | None:
    return next((r for r in READERS if r.guess_can_open(path, head) >= level), None)


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format of a checkpoint file, from its content first and its extension second."""
    from ._limits import regular_file

    p = os.fspath(path)
    if is_url(p):
        from ._remote import read_range
        from ._remote import size as remote_size

        size = remote_size(p)
        head = read_range(p, 0, min(HEAD_BYTES, size)) if size else b""
    else:
        size = regular_file(p)  # a FIFO or device would block or never end
        head = _read_head(p)
    if size == 0:
        raise FormatError(f"'{p}' is empty (0 bytes); expected one of: {supported()}", path=p)
    found = _best(p, head, Match.CONTENT)
    if found is None and head.startswith(ZIP_MAGIC):
        _no_zip_reader(p)
    found = found or _best(p, head, Match.NAME)
    if found is None:
        raise FormatError(
            f"'{p}' is not a checkpoint rnnscope can read (first bytes {head[:8]!r}); "
            f"supported: {supported()}",
            path=p,
        )
    return found.name


def _no_zip_reader(p: str) -> None:
    """Raise for a zip archive no reader takes: damaged, or holding none of the known layouts."""
    if zip_names(p) is None:
        raise FormatError(
            f"'{p}' starts like a zip archive but cannot be read as one (truncated or damaged)",
            path=p,
        )
    kinds = [r.in_zip for r in READERS if r.in_zip]
    raise FormatError(
        f"'{p}' is a zip archive but neither {' nor '.join(kinds)}",
        path=p,
    )
