"""Checkpoints in object storage and other fsspec file systems, read by byte ranges.

A remote source is a URL fsspec understands (``s3://bucket/run/ckpt.safetensors``, ``gs://``,
``az://``, ``https://``, ``file://``), an ``(filesystem, path)`` pair or an
``fsspec.core.OpenFile``. Inside rnnscope it travels as its URL string (a checkpoint's ``.path``,
the names in messages); a filesystem object given by the caller is used for its URL while its
token (:func:`hold`, kept by the checkpoint loaded from it) lives, so its options (endpoint,
credentials) are used, and handed to the HDF5 reader process as fsspec's own JSON description
(:mod:`._remote_spec`).

How each format is read (:func:`open_remote`):

* safetensors: no cache; the 8-byte length and the header are two range requests, each tensor
  one more (exactly its bytes);
* HDF5 (``.h5``, ``.weights.h5``, the member of a ``.keras`` zip): fsspec's ``blockcache``,
  blocks of :data:`BLOCK_SIZE`, so libhdf5's many small metadata reads become a few requests;
* ``.pt`` and ONNX: the whole object, once.

Round trips: inside :func:`pinned` (one ``load``, one ``stats``/``compare``/``report`` run) an
object's metadata (size, ETag) is fetched once and shared by the results cache, detection and
the readers; inside :func:`sharing` (one file's listing, one request of the HDF5 reader process)
the files opened on one object share one handle and its block cache. The HDF5 reader process
gets the size and tag with the filesystem, so it asks for neither again.

Credentials, retries and time-outs are the backend's (s3fs reads the usual environment variables
and configuration files); messages name the URL only, never the options.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Any, cast

from .._errors import FormatError, MissingDependencyError

__all__ = [
    "BLOCK_SIZE",
    "Given",
    "hold",
    "is_remote",
    "is_url",
    "known_version",
    "open_binary",
    "open_remote",
    "pinned",
    "read_all_bytes",
    "read_range",
    "remote_url",
    "sharing",
    "size",
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
# URL -> the filesystem and path a caller handed in, while something holds its token
_given: weakref.WeakValueDictionary[str, Given] = weakref.WeakValueDictionary()
_request_given: dict[str, tuple[Any, str]] = {}  # in the HDF5 reader process: this request's
_sent_size: dict[str, int] = {}  # in the HDF5 reader process: URL -> size the request carried
_sent_tag: dict[str, str] = {}  # ... and its version tag
# the package that adds each protocol to fsspec (named when it is missing)
_BACKENDS = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
    "adl": "adlfs",
    "http": "aiohttp",
    "https": "aiohttp",
}


class _Pins:
    """One scope's metadata per URL."""

    def __init__(self) -> None:
        self.info: dict[str, dict[str, Any]] = {}


_pins: ContextVar[_Pins | None] = ContextVar("rnnscope_remote_pins", default=None)
# (URL, cache type) -> the open handle the files opened within one :func:`sharing` scope share
_handles: ContextVar[dict[tuple[str, str], Any] | None] = ContextVar(
    "rnnscope_remote_handles", default=None
)


@contextmanager
def pinned() -> Iterator[None]:
    """Within: each remote object's size and tag are fetched once (a small dict per URL; a run
    over many files keeps one each). Nested scopes share the outer one's; a later scope (a watch
    mode's next poll) asks the server afresh."""
    if _pins.get() is not None:
        yield
        return
    token = _pins.set(_Pins())
    try:
        yield
    finally:
        _pins.reset(token)


@contextmanager
def sharing() -> Iterator[None]:
    """Within: the files opened on one object share one handle, and so one block cache (up to
    32 blocks); they are closed when the scope ends. Scoped to reading one file (its listing, or
    one request of the HDF5 reader process), so a run over many files never holds their caches
    at once. Nested scopes share the outer one's."""
    if _handles.get() is not None:
        yield
        return
    handles: dict[tuple[str, str], Any] = {}
    token = _handles.set(handles)
    try:
        yield
    finally:
        _handles.reset(token)
        for fh in handles.values():
            _close(fh)


def is_url(path: str) -> bool:
    """True when ``path`` is a URL (``s3://...``, ``file://...``): read through fsspec."""
    return "://" in path and bool(_URL.match(path))


