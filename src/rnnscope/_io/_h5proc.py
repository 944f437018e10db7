"""Every libhdf5 call on a checkpoint runs in one reader process, started fresh, never forked.

Why a process: libhdf5 can loop forever in C on some damaged files, where no Python signal
reaches, and some crafted files crash it. Why not ``fork()``: the user's process often has
threads (TensorFlow, JAX and torch start thread pools at import); forking a multithreaded process
can deadlock on a lock held by another thread, and JAX warns about it on every fork.

Design:

* The reader is a fresh interpreter (``subprocess.Popen`` of ``sys.executable``, which execs at
  once: no Python code runs between fork and exec, no at-fork handlers, no re-import of the
  user's ``__main__``). It is started on the first HDF5 read (~0.3 s, mostly importing numpy and
  h5py), kept for the next ones, and restarted after a crash or a timeout.
* Requests and answers travel over pipes as JSON headers plus raw array bytes: nothing is
  unpickled on either side, so even a reader taken over by a hostile file cannot run code in the
  user's process.
* Each answer has a deadline (``TIME_LIMIT`` for a listing, plus time proportional to the bytes
  for a read). Past it, or if the reader dies (a signal inside libhdf5), the reader is killed and
  the caller gets a FormatError naming the file; the next request starts a new reader.
* The reader vets each file before anything else (:mod:`._h5child`): external links, external
  storage and virtual datasets are refused up front, declared sizes are checked before a read.
  It runs with an address-space limit (``RLIMIT_AS``) above the read budget, so a size that
  slipped past the checks is a MemoryError there, not an out-of-memory kill here.

On Windows (no ``select`` on pipes) the same vetted reads run in-process, without the time limit.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from .._errors import FormatError, MissingDependencyError

__all__ = ["call", "reader_pid", "stop"]

TIME_LIMIT = 10.0
READ_RATE = 50 << 20  # bytes per second granted to a read, on top of TIME_LIMIT
_LEN = struct.Struct("<Q")
_BOOT = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from rnnscope._io._h5proc import serve; serve()"
)
_lock = threading.Lock()
_proc: subprocess.Popen[bytes] | None = None


def _start() -> subprocess.Popen[bytes]:
    paths = [os.path.abspath(p) if p else os.getcwd() for p in sys.path]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-I", "-c", _BOOT, json.dumps(paths)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        bufsize=0,
        env=env,
        close_fds=True,
    )


def stop() -> None:
    """End the reader process (it is started again when needed)."""
    global _proc
    with _lock:
        _kill()


def _kill() -> None:
    global _proc
    proc, _proc = _proc, None
    if proc is None:
        return
    try:
        proc.kill()
    except OSError:
        pass
    proc.wait()
    for fh in (proc.stdin, proc.stdout):
        if fh is not None:
            fh.close()


def reader_pid() -> int | None:
    """The reader process's id, or None when none runs (for tests and benchmarks)."""
    return _proc.pid if _proc is not None and _proc.poll() is None else None


class _Dead(Exception):
    """The reader closed its pipe: it crashed or was killed."""


def _read_exact(fh: Any, view: memoryview, deadline: float) -> None:
    pos = 0
    while pos < len(view):
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fh], [], [], max(left, 0))
        if not ready:
            raise TimeoutError
        n = fh.readinto(view[pos:])
        if not n:
            raise _Dead
        pos += n


def _bytes_of(arr: np.ndarray) -> memoryview:
    """The bytes of a C-contiguous array, writable when the array is."""
    return memoryview(arr.reshape(-1).view(np.uint8))  # type: ignore[arg-type]


def _receive(fh: Any, deadline: float) -> tuple[dict[str, Any], list[np.ndarray]]:
    head = bytearray(_LEN.size)
    _read_exact(fh, memoryview(head), deadline)
    (n,) = _LEN.unpack(head)
    if n > 256 << 20:
        raise _Dead
    body = bytearray(n)
    _read_exact(fh, memoryview(body), deadline)
    header = json.loads(body.decode("ascii"))
    arrays = []
    for _ in range(int(header.get("count", 0)) if header.get("status") == "ok" else 0):
        spec, _ = _receive(fh, deadline)  # one array: its own header, then its bytes
        if spec.get("status") != "ok":
            return spec, []
        arr = np.empty([int(s) for s in spec["shape"]], dtype=np.dtype(str(spec["dtype"])))
        _read_exact(fh, _bytes_of(arr), deadline)
        arrays.append(arr)
    return header, arrays


def time_limit() -> float:
    """Seconds an HDF5 listing may take: ``RNNSCOPE_HDF5_TIME_LIMIT``, default 10."""
    from ._limits import _env_number

    return _env_number("RNNSCOPE_HDF5_TIME_LIMIT", TIME_LIMIT)


