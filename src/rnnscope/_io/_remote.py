"""Checkpoints in object storage and other fsspec file systems, read by byte ranges.

A remote source is a URL fsspec understands (``s3://bucket/run/ckpt.safetensors``, ``gs://``,
``az://``, ``https://``, ``file://``), an ``(filesystem, path)`` pair or an
``fsspec.core.OpenFile``. Inside rnnscope it travels as its URL string (a checkpoint's ``.path``,
the names in messages); a filesystem object given by the caller is remembered for its URL in
this process (:func:`remember`), so its options (endpoint, credentials) are used, and handed to
the HDF5 reader process as fsspec's own JSON description (:func:`spec`).

How each format is read (:func:`open_remote`):

* safetensors: no cache; the 8-byte length and the header are two range requests, each tensor
  one more (exactly its bytes);
* HDF5 (``.h5``, ``.weights.h5``, the member of a ``.keras`` zip): fsspec's ``blockcache``,
  blocks of :data:`BLOCK_SIZE`, so libhdf5's many small metadata reads become a few requests;
* ``.pt`` and ONNX: the whole object, once.

Credentials, retries and time-outs are the backend's (s3fs reads the usual environment variables
and configuration files); messages name the URL only, never the options.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, cast

from .._errors import FormatError, MissingDependencyError

__all__ = [
    "BLOCK_SIZE",
    "is_remote",
    "is_url",
    "open_binary",
    "open_remote",
    "read_all_bytes",
    "read_range",
    "remember",
    "remote_url",
    "size",
    "spec",
    "stamp",
]

# libhdf5 reads a Keras file's metadata in many small pieces (Keras writes each layer's group
# records beside its datasets, so they are spread over the whole file), and each range request to
# object storage costs a round trip (~10-50 ms to S3). Measured on a 16.8 MB two-layer LSTM(512)
# .weights.h5 (bench/bench_remote.py --block-sizes): see the README's table; 1 MiB keeps listing
# to a few requests while a layer's read fetches little beyond its own bytes.
# RNNSCOPE_REMOTE_BLOCK_SIZE (bytes) overrides it.
BLOCK_SIZE = 1 << 20
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_lock = threading.Lock()
_given: dict[str, tuple[Any, str]] = {}  # URL -> (filesystem, path) handed in by the caller


def is_url(path: str) -> bool:
    """True when ``path`` is a URL (``s3://...``, ``file://...``): read through fsspec."""
    return "://" in path and bool(_URL.match(path))


@contextmanager
def open_binary(path: str, cache: str = "none") -> Iterator[IO[bytes]]:
    """A local file or a remote object (``cache`` as in :func:`open_remote`), for reading."""
    if is_url(path):
        with open_remote(path, cache) as fh:
            yield fh
    else:
        with open(path, "rb") as fh:
            yield fh


def _fsspec(what: str) -> Any:
    try:
        import fsspec
    except ImportError as err:
        raise MissingDependencyError(
            f"reading '{what}' needs fsspec (and s3fs for s3:// URLs), which is not installed; "
            "install it with: pip install 'rnnscope[remote]'",
            path=what,
        ) from err
    return fsspec


def is_remote(obj: Any) -> bool:
    """True for a URL string, an ``(fsspec filesystem, path)`` pair or an ``OpenFile``."""
    if isinstance(obj, str):
        return is_url(obj)
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[1], str):
        return _is_filesystem(obj[0])
    return type(obj).__name__ == "OpenFile" and hasattr(obj, "fs") and hasattr(obj, "path")


def _is_filesystem(obj: Any) -> bool:
    return any(c.__name__ == "AbstractFileSystem" for c in type(obj).__mro__)


def remember(obj: Any) -> str:
    """The URL of a remote source; a filesystem object given with it is kept for that URL."""
    if isinstance(obj, str):
        return obj
    fs, path = (obj.fs, obj.path) if not isinstance(obj, tuple) else obj
    url = str(fs.unstrip_protocol(path))
    with _lock:
        _given[url] = (fs, str(path))
    return url


