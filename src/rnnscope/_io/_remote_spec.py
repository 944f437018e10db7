"""How the HDF5 reader process opens a remote file the way the calling process does.

:func:`spec` describes it (fsspec's JSON of the filesystem, the path, and the size and ETag
already known), :func:`from_spec` sets it up on the other side. A ``memory://`` filesystem lives
in the calling process only: its object is copied once per version to a private temporary file,
which the reader process opens instead.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from typing import Any

from . import _remote

__all__ = ["from_spec", "spec"]


def spec(url: str) -> dict[str, Any]:
    """What another process needs to open ``url`` the same way: fsspec's JSON of the filesystem,
    the path, and the size and tag already known in this scope (sent over a pipe, never shown).

    A filesystem that lives in this process only (``memory://``) cannot be reopened elsewhere:
    the object is copied once per version to a private temporary file, which is sent instead.
    """
    fs, path = _remote.filesystem(url)
    pins = _remote._pins.get()
    known = (pins.info.get(url) if pins is not None else None) or {}
    out: dict[str, Any] = {"fs": str(fs.to_json()), "path": path, "url": url}
    if "size" in known:
        out["size"] = int(known["size"] or 0)
        if _remote._tag(known) is not None:
            out["tag"] = _remote._tag(known)
    if _process_local(fs):
        n, tag = _remote.stamp(url)
        out.update(fs=str(_local_fs().to_json()), path=_local_copy(url, n, tag), size=n)
    return out


def from_spec(data: dict[str, Any]) -> None:
    """Remember the filesystem of a :func:`spec` (in the HDF5 reader process), and the object's
    size when the caller knew it (each request sends it afresh, or clears it)."""
    fsspec = _remote._fsspec(data["url"])
    fs = fsspec.AbstractFileSystem.from_json(data["fs"])
    with _remote._lock:
        _remote._request_given.clear()  # one request at a time: the previous one's is done
        _remote._request_given[data["url"]] = (fs, data["path"])
        if "size" in data:
            _remote._sent_size[data["url"]] = int(data["size"])
        else:
            _remote._sent_size.pop(data["url"], None)
        if data.get("tag") is not None:
            _remote._sent_tag[data["url"]] = str(data["tag"])
        else:
            _remote._sent_tag.pop(data["url"], None)


def _process_local(fs: Any) -> bool:
    return "memory" in _remote._protocols(fs)


def _local_fs() -> Any:
    from fsspec.implementations.local import LocalFileSystem

    return LocalFileSystem()


_copies: dict[tuple[str, int, str | None], str] = {}
_copy_dir: list[str] = []


def _local_copy(url: str, size: int, tag: str | None) -> str:
    """A private file holding the object (0600, in a folder removed at exit)."""
    key = (url, size, tag)
    with _remote._lock:
        if key in _copies and os.path.exists(_copies[key]):
            return _copies[key]
        if not _copy_dir:
            _copy_dir.append(tempfile.mkdtemp(prefix="rnnscope-remote-"))
            atexit.register(shutil.rmtree, _copy_dir[0], True)
    data = _remote.read_all_bytes(url)
    fd, name = tempfile.mkstemp(dir=_copy_dir[0])
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    with _remote._lock:
        _copies[key] = name
    return name
