"""Checkpoint files read without their framework: ``load`` and the guards around every reader.

The formats are registered readers (``_registry``: detection, the format list, the suffixes a
folder is searched for); each reader lists a file's layers with their shapes only, and a layer's
arrays are read when asked for, one tensor at a time. Here every failure inside a reader becomes
a :class:`FormatError` naming the file (``.path``) and, past listing, the layer (``.layer``).
"""

from __future__ import annotations

import gc
import os
import struct
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from .._errors import FormatError, MissingDependencyError, RnnscopeError
from .._format import plain, valid_text
from .._model import LayerWeights, RNNWeights
from .._refs import LayerRef
from ._checkpoint import Checkpoint
from ._reader import Match, Reader
from ._registry import (
    FORMATS,
    checkpoint_suffixes,
    detect_format,
    reader_for,
    register,
    unregister,
)
from ._remote import hold, is_remote, pinned, sharing

__all__ = [
    "FORMATS",
    "Checkpoint",
    "Match",
    "Reader",
    "checkpoint_suffixes",
    "detect_format",
    "is_remote",
    "load",
    "open_checkpoint",
    "register",
    "unregister",
]

_LOW_LEVEL = (
    OSError,
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    EOFError,
    RuntimeError,
    AttributeError,
    UnicodeDecodeError,
    zipfile.BadZipFile,
    OverflowError,
    MemoryError,
    struct.error,
)


@contextmanager
def _reported(path: str, failure: str, layer: str | None = None) -> Iterator[None]:
    """Any read failure inside as a FormatError about ``path`` (and ``layer``, if given).

    A FormatError already about ``path`` passes through (its ``.layer`` filled in if empty);
    one about no file gets the path in front of its message. ``failure`` prefixes any other
    cause. A missing optional dependency passes through as it is.
    """
    try:
        yield
    except FormatError as err:
        if err.path == path:
            if err.layer is None:
                err.layer = layer
            raise
        raise FormatError(f"'{path}': {err}", path=path, layer=err.layer or layer) from err
    except MissingDependencyError:
        raise
    except (RnnscopeError, *_LOW_LEVEL) as err:
        raise FormatError(
            f"{failure}: {type(err).__name__}: {err}", path=path, layer=layer
        ) from err


def _guard_ref(path: str, ref: LayerRef, given: Any = None) -> LayerRef:
    """The same layer, whose extraction reports any failure as a FormatError naming the file.

    Names are made valid UTF-8 here (a lone surrogate, from undecodable bytes, becomes U+FFFD),
    so that every output (terminal, CSV, JSON, HTML, figures) can encode them. ``given`` (a
    filesystem object's token) is kept by the layer, which may be read after its checkpoint is
    gone.
    """
    info = ref.info
    name = valid_text(info.name)
    if name != info.name or any(valid_text(k) != k for k in info.shapes):
        info = replace(info, name=name, shapes={valid_text(k): v for k, v in info.shapes.items()})

    def extract() -> RNNWeights | LayerWeights:
        _ = given  # held while this layer can be read
        with _reported(path, f"'{path}': cannot read layer '{plain(name)}' ({info.kind})", name):
            rec = ref.extract()
            if isinstance(rec, LayerWeights) and any(valid_text(k) != k for k in rec.weights):
                weights = {valid_text(k): v for k, v in rec.weights.items()}
                rec = replace(rec, weights=weights)
            clean = valid_text(rec.name)
            return rec if clean == rec.name else replace(rec, name=clean)
        raise AssertionError("unreachable")  # for type checkers: _reported re-raises

    return LayerRef(info, extract)


def open_checkpoint(path: Any) -> Checkpoint:
    """Open a checkpoint file and list its layers (arrays are read later, on demand).

    ``path`` is a local path, a URL fsspec understands, an ``(fsspec filesystem, path)`` pair or
    an ``fsspec.core.OpenFile`` (see ``_remote``).
    """
    if is_remote(path):
        url, given = hold(path)  # a filesystem object: used for the URL while the result lives
        with pinned(), sharing():  # size and tag fetched once, blocks shared by detection, reader
            return _open_checkpoint(url, given)
    return _open_checkpoint(os.fspath(path))


def _open_checkpoint(p: str, given: Any = None) -> Checkpoint:
    fmt = detect_format(p)
    collecting = gc.isenabled()
    gc.disable()  # listing builds many small objects (100k tensors): no collector passes meanwhile
    try:
        with _reported(p, f"'{p}' looks like {FORMATS[fmt]} but cannot be read"):
            ckpt = reader_for(fmt).open(p)
        refs = tuple(_guard_ref(p, r, given) for r in ckpt.refs)
    finally:
        if collecting:
            gc.enable()
    notes = tuple(valid_text(n) for n in ckpt.notes)
    return Checkpoint(ckpt.path, ckpt.format, refs, notes, ckpt.framework, given)


def load(path: Any) -> Checkpoint:
    """Read a checkpoint file into a framework-neutral :class:`Checkpoint`.

    Args:
        path: a ``.keras``, ``.weights.h5``, legacy ``.h5``, ``.safetensors``, ``.pt``/``.pth``
            or ONNX file. The format is detected from the content. A URL fsspec understands
            (``s3://bucket/ckpt.safetensors``), an ``(fsspec filesystem, path)`` pair or an
            ``fsspec.core.OpenFile`` is read by byte ranges (``pip install 'rnnscope[remote]'``).

    Example:
        >>> ckpt = rnnscope.load("model.keras")
        >>> [(i.name, i.kind) for i in ckpt.layers()]
        [('lstm', 'LSTM'), ('bidirectional', 'Bidirectional'), ('gru', 'GRU'), ('dense', 'Dense')]
    """
    return open_checkpoint(path)