def remote_url(obj: Any) -> str:
    """The URL of a remote source, for names and messages (nothing is remembered)."""
    if isinstance(obj, str):
        return obj
    fs, path = (obj.fs, obj.path) if not isinstance(obj, tuple) else obj
    return str(fs.unstrip_protocol(path))


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem and the path inside it of ``url``."""
    with _lock:
        given = _given.get(url)
    if given is not None:
        return given
    fsspec = _fsspec(url)
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as err:
        raise MissingDependencyError(
            f"'{url}': fsspec cannot open this URL ({type(err).__name__}: {err}); for s3:// "
            "install s3fs (pip install 'rnnscope[remote]'), for gs:// gcsfs, for az:// adlfs",
            path=url,
        ) from err
    return fs, str(path)


def spec(url: str) -> dict[str, str]:
    """What another process needs to open ``url`` the same way: fsspec's JSON of the filesystem
    and the path (sent over a pipe, never shown)."""
    fs, path = filesystem(url)
    return {"fs": str(fs.to_json()), "path": path, "url": url}


def from_spec(data: dict[str, str]) -> None:
    """Remember the filesystem of a :func:`spec` (in the HDF5 reader process)."""
    fsspec = _fsspec(data["url"])
    fs = fsspec.AbstractFileSystem.from_json(data["fs"])
    with _lock:
        _given[data["url"]] = (fs, data["path"])


@contextmanager
def failures(url: str, doing: str) -> Iterator[None]:
    """Backend errors as a FormatError naming the URL (the backend's own words, no options)."""
    try:
        yield
    except FormatError:
        raise
    except FileNotFoundError as err:
        raise FormatError(f"'{url}': no such object ({doing})", path=url) from err
    except PermissionError as err:
        raise FormatError(
            f"'{url}': access denied while {doing}: {_first_line(err)}", path=url
        ) from err
    except Exception as err:  # OSError, or any backend's own error class (botocore, aiohttp)
        raise FormatError(
            f"'{url}': cannot read the remote file while {doing}: "
            f"{type(err).__name__}: {_first_line(err)}",
            path=url,
        ) from err


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__


def _info(url: str) -> dict[str, Any]:
    fs, path = filesystem(url)
    with failures(url, "looking it up"):
        info = fs.info(path)
    if info.get("type") == "directory":
        raise FormatError(f"'{url}' is a folder (a prefix), not a checkpoint file", path=url)
    return dict(info)


def size(url: str) -> int:
    """The object's size in bytes; a FormatError naming ``url`` if it is missing or denied."""
    return int(_info(url).get("size") or 0)


def stamp(url: str) -> tuple[int, str]:
    """The object's size and version tag (ETag, modification time): what says it changed."""
    info = _info(url)
    tag = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified")
    return int(info.get("size") or 0), str(tag)


def read_range(url: str, start: int, end: int) -> bytes:
    """Bytes ``[start, end)`` of the object, in one request."""
    fs, path = filesystem(url)
    with failures(url, f"reading bytes {start}-{end}"):
        return bytes(fs.cat_file(path, start=start, end=end))


def read_all_bytes(url: str) -> bytes:
    """The whole object (``.pt``, ONNX)."""
    fs, path = filesystem(url)
    with failures(url, "reading the file"):
        return bytes(fs.cat_file(path))


@contextmanager
def open_remote(url: str, cache: str = "none") -> Iterator[IO[bytes]]:
    """A seekable read-only file over the object.

    Args:
        url: the object.
        cache: ``"none"`` (each read is one range request of exactly its bytes) or
            ``"blockcache"`` (reads go through cached blocks of :data:`BLOCK_SIZE`; for HDF5).
    """
    from ._limits import _env_number

    fs, path = filesystem(url)
    block = int(_env_number("RNNSCOPE_REMOTE_BLOCK_SIZE", BLOCK_SIZE))
    with failures(url, "opening it"):
        fh = fs.open(path, "rb", block_size=block, cache_type=cache)
    try:
        yield cast(IO[bytes], _Reported(fh, url))  # its reads name the URL when they fail
    finally:
        try:
            fh.close()
        except Exception:  # closing a read-only remote file has nothing to flush
            pass


class _Reported:
    """A remote file whose read failures are FormatErrors naming the URL (h5py and zipfile
    call ``read``/``readinto``/``seek``/``tell`` only)."""

    def __init__(self, fh: Any, url: str) -> None:
        self._fh, self._url = fh, url

    def read(self, n: int = -1) -> bytes:
        with failures(self._url, "reading it"):
            return bytes(self._fh.read(n))

    def readinto(self, buffer: Any) -> int:
        with failures(self._url, "reading it"):
            return int(self._fh.readinto(buffer))

    def seek(self, offset: int, whence: int = 0) -> int:
        return int(self._fh.seek(offset, whence))

    def tell(self) -> int:
        return int(self._fh.tell())

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None

    @property
    def closed(self) -> bool:
        return bool(self._fh.closed)


def is_glob(url: str) -> bool:
    """True when the URL holds a glob character (``*``, ``?``, ``[``)."""
    tail = url.split("://", 1)[-1]
    return any(c in tail for c in "*?[")
