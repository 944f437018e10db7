"""The HDF5 side of the reader process: open a file, vet its structure, list it, read datasets.

Everything here runs inside the reader process started by :mod:`rnnscope._io._h5proc`; the user's
process never calls libhdf5 on an untrusted file. Every time a file is opened it is first scanned
with h5py's low-level API, following hard links only, without reading any data:

* an **external link** (a link into another HDF5 file), or any link type other than hard and
  soft, refuses the file;
* a dataset with **external raw storage** (bytes kept in other files, e.g. ``/dev/zero`` or
  ``/etc/passwd``) or a **virtual layout** (data mapped from other datasets, in this file or
  another; a self-referencing one crashes libhdf5) refuses the file;
* the walk stops past ``MAX_OBJECTS`` objects or ``MAX_DEPTH`` levels, and attributes larger than
  ``MAX_ATTR_BYTES`` are refused, so metadata cannot make the listing unbounded.

A dataset is read only after its declared size is checked (:func:`._limits.check_declared`)
against the bytes the file really stores for it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .._errors import FormatError
from ._limits import check_declared
from ._remote import is_url, open_binary, sharing

__all__ = ["list_file", "open_vetted", "read_datasets"]

MAX_OBJECTS = 200_000
MAX_DEPTH = 64
MAX_ATTR_BYTES = 64 << 20


def _name(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _member_size(path: str, fmt: str) -> int:
    if fmt != "keras":
        if is_url(path):
            from ._remote import size

            return size(path)
        return os.path.getsize(path)
    import zipfile

    with open_binary(path, "blockcache") as fh, zipfile.ZipFile(fh) as zf:
        return int(zf.getinfo("model.weights.h5").file_size)


@contextmanager
def open_vetted(path: str, fmt: str) -> Iterator[Any]:
    """The Keras HDF5 file of ``path`` (inside the zip for ``.keras``), opened and vetted."""
    import h5py

    from ._zipwindow import open_member

    where = f"'{path}'" + (" (model.weights.h5)" if fmt == "keras" else "")
    if fmt == "keras":
        with open_member(path, "model.weights.h5") as fh, h5py.File(fh, "r") as f:
            vet(f, where, path)
            yield f
    elif is_url(path):  # through fsspec's block cache: libhdf5's small reads, few requests
        with open_binary(path, "blockcache") as fh, h5py.File(fh, "r") as f:
            vet(f, where, path)
            yield f
    else:
        with h5py.File(path, "r") as f:
            vet(f, where, path)
            yield f


def vet(f: Any, where: str, path: str | None = None) -> None:
    """Refuse anything that reaches outside the file or makes the walk unbounded."""
    from h5py import h5a, h5d, h5l, h5o

    seen: set[int] = set()
    count = 0

    def attrs(oid: Any, at: str) -> None:
        for i in range(h5a.get_num_attrs(oid)):
            aid = h5a.open(oid, index=i)
            n = int(np.prod(aid.shape or (), dtype=object)) * max(aid.dtype.itemsize, 1)
            if n > MAX_ATTR_BYTES:
                raise FormatError(
                    f"{where}: attribute '{_name(aid.name)}' of '{at}' declares {n} bytes "
                    f"(limit {MAX_ATTR_BYTES})",
                    path=path,
                )

    def walk(gid: Any, at: str, depth: int) -> None:
        nonlocal count
        if depth > MAX_DEPTH:
            raise FormatError(
                f"{where}: groups nested deeper than {MAX_DEPTH} levels at '{at}'", path=path
            )
        for raw in gid:
            count += 1
            if count > MAX_OBJECTS:
                raise FormatError(
                    f"{where}: more than {MAX_OBJECTS} objects; refusing to list", path=path
                )
            sub = f"{at.rstrip('/')}/{_name(raw)}"
            kind = gid.links.get_info(raw).type
            if kind == h5l.TYPE_SOFT:
                continue  # a path inside this file, resolved by libhdf5 with its own hop limit
            if kind == h5l.TYPE_EXTERNAL:
                target = gid.links.get_val(raw)
                raise FormatError(
                    f"{where}: '{sub}' is an external link to {_name(target[0])!r}; rnnscope "
                    "reads nothing outside the checkpoint file",
                    path=path,
                )
            if kind != h5l.TYPE_HARD:
                raise FormatError(
                    f"{where}: '{sub}' is a user-defined link (type {kind})", path=path
                )
            oid = h5o.open(gid, raw)
            info = h5o.get_info(oid)
            attrs(oid, sub)
            if info.addr in seen:
                continue
            seen.add(info.addr)
            if info.type == h5o.TYPE_GROUP:
                walk(oid, sub, depth + 1)
            elif info.type == h5o.TYPE_DATASET:
                dcpl = oid.get_create_plist()
                if dcpl.get_layout() == h5d.VIRTUAL:
                    raise FormatError(
                        f"{where}: dataset '{sub}' is a virtual dataset (its data is mapped from "
                        "other datasets, possibly in other files or itself); rnnscope reads "
                        "only data stored in the checkpoint",
                        path=path,
                    )
                if dcpl.get_external_count() > 0:
                    files = [
                        _name(dcpl.get_external(i)[0]) for i in range(dcpl.get_external_count())
                    ]
                    raise FormatError(
                        f"{where}: dataset '{sub}' keeps its data in external files {files}; "
                        "rnnscope reads nothing outside the checkpoint file",
                        path=path,
                    )

    attrs(f.id, "/")
    walk(f.id, "/", 0)


def list_file(path: str, fmt: str, config: Any, version: str) -> dict[str, Any]:
    """The listing of a Keras HDF5 file as plain JSON-able data."""
    from ._keras_tree import list_tree

    with sharing(), open_vetted(path, fmt) as f:  # one handle on a remote file
        raws, shapes, notes, version, config = list_tree(f, fmt, path, config, version)
    return {
        "raws": [
            {
                "path": r.path,
                "class_hint": r.class_hint,
                "variables": r.variables,
                "cell_index": r.cell_index,
            }
            for r in raws
        ],
        "shapes": {p: list(s) for p, s in shapes.items()},
        "notes": notes,
        "version": version,
        "config": config,
    }


def _stored(ds: Any, declared: int, size: int, path: str, name: str) -> int:
    """Bytes the file holds for a dataset; a contiguous one must lie inside the file."""
    from h5py import h5d

    dsid = ds.id
    layout = dsid.get_create_plist().get_layout()
    if layout == h5d.CONTIGUOUS:
        offset = dsid.get_offset()
        if offset is None:
            return 0  # never written: it would read as fill values
        if offset + declared > size:
            raise FormatError(
                f"'{path}': dataset '{name}' ({declared} bytes at offset {offset}) runs past the "
                f"end of the {size}-byte file (truncated)",
                path=path,
            )
        return declared
    return int(dsid.get_storage_size())


def read_datasets(path: str, fmt: str, names: list[str]) -> Iterator[np.ndarray]:
    """The datasets ``names`` of a vetted file, one at a time (the caller sends each on before
    the next is read), each checked against the read bounds first. All are checked before the
    first is read."""
    with sharing():  # one handle (one block cache) on a remote file for the whole request
        yield from _read_datasets(path, fmt, names)


def _read_datasets(path: str, fmt: str, names: list[str]) -> Iterator[np.ndarray]:
    size = _member_size(path, fmt)
    with open_vetted(path, fmt) as f:
        for p in names:
            ds = f[p]
            if ds.dtype.kind not in "fiub":
                raise FormatError(
                    f"'{path}': dataset '{p}' holds {ds.dtype}, not numbers", path=path
                )
            if ds.dtype.itemsize > 8:
                raise FormatError(
                    f"'{path}': dataset '{p}' declares {ds.dtype} ({ds.dtype.itemsize} bytes a "
                    "value); weights are stored as numbers of at most 8 bytes (float16/32/64), so "
                    "the file is damaged or not a weights file",
                    path=path,
                )
            declared = int(np.prod(ds.shape, dtype=object)) * ds.dtype.itemsize
            check_declared(
                path,
                f"dataset '{p}' {tuple(ds.shape)}",
                declared,
                _stored(ds, declared, size, path, p),
            )
        for p in names:
            yield np.ascontiguousarray(f[p][()])


def dumps(obj: Any) -> bytes:
    """JSON with lone surrogates kept (as escapes) and tuples as lists."""
    return json.dumps(obj, ensure_ascii=True).encode("ascii")
