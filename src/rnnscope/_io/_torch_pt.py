"""torch ``.pt`` / ``.pth`` files: ``torch.load(weights_only=True)``, never a full unpickle.

``weights_only`` refuses any pickle that would build objects other than tensors and plain
containers, so a file crafted to run code is a FormatError, not an execution.

``mmap=True`` (tensors read from the file on demand, memory bounded by what is used) skips checks
that the plain load makes: it takes a storage's bytes from the file at the record's offset without
decompressing the record or checking its size. It is used only when it is proven to read the same
bytes: every storage record is stored uncompressed and holds exactly the bytes the pickle declares
for it (read from the pickle's opcodes, never by running it). Otherwise the plain load runs, which
decompresses records and checks their sizes itself. Before either, every zip member's size is
checked against the read budget and compression ratio (:mod:`._limits`), and after, every tensor's
size against the bytes of its storage (a zero-stride view of one number cannot claim gigabytes).
"""

from __future__ import annotations

import io
import pickletools
import re
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._errors import FormatError, MissingDependencyError
from .._model import readonly
from ._checkpoint import Checkpoint
from ._limits import check_declared
from ._remote import is_url
from ._torch_keys import build_torch_refs

__all__ = ["read_torch"]

_WRAPPERS = ("state_dict", "model_state_dict", "model", "module", "net")
_ELEMENT = {
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "ComplexFloatStorage": 8,
    "ComplexDoubleStorage": 16,
}
_TO_MARK = {
    "LIST",
    "DICT",
    "SETITEMS",
    "APPENDS",
    "ADDITEMS",
    "FROZENSET",
    "OBJ",
    "INST",
    "POP_MARK",
}
_GETS = {"GET", "BINGET", "LONG_BINGET"}
_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}


def declared_storages(pickled: bytes) -> dict[str, int] | None:
    """Storage key -> bytes declared by a torch pickle, read from its opcodes (nothing runs).

    A persistent id is ``('storage', torch.<Type>Storage, key, location, numel)``, built from
    plain values between a MARK and a TUPLE. None when the pickle uses anything else to build
    one (then nothing is proven and the caller does not map the file).
    """
    frames: list[list[object]] = [[]]
    memo: dict[object, object] = {}
    out: dict[str, int] = {}
    unknown = object()
    try:
        for op, arg, _ in pickletools.genops(pickled):
            top = frames[-1]
            name = op.name
            if name == "MARK":
                frames.append([])
            elif name == "TUPLE":
                items = tuple(frames.pop()) if len(frames) > 1 else (unknown,)
                frames[-1].append(items)
            elif name in _TO_MARK:
                if len(frames) > 1:
                    frames.pop()
                frames[-1].append(unknown)
            elif name in _PUTS:
                memo[arg] = top[-1] if top else unknown
            elif name == "MEMOIZE":
                memo[len(memo)] = top[-1] if top else unknown
            elif name in _GETS:
                top.append(memo.get(arg, unknown))
            elif name == "GLOBAL":
                top.append(str(arg))
            elif name == "BINPERSID":
                pid = top.pop() if top else unknown
                if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
                    return None
                kind, key, numel = str(pid[1]).rpartition(" ")[2], pid[2], pid[4]
                if kind not in _ELEMENT or not isinstance(key, str) or not isinstance(numel, int):
                    return None
                out[key] = numel * _ELEMENT[kind]
                top.append(unknown)
            elif isinstance(arg, (str, int)) and not isinstance(arg, bool) and op.arg is not None:
                top.append(arg)
            else:
                top.append(unknown)
    except ValueError:
        return None
    return out


def _plan(path: str, src: Any) -> bool:
    """Check a zip checkpoint's members; True when mapping it reads what torch.load would."""
    with zipfile.ZipFile(src) as zf:
        infos = zf.infolist()
        for i in infos:
            check_declared(path, f"zip member '{i.filename}'", i.file_size, i.compress_size)
        pkl = next((i for i in infos if i.filename.endswith("data.pkl")), None)
        if pkl is None:
            return False
        prefix = pkl.filename[: -len("data.pkl")] + "data/"
        records = {i.filename[len(prefix) :]: i for i in infos if i.filename.startswith(prefix)}
        declared = declared_storages(zf.read(pkl))
    if declared is None:
        return False
    for key, nbytes in declared.items():
        rec = records.get(key)
        if rec is None:
            raise FormatError(
                f"'{path}': the pickle uses storage '{key}', which has no record", path=path
            )
        if rec.file_size != nbytes:
            raise FormatError(
                f"'{path}': storage record '{prefix}{key}' holds {rec.file_size} bytes; the "
                f"pickle declares {nbytes} (truncated or altered)",
                path=path,
            )
    return all(i.compress_type == zipfile.ZIP_STORED for i in records.values())


def _is_state_dict(obj: Any, torch: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def read_torch(path: str) -> Checkpoint:
    """Open a torch checkpoint and list its layers."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise MissingDependencyError(
            f"reading '{path}' (a torch checkpoint) needs torch, which is not installed; install "
            "it with: pip install 'rnnscope[torch]' (or save the state dict as .safetensors, "
            "which rnnscope reads without torch)",
            path=path,
        )
    import pickle

    import torch

    src: Any = path
    if is_url(path):  # the whole object, once, in memory (torch.load cannot map a remote file)
        from ._remote import read_all_bytes

        src = io.BytesIO(read_all_bytes(path))
    mmap = _plan(path, src) if zipfile.is_zipfile(src) else False
    if not isinstance(src, str):
        src.seek(0)
        mmap = False
    try:
        obj = torch.load(src, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        plain = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()  # torch colours its advice
        first = plain.splitlines()[0] if plain else type(err).__name__
        raise FormatError(
            f"'{path}': refused to unpickle: the file holds objects other than tensors, and "
            f"rnnscope only loads with weights_only=True ({first})",
            path=path,
        ) from err
    notes: list[str] = []
    state = obj
    if not _is_state_dict(state, torch):
        inner = next(
            (
                k
                for k in _WRAPPERS
                if isinstance(obj, Mapping) and _is_state_dict(obj.get(k), torch)
            ),
            None,
        )
        if inner is None:
            keys = list(obj)[:10] if isinstance(obj, Mapping) else type(obj).__name__
            raise FormatError(
                f"'{path}': expected a state dict (tensor names -> tensors) or a "
                f"checkpoint holding one under {', '.join(_WRAPPERS)}; found {keys}",
                path=path,
            )
        state = obj[inner]
        notes.append(f"weights read from the checkpoint's '{inner}' entry")
    for k, v in state.items():
        check_declared(
            path,
            f"tensor '{k}' {tuple(v.shape)}",
            v.numel() * v.element_size(),
            v.untyped_storage().nbytes() if v.numel() else 0,
        )
    entries = [(k, tuple(int(s) for s in v.shape)) for k, v in state.items()]

    def read(keys: list[str]) -> list[np.ndarray]:
        out = []
        for k in keys:
            t = state[k].detach()
            t = t.float() if t.dtype == torch.bfloat16 else t
            out.append(readonly(np.array(t.numpy(), copy=True)))
        return out

    refs = build_torch_refs(entries, read, notes, path)
    return Checkpoint(path, "torch", tuple(refs), tuple(notes), f"torch {torch.__version__}")
