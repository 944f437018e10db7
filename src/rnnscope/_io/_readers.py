"""The built-in readers: Keras ``.keras`` and HDF5, safetensors, torch ``.pt``.

Each class only recognises its format; the reading code lives in the modules its ``open``
imports (``_keras_h5``, ``_safetensors``, ``_torch_pt``), so ``import rnnscope`` loads none of
them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._reader import ZIP_MAGIC, Match, Reader, zip_names

if TYPE_CHECKING:
    from ._checkpoint import Checkpoint

__all__ = ["KerasH5Reader", "KerasReader", "SafetensorsReader", "TorchReader"]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# torch.save's legacy (non-zip) format: a pickled magic number first
TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"


class KerasReader(Reader):
    """Keras 3 ``.keras``: a zip of ``config.json`` and ``model.weights.h5``."""

    name = "keras"
    description = "Keras 3 .keras archive (config.json + model.weights.h5)"
    suffixes = (".keras",)
    in_zip = "a Keras .keras file (config.json + model.weights.h5)"

    def guess_can_open(self, path: str, head: bytes) -> Match:
        if not head.startswith(ZIP_MAGIC):
            return Match.NO
        names = zip_names(path) or frozenset()
        return Match.CONTENT if {"config.json", "model.weights.h5"} <= names else Match.NO

    def open(self, path: str) -> Checkpoint:
        from ._keras_h5 import read_keras

        return read_keras(path, self.name)


class KerasH5Reader(Reader):
    """Keras HDF5 weights, by the HDF5 signature: ``.weights.h5`` and legacy ``.h5``."""

    name = "keras-h5"
    description = (
        "Keras HDF5 weights: .weights.h5 (Keras 3) or legacy .h5 (Keras 3 and tf-keras, "
        "full model or weights only, CuDNN layers included)"
    )
    suffixes = (".h5", ".hdf5")

    def guess_can_open(self, path: str, head: bytes) -> Match:
        return Match.CONTENT if head.startswith(HDF5_MAGIC) else Match.NO

    def open(self, path: str) -> Checkpoint:
        from ._keras_h5 import read_keras

        return read_keras(path, self.name)


class SafetensorsReader(Reader):
    """safetensors: an 8-byte header length, then the JSON header (``{``)."""

    name = "safetensors"
    description = "safetensors (torch state_dict key names)"
    suffixes = (".safetensors",)

    def guess_can_open(self, path: str, head: bytes) -> Match:
        if head[8:9] == b"{":
            return Match.CONTENT  # open() checks the declared header size against the file
        return Match.NAME if self.named(path) else Match.NO

    def open(self, path: str) -> Checkpoint:
        from ._safetensors import read_safetensors

        return read_safetensors(path)


class TorchReader(Reader):
    """``torch.save`` files: a zip holding ``data.pkl``, or the legacy pickle."""

    name = "torch"
    description = "torch .pt / .pth state dict (torch.save)"
    suffixes = (".pt", ".pth")
    in_zip = "a torch checkpoint (data.pkl)"
    pickle_suffixes = (".pt", ".pth", ".bin")  # names a bare pickle is taken as torch's by

    def guess_can_open(self, path: str, head: bytes) -> Match:
        if head.startswith(ZIP_MAGIC):
            names = zip_names(path) or frozenset()
            pickled = any(n == "data.pkl" or n.endswith("/data.pkl") for n in names)
            return Match.CONTENT if pickled else Match.NO
        if head.startswith(TORCH_LEGACY_MAGIC):
            return Match.CONTENT
        if path.lower().endswith(self.pickle_suffixes) and head[:1] == b"\x80":
            return Match.NAME  # a legacy pickle without the magic number first
        return Match.NO

    def open(self, path: str) -> Checkpoint:
        from ._torch_pt import read_torch

        return read_torch(path)
