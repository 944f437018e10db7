"""safetensors files, read here from the checked header (the format is a JSON header and raw
little-endian bytes; no package is needed).

The header is parsed once per file and checked first (size, JSON, dtypes, shapes, offsets inside
the file, consistent with the shapes and tiling the data section), so a lying or absurd header is
a FormatError before any tensor is touched. Tensors are then read one at a time from their
checked offsets (listing and reading are linear in the number of tensors); bfloat16, which numpy
lacks, is widened to float32.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from .._errors import FormatError
from .._model import readonly
from ._checkpoint import Checkpoint
from ._limits import check_declared
from ._remote import is_url, open_binary
from ._torch_keys import build_torch_refs

__all__ = ["read_safetensors"]

MAX_HEADER = 100 << 20
_ITEMSIZE = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U64": 8,
    "U32": 4,
    "U16": 2,
    "U8": 1,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}


def _size(path: str) -> int:
    if is_url(path):
        from ._remote import size

        return size(path)
    return os.path.getsize(path)


def _header(path: str) -> tuple[dict[str, Any], int]:
    size = _size(path)
    with open_binary(path) as fh:  # remote: two range requests, the length then the header
        head = fh.read(8)
        if len(head) < 8:
            raise FormatError(
                f"'{path}': safetensors file shorter than its 8-byte header length", path=path
            )
        n = int.from_bytes(head, "little")
        if n > min(size - 8, MAX_HEADER):
            raise FormatError(
                f"'{path}': safetensors header declares {n} bytes, but the file has "
                f"{size - 8} after the length field (limit {MAX_HEADER})",
                path=path,
            )
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise FormatError(
            f"'{path}': safetensors header is not valid JSON: {err}", path=path
        ) from err
    if not isinstance(header, dict):
        raise FormatError(
            f"'{path}': safetensors header is a {type(header).__name__}, not a map", path=path
        )
    return header, size - 8 - n


def _valid_shape(meta: Any, data_size: int) -> tuple[int, ...] | None:
    """The shape of a well-formed header entry, or None to let :func:`_check` say what is wrong
    (the fast path: a file of 100k tensors is listed in linear time, without per-entry
    generators)."""
    if type(meta) is not dict:
        return None
    shape, offsets = meta.get("shape"), meta.get("data_offsets")
    need = _ITEMSIZE.get(meta.get("dtype"))  # type: ignore[arg-type]
    if need is None or type(shape) is not list or type(offsets) is not list or len(offsets) != 2:
        return None
    lo, hi = offsets
    if type(lo) is not int or type(hi) is not int or not 0 <= lo <= hi <= data_size:
        return None
    for s in shape:
        if type(s) is not int or s < 0:
            return None
        need *= s
    return tuple(shape) if hi - lo == need else None


def _check(path: str, key: str, meta: Any, data_size: int) -> tuple[int, ...]:
    shape = _valid_shape(meta, data_size)
    if shape is not None:
        return shape
    if not isinstance(meta, dict):
        raise FormatError(f"'{path}': tensor '{key}' has a malformed header entry", path=path)
    dtype, shape, offsets = meta.get("dtype"), meta.get("shape"), meta.get("data_offsets")
    if dtype not in _ITEMSIZE:
        raise FormatError(f"'{path}': tensor '{key}' has unknown dtype {dtype!r}", path=path)
    if not (isinstance(shape, list) and all(isinstance(s, int) and s >= 0 for s in shape)):
        raise FormatError(f"'{path}': tensor '{key}' has an invalid shape {shape!r}", path=path)
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(isinstance(o, int) for o in offsets)
        and 0 <= offsets[0] <= offsets[1]
    ):
        raise FormatError(
            f"'{path}': tensor '{key}' has invalid data_offsets {offsets!r}", path=path
        )
    need = math.prod(shape) * _ITEMSIZE[dtype]
    if offsets[1] > data_size or offsets[1] - offsets[0] != need:
        raise FormatError(
            f"'{path}': tensor '{key}' ({dtype} {shape}, {need} bytes) has "
            f"data_offsets {offsets}, but the data section holds {data_size} bytes",
            path=path,
        )
    return tuple(shape)


def read_safetensors(path: str) -> Checkpoint:
    """Open a safetensors file and list its layers."""

    header, data_size = _header(path)
    entries = [(k, _check(path, k, v, data_size)) for k, v in header.items() if k != "__metadata__"]
    entries.sort(key=lambda kv: header[kv[0]]["data_offsets"][0])
    end = 0
    for k, _ in entries:  # tensors must tile the data section: no gaps, no overlaps
        lo, hi = header[k]["data_offsets"]
        if lo != end:
            raise FormatError(
                f"'{path}': tensor '{k}' starts at byte {lo} of the data section; "
                f"expected {end} (tensors overlap or leave a gap)",
                path=path,
            )
        end = hi
    if end != data_size:
        raise FormatError(
            f"'{path}': the tensors cover {end} bytes of a {data_size}-byte data section", path=path
        )
    total = _size(path)
    data_start = total - data_size

    def read(keys: list[str]) -> list[np.ndarray]:
        # remote: one range request per tensor, its bytes only (the size known: no lookup)
        with open_binary(path, size=total) as fh:
            return [_tensor(path, fh, data_start, k, header[k]) for k in keys]

    notes: list[str] = []
    refs = build_torch_refs(entries, read, notes, path)
    return Checkpoint(path, "safetensors", tuple(refs), tuple(notes), "torch (safetensors)")


_NUMPY = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U64": "<u8",
    "U32": "<u4",
    "U16": "<u2",
    "U8": "u1",
    "BOOL": "?",
}


def _tensor(path: str, fh: Any, start: int, key: str, meta: dict[str, Any]) -> np.ndarray:
    """One tensor, from offsets already checked against the file."""
    dtype = meta["dtype"]
    if dtype.startswith("F8"):
        raise FormatError(
            f"'{path}': tensor '{key}' is {dtype} (8-bit float), which numpy cannot hold; "
            "rnnscope reads float64/32/16, bfloat16 and integer tensors",
            path=path,
        )
    lo, hi = meta["data_offsets"]
    check_declared(path, f"tensor '{key}' {tuple(meta['shape'])}", hi - lo, hi - lo)
    fh.seek(start + lo)
    raw = fh.read(hi - lo)
    if len(raw) != hi - lo:
        raise FormatError(f"'{path}': tensor '{key}' is cut short (the file changed?)", path=path)
    if dtype == "BF16":
        wide = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return readonly(wide.view(np.float32).reshape(meta["shape"]))
    a = np.frombuffer(raw, dtype=_NUMPY[dtype]).reshape(meta["shape"])
    return readonly(a.astype(a.dtype.newbyteorder("="), copy=False))
