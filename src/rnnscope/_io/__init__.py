"""Checkpoint files read without their framework: detection, the Checkpoint record, ``load``.

Formats are recognised by content first (HDF5 signature, zip members, safetensors header),
extension second. Each reader lists a file's layers with their shapes only; a layer's arrays are
read when asked for, one tensor at a time.
"""

from __future__ import annotations

import gc
import os
import struct
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from .._adapters import LayerRef
from .._errors import FormatError, MissingDependencyError, RnnscopeError
from .._format import plain, valid_text
from .._model import LayerInfo, LayerWeights, RNNWeights

__all__ = ["FORMATS", "Checkpoint", "detect_format", "load", "open_checkpoint"]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
FORMATS = {
    "keras": "Keras 3 .keras archive (config.json + model.weights.h5)",
    "keras-h5": "Keras HDF5 weights: .weights.h5 (Keras 3) or legacy .h5 (Keras 3 and tf-keras, "
    "full model or weights only, CuDNN layers included)",
    "safetensors": "safetensors (torch state_dict key names)",
    "torch": "torch .pt / .pth state dict (torch.save)",
}


@dataclass(frozen=True)
class Checkpoint:
    """A model read from a file: its layers in order, each with kind, configuration and weights.

    Build one with :func:`rnnscope.load`. Every rnnscope function that takes a model also takes a
    Checkpoint or a path.

    Attributes:
        path: the file.
        format: one of ``FORMATS``.
        notes: what was inferred rather than read (cell kinds from shapes, assumed activations).
        framework: who wrote it, e.g. ``"keras 3.15.1"``, ``"tf_keras 2.21.0"``, ``"torch"``.
    """

    path: str
    format: str
    refs: tuple[LayerRef, ...] = field(repr=False)
    notes: tuple[str, ...] = ()
    framework: str = ""

    def layer_refs(self) -> list[LayerRef]:
        """The layers as :class:`LayerRef` records (used by the public functions)."""
        return list(self.refs)

    def layers(self) -> list[LayerInfo]:
        """Every layer with weights: name, kind, shapes as stored in the file."""
        return [r.info for r in self.refs]

    def rnn_weights(self, layer: str | int | None = None) -> RNNWeights:
        """Same as ``rnnscope.rnn_weights(self, layer)``."""
        from .._api import rnn_weights

        return rnn_weights(self, layer)

    def weights(self, layer: str | int | None = None) -> RNNWeights | LayerWeights:
        """Same as ``rnnscope.weights(self, layer)``."""
        from .._api import weights

        return weights(self, layer)


def _read_head(path: str, n: int = 16) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except IsADirectoryError as err:
        raise FormatError(f"'{path}' is a directory, not a checkpoint file") from err
    except OSError as err:
        raise FormatError(f"cannot read '{path}': {err.strerror or err}") from err