@contextmanager
def open_binary(path: str, cache: str = "none", size: int | None = None) -> Iterator[IO[bytes]]:
    """A local file or a remote object (``cache``, ``size`` as in :func:`open_remote`)."""
    if is_url(path):
        with open_remote(path, cache, size) as fh:
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


class Given:
    """A filesystem object given for a URL: while this token lives (a :class:`Checkpoint` keeps
    the one it was loaded with), the URL opens with that filesystem in this process; once no
    one holds it, the URL means what fsspec makes of it again. Pickled (to a worker), it
    registers itself there."""

    __slots__ = ("__weakref__", "fs", "path", "url")

    def __init__(self, url: str, fs: Any, path: str) -> None:
        self.url, self.fs, self.path = url, fs, path

    def __reduce__(self) -> tuple[Any, tuple[str, Any, str]]:
        return (_register, (self.url, self.fs, self.path))


def _register(url: str, fs: Any, path: str) -> Given:
    with _lock:
        cur = _given.get(url)
        if cur is not None and cur.fs is fs and cur.path == path:
            return cur  # the same filesystem given again: one token
        token = Given(url, fs, path)
        _given[url] = token
    return token


def hold(obj: Any) -> tuple[str, Given | None]:
    """The URL of a remote source and, for a filesystem object given with it, the token that
    keeps that filesystem in use for the URL (None for a URL string)."""
    if isinstance(obj, str):
        return obj, None
    fs, path = (obj.fs, obj.path) if not isinstance(obj, tuple) else obj
    url = str(fs.unstrip_protocol(path))
    return url, _register(url, fs, str(path))


