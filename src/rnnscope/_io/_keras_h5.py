"""Keras files listed and read: ``.keras`` archives and Keras HDF5 weights (``.weights.h5``,
legacy ``.h5`` from Keras 3 or tf-keras, full model or weights only, CuDNN layers included).

All HDF5 access happens in the reader process (``_h5proc``), which walks the tree with
``_keras_tree``; here the listing becomes layers (``_keras_layers``) and a :class:`Checkpoint`.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np

from .._errors import FormatError
from .._model import readonly
from ._checkpoint import Checkpoint
from ._h5proc import call
from ._keras_config import parse_model_config
from ._keras_layers import build_refs
from ._keras_tree import RawLayer
from ._limits import check_declared
from ._remote import is_url, open_binary

__all__ = ["check_members", "read_keras"]

MAX_JSON = 64 << 20  # bytes of config/metadata JSON read at most


def _keras_json(zf: zipfile.ZipFile, member: str, path: str) -> Any:
    info = zf.getinfo(member)
    if info.file_size > MAX_JSON:
        raise FormatError(
            f"'{path}': {member} declares {info.file_size} bytes; refusing more than {MAX_JSON}",
            path=path,
        )
    try:
        return json.loads(zf.read(member).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise FormatError(f"'{path}': {member} is not valid JSON: {err}", path=path) from err


def check_members(zf: zipfile.ZipFile, path: str) -> None:
    """Refuse archives whose member names could point outside an extraction folder."""
    for n in zf.namelist():
        parts = n.replace("\\", "/").split("/")
        if n.startswith(("/", "\\")) or ".." in parts or (len(n) > 1 and n[1] == ":"):
            raise FormatError(
                f"'{path}': zip member name {n!r} is unsafe (absolute or '..')", path=path
            )


def read_keras(path: str, fmt: str) -> Checkpoint:
    """Open a Keras file and list its layers (all HDF5 access in the reader process)."""

    config: Any = None
    version = ""
    if fmt == "keras":
        with open_binary(path, "blockcache") as fh, zipfile.ZipFile(fh) as zf:
            check_members(zf, path)
            if "model.weights.h5" in zf.namelist():  # a compressed member may not inflate 1000x
                info = zf.getinfo("model.weights.h5")
                check_declared(
                    path, "zip member 'model.weights.h5'", info.file_size, info.compress_size
                )
            config = _keras_json(zf, "config.json", path)
            if "metadata.json" in zf.namelist():
                meta = _keras_json(zf, "metadata.json", path)
                version = str(meta.get("keras_version", "")) if isinstance(meta, dict) else ""
    request = {"op": "list", "path": path, "fmt": fmt, "config": config, "version": version}
    request.update(_remote_spec(path))
    got = call(request, path, "the HDF5 tree")
    raws = [
        RawLayer(
            str(r["path"]),
            {str(d): [(str(n), str(p)) for n, p in vs] for d, vs in r["variables"].items()},
            str(r["class_hint"]),
            None if r.get("cell_index") is None else int(r["cell_index"]),
        )
        for r in got["raws"]
    ]
    shapes = {str(p): tuple(int(x) for x in s) for p, s in got["shapes"].items()}
    notes = [str(n) for n in got["notes"]]
    version = str(got["version"])
    spec = parse_model_config(got["config"])
    framework = f"tf_keras {version}" if version.startswith("2") else f"keras {version}"
    keras2 = version.startswith(("1", "2"))
    refs = build_refs(raws, spec, shapes, keras2, _reader(path, fmt, shapes), notes, path)
    return Checkpoint(path, fmt, tuple(refs), tuple(notes), framework.strip())


def _remote_spec(path: str) -> dict[str, Any]:
    """For a URL: how the reader process opens it (the filesystem the caller gave, if any)."""
    if not is_url(path):
        return {}
    from ._remote_spec import spec

    return {"remote": spec(path)}


def _reader(
    path: str, fmt: str, shapes: dict[str, tuple[int, ...]]
) -> Callable[[list[str]], list[np.ndarray]]:
    listed = _remote_spec(path)  # a remote file: the size and ETag it was listed at

    def read(paths: list[str]) -> list[np.ndarray]:
        size = sum(8 * int(np.prod(shapes.get(p, ()), dtype=object)) for p in paths)
        request = {"op": "read", "path": path, "fmt": fmt, "names": paths, **listed}
        arrays = call(request, path, "datasets " + ", ".join(paths), size)
        return [readonly(a) for a in arrays]

    return read