def call(request: dict[str, Any], path: str, what: str, nbytes: int = 0) -> Any:
    """Send ``request`` to the reader; its answer, or a FormatError naming ``path``.

    The deadline is :func:`time_limit` plus ``nbytes`` (the data expected back) at ``READ_RATE``.
    """
    from ._limits import max_ratio, max_tensor_bytes

    limit = time_limit() + nbytes / READ_RATE
    # the reader outlives this call: relative paths are resolved where the caller stands now
    # (a caller that changed directory since the reader started must not read another file)
    try:
        cwd: str | None = os.getcwd()
    except OSError:  # the working directory was removed; absolute paths still work
        cwd = None
    request = dict(request, budget=max_tensor_bytes(), ratio=max_ratio(), cwd=cwd)
    if sys.platform == "win32":
        return _local(request)
    global _proc
    with _lock:
        if _proc is None or _proc.poll() is not None:
            _kill()
            _proc = _start()
            atexit.register(stop)  # once per reader: end it with the interpreter, not after
        proc = _proc
        assert proc.stdin is not None and proc.stdout is not None
        data = json.dumps(request, ensure_ascii=True).encode("ascii")
        try:
            _write_all(proc.stdin, memoryview(_LEN.pack(len(data)) + data))
            header, arrays = _receive(proc.stdout, time.monotonic() + limit)
        except TimeoutError:
            _kill()
            why = (
                "a slow or unreachable server, or a damaged file"
                if "://" in path
                else "the HDF5 library stopped responding (a damaged file)"
            )
            raise FormatError(
                f"'{path}': reading {what} took longer than {limit:.0f} s; {why}",
                path=path,
            ) from None
        except (_Dead, OSError, ValueError):
            try:
                code: int | None = proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                code = None
            _kill()
            how = f" (exit status {code})" if code is not None else ""
            raise FormatError(
                f"'{path}': reading {what} crashed the HDF5 reader process{how}; the file is "
                "damaged or crafted",
                path=path,
            ) from None
    return _result(header, arrays)


def _result(header: dict[str, Any], arrays: list[np.ndarray]) -> Any:
    status = header.get("status")
    if status == "ok":
        return arrays if header.get("kind") == "arrays" else header.get("value")
    message = str(header.get("message", ""))
    path, layer = header.get("path"), header.get("layer")
    if status == "MissingDependencyError":
        raise MissingDependencyError(message, path=path, layer=layer)
    raise FormatError(message, path=path, layer=layer)


def _handle(request: dict[str, Any]) -> tuple[dict[str, Any], Iterator[np.ndarray]]:
    from . import _h5child

    os.environ["RNNSCOPE_MAX_TENSOR_BYTES"] = str(request["budget"])
    os.environ["RNNSCOPE_MAX_RATIO"] = str(request["ratio"])
    if request.get("cwd"):
        os.chdir(request["cwd"])
    path, fmt = str(request["path"]), str(request["fmt"])
    if request.get("remote"):
        from ._remote_spec import from_spec

        from_spec(request["remote"])
    if request["op"] == "list":
        value = _h5child.list_file(path, fmt, request.get("config"), str(request["version"]))
        return {"status": "ok", "kind": "value", "value": value}, iter(())
    names = [str(n) for n in request["names"]]
    arrays = _h5child.read_datasets(path, fmt, names)
    return {"status": "ok", "kind": "arrays", "count": len(names)}, arrays


def _failure(request: dict[str, Any], err: Exception) -> dict[str, Any]:
    if isinstance(err, (FormatError, MissingDependencyError)):  # its data travels with it
        return {
            "status": type(err).__name__,
            "message": str(err),
            "path": err.path,
            "layer": err.layer,
        }
    path = request.get("path", "?")  # any low-level failure is reported, never lost
    return {
        "status": "FormatError",
        "message": f"'{path}': cannot read the HDF5 file: {type(err).__name__}: {err}",
        "path": path,
    }


def _answer(request: dict[str, Any]) -> tuple[dict[str, Any], Iterator[np.ndarray]]:
    try:
        return _handle(request)
    except Exception as err:
        return _failure(request, err), iter(())


def _local(request: dict[str, Any]) -> Any:
    header, stream = _answer(request)
    try:
        arrays = list(stream)
    except Exception as err:
        header, arrays = _failure(request, err), []
    return _result(header, arrays)


def _limit_memory() -> None:
    import resource

    budget = int(os.environ.get("RNNSCOPE_MAX_TENSOR_BYTES") or (2 << 30))
    cap = 3 * budget + (3 << 30)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or cap < hard:
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def serve() -> None:  # pragma: no cover - runs in the reader process
    """The reader process's loop: one request in, one answer out, until stdin closes."""
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # stray prints (libhdf5 diagnostics) never corrupt the answers
    stdin = os.fdopen(0, "rb", buffering=0)
    import h5py  # noqa: F401  (imported once, before the first request)

    _limit_memory()
    while True:
        head = stdin.read(_LEN.size)
        if len(head) < _LEN.size:
            return
        (n,) = _LEN.unpack(head)
        body = b""
        while len(body) < n:
            chunk = stdin.read(n - len(body))
            if not chunk:
                return
            body += chunk
        request = json.loads(body.decode("ascii"))
        header, stream = _answer(request)
        try:
            data = json.dumps(header, ensure_ascii=True).encode("ascii")
        except (TypeError, ValueError) as err:
            data = json.dumps({"status": "FormatError", "message": str(err)}).encode("ascii")
            stream = iter(())
        _write_all(out, memoryview(_LEN.pack(len(data)) + data))
        if header.get("status") != "ok":
            continue
        try:
            for a in stream:  # one array in memory at a time
                spec = {"status": "ok", "dtype": a.dtype.str, "shape": list(a.shape)}
                _send(out, spec)
                _write_all(out, _bytes_of(a))
                del a
        except Exception as err:
            _send(out, _failure(request, err))


def _send(out: Any, header: dict[str, Any]) -> None:
    data = json.dumps(header, ensure_ascii=True).encode("ascii")
    _write_all(out, memoryview(_LEN.pack(len(data)) + data))


def _write_all(fh: Any, view: memoryview) -> None:
    while len(view):
        view = view[fh.write(view) or 0 :]