def remote_url(obj: Any) -> str:
    """The URL of a remote source, for names and messages (nothing is remembered)."""
    if isinstance(obj, str):
        return obj
    fs, path = (obj.fs, obj.path) if not isinstance(obj, tuple) else obj
    return str(fs.unstrip_protocol(path))


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem and the path inside it of ``url``."""
    with _lock:
        token = _given.get(url)
        given = (token.fs, token.path) if token is not None else _request_given.get(url)
    if given is not None:
        return given
    fsspec = _fsspec(url)
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as err:
        protocol = url.split("://", 1)[0].lower()
        package = _BACKENDS.get(protocol)
        how = (
            f"install {package} (pip install {package})"
            if package not in (None, "s3fs", "aiohttp")
            else "pip install 'rnnscope[remote]'"
        )
        raise MissingDependencyError(
            f"'{url}': reading {protocol}:// URLs needs "
            f"{package or 'the fsspec backend of ' + protocol + '://'}, which is not installed "
            f"({_first_line(err)}); {how}",
            path=url,
        ) from err
    except ValueError as err:
        raise FormatError(
            f"'{url}': fsspec cannot open this URL: {_first_line(err)}", path=url
        ) from err
    return fs, str(path)


def _protocols(fs: Any) -> set[str]:
    return set(fs.protocol) if isinstance(fs.protocol, (tuple, list)) else {str(fs.protocol)}


@contextmanager
def failures(url: str, doing: str) -> Iterator[None]:
    """Backend errors as a FormatError naming the URL (the backend's own words, no options)."""
    try:
        yield
    except FormatError:
        raise
    except FileNotFoundError as err:
        # fsspec's HTTP filesystem reports any failed lookup as FileNotFoundError, the real
        # answer (403, a refused connection) as its cause
        cause = _cause(err)
        if cause is None:
            raise FormatError(f"'{url}': no such object ({doing})", path=url) from err
        if _status(cause) in (401, 403):
            raise FormatError(
                f"'{url}': access denied while {doing}: {_first_line(cause)}", path=url
            ) from err
        raise FormatError(
            f"'{url}': cannot read the remote file while {doing}: "
            f"{type(cause).__name__}: {_first_line(cause)}",
            path=url,
        ) from err
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


def _cause(err: BaseException) -> BaseException | None:
    """What a FileNotFoundError stands for, when it is not a plain 404 (None: missing)."""
    seen = err.__cause__ or err.__context__
    while seen is not None:
        if _status(seen) == 404:
            return None
        if _status(seen) is not None or isinstance(seen, OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _status(err: BaseException) -> int | None:
    status = getattr(err, "status", None)
    return status if isinstance(status, int) else None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__


def _info(url: str) -> dict[str, Any]:
    pins = _pins.get()
    if pins is not None and url in pins.info:
        return pins.info[url]
    fs, path = filesystem(url)
    with failures(url, "looking it up"):
        info = dict(fs.info(path))
    if info.get("type") == "directory":
        raise FormatError(f"'{url}' is a folder (a prefix), not a checkpoint file", path=url)
    if pins is not None:
        pins.info[url] = info
    return info


def size(url: str) -> int:
    """The object's size in bytes; a FormatError naming ``url`` if it is missing or denied."""
    with _lock:
        if url in _sent_size:
            return _sent_size[url]
    return int(_info(url).get("size") or 0)


_TAGS = ("ETag", "etag", "LastModified", "Last-Modified", "last_modified", "mtime", "created")


def stamp(url: str) -> tuple[int, str | None]:
    """The object's size and version tag (its ETag, else its modification time), or None for a
    store that gives neither: what says it changed."""
    info = _info(url)
    return int(info.get("size") or 0), _tag(info)


def _tag(info: dict[str, Any]) -> str | None:
    tag = next((info[k] for k in _TAGS if info.get(k) not in (None, "")), None)
    return None if tag is None else str(tag)


def known_version(url: str) -> tuple[int, str] | None:
    """The object's size and tag if this scope (or the request that carried them) already knows
    them, without asking the server; None when either is unknown."""
    pins = _pins.get()
    info = pins.info.get(url) if pins is not None else None
    if info is not None:
        n, tag = int(info.get("size") or 0), _tag(info)
    else:
        with _lock:
            n, tag = _sent_size.get(url), _sent_tag.get(url)  # type: ignore[assignment]
    return None if n is None or tag is None else (n, tag)


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
def open_remote(url: str, cache: str = "none", size: int | None = None) -> Iterator[IO[bytes]]:
    """A seekable read-only file over the object.

    Args:
        url: the object.
        cache: ``"none"`` (each read is one range request of exactly its bytes) or
            ``"blockcache"`` (reads go through cached blocks of :data:`BLOCK_SIZE`; for HDF5).
        size: its size when the caller knows it (fsspec then does not look it up).
    """
    handles = _handles.get()
    fh = handles.get((url, cache)) if handles is not None else None
    if fh is None:
        fh = _open(url, cache, size)
        if handles is not None:
            handles[(url, cache)] = fh
    try:
        yield cast(IO[bytes], _Reported(fh, url))  # its reads name the URL when they fail
    finally:
        if handles is None:
            _close(fh)


def _open(url: str, cache: str, n: int | None) -> Any:
    from ._limits import _env_number

    fs, path = filesystem(url)
    block = int(_env_number("RNNSCOPE_REMOTE_BLOCK_SIZE", BLOCK_SIZE))
    pins = _pins.get()
    known = pins.info.get(url) if pins is not None else None
    with _lock:
        if n is None:
            n = int(known["size"]) if known and "size" in known else _sent_size.get(url)
    # known: fsspec does not look it up again; but s3fs, given no size, looks the object up
    # itself and pins every range read to that ETag (If-Match), worth its one request
    size = {} if n is None or _protocols(fs) & {"s3", "s3a"} else {"size": n}
    with failures(url, "opening it"):
        return fs.open(path, "rb", block_size=block, cache_type=cache, **size)


def _close(fh: Any) -> None:
    try:
        fh.close()
    except Exception:  # closing a read-only remote file has nothing to flush
        pass


class _Reported:
    """A remote file whose read failures are FormatErrors naming the URL (h5py and zipfile
    call ``read``/``readinto``/``seek``/``tell`` only)."""

    def __init__(self, fh: Any, url: str) -> None:
        self._fh, self._url, self._pos = fh, url, 0  # its own position: handles are shared

    def read(self, n: int = -1) -> bytes:
        with failures(self._url, "reading it"):
            self._fh.seek(self._pos)
            data = bytes(self._fh.read(n))
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        with failures(self._url, "reading it"):
            self._fh.seek(self._pos)
            got = int(self._fh.readinto(buffer))
        self._pos += got
        return got

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0:
            self._pos = offset
        elif whence == 1:
            self._pos += offset
        else:
            self._pos = int(self._fh.seek(offset, 2))
        if self._pos < 0:
            raise OSError(f"'{self._url}': negative seek position {self._pos}")
        return self._pos

    def tell(self) -> int:
        return self._pos

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