def _zip_kind(path: str) -> str | None:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return None
    if "config.json" in names and "model.weights.h5" in names:
        return "keras"
    if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        return "torch"
    return "zip"


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format of a checkpoint file, from its content first and its extension second."""
    from ._limits import regular_file

    p = os.fspath(path)
    size = regular_file(p)  # a FIFO or device would block or never end
    head = _read_head(p)
    if size == 0:
        raise FormatError(f"'{p}' is empty (0 bytes); expected one of: {_supported()}")
    if head.startswith(HDF5_MAGIC):
        return "keras-h5"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        kind = _zip_kind(p)
        if kind in ("keras", "torch"):
            return kind
        if kind is None:
            raise FormatError(
                f"'{p}' starts like a zip archive but cannot be read as one (truncated or damaged)"
            )
        raise FormatError(
            f"'{p}' is a zip archive but neither a Keras .keras file (config.json + "
            "model.weights.h5) nor a torch checkpoint (data.pkl)"
        )
    ext = p.lower()
    if head.startswith(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"):
        return "torch"  # torch.save's legacy (non-zip) format: a pickled magic number first
    if head[8:9] == b"{" or ext.endswith(".safetensors"):
        return "safetensors"  # its reader checks the declared header size against the file
    if ext.endswith((".pt", ".pth", ".bin")) and head[:1] == b"\x80":
        return "torch"  # a legacy (non-zip) torch.save pickle
    raise FormatError(
        f"'{p}' is not a checkpoint rnnscope can read (first bytes {head[:8]!r}); "
        f"supported: {_supported()}"
    )


def _supported() -> str:
    return "; ".join(f"{k}: {v}" for k, v in FORMATS.items())


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
def _reported(path: str, failure: str) -> Iterator[None]:
    """Any read failure inside as a FormatError naming ``path``; ``failure`` prefixes the
    low-level cause. A missing optional dependency passes through as it is."""
    try:
        yield
    except FormatError as err:
        if path in str(err):
            raise
        raise FormatError(f"'{path}': {err}") from err
    except MissingDependencyError:
        raise
    except (RnnscopeError, *_LOW_LEVEL) as err:
        raise FormatError(f"{failure}: {type(err).__name__}: {err}") from err


def _guard_ref(path: str, ref: LayerRef) -> LayerRef:
    """The same layer, whose extraction reports any failure as a FormatError naming the file.

    Names are made valid UTF-8 here (a lone surrogate, from undecodable bytes, becomes U+FFFD),
    so that every output (terminal, CSV, JSON, HTML, figures) can encode them.
    """
    info = ref.info
    name = valid_text(info.name)
    if name != info.name or any(valid_text(k) != k for k in info.shapes):
        info = replace(info, name=name, shapes={valid_text(k): v for k, v in info.shapes.items()})

    def extract() -> RNNWeights | LayerWeights:
        with _reported(path, f"'{path}': cannot read layer '{plain(name)}' ({info.kind})"):
            rec = ref.extract()
            if isinstance(rec, LayerWeights) and any(valid_text(k) != k for k in rec.weights):
                weights = {valid_text(k): v for k, v in rec.weights.items()}
                rec = replace(rec, weights=weights)
            clean = valid_text(rec.name)
            return rec if clean == rec.name else replace(rec, name=clean)
        raise AssertionError("unreachable")  # for type checkers: _reported re-raises

    return LayerRef(info, extract)


def open_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Open a checkpoint file and list its layers (arrays are read later, on demand)."""
    p = os.fspath(path)
    fmt = detect_format(p)
    collecting = gc.isenabled()
    gc.disable()  # listing builds many small objects (100k tensors): no collector passes meanwhile
    try:
        with _reported(p, f"'{p}' looks like {FORMATS[fmt]} but cannot be read"):
            ckpt = _read(p, fmt)
        refs = tuple(_guard_ref(p, r) for r in ckpt.refs)
    finally:
        if collecting:
            gc.enable()
    notes = tuple(valid_text(n) for n in ckpt.notes)
    return Checkpoint(ckpt.path, ckpt.format, refs, notes, ckpt.framework)


def _read(p: str, fmt: str) -> Checkpoint:
    if fmt in ("keras", "keras-h5"):
        from ._keras_h5 import read_keras

        return read_keras(p, fmt)
    if fmt == "safetensors":
        from ._safetensors import read_safetensors

        return read_safetensors(p)
    from ._torch_pt import read_torch

    return read_torch(p)


def load(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint file into a framework-neutral :class:`Checkpoint`.

    Args:
        path: a ``.keras``, ``.weights.h5``, legacy ``.h5``, ``.safetensors`` or ``.pt``/``.pth``
            file. The format is detected from the content.

    Example:
        >>> ckpt = rnnscope.load("model.keras")  # doctest: +SKIP
        >>> [(i.name, i.kind) for i in ckpt.layers()]  # doctest: +SKIP
        [('lstm', 'LSTM'), ('dense', 'Dense')]
    """
    return open_checkpoint(path)
