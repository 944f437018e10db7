"""Run a file-parsing step in a forked child with a time limit.

libhdf5 can loop forever on some damaged files while it walks their metadata, in C, where no
Python signal reaches. On Linux the listing step (tree walk, attributes, shapes) therefore runs in
a ``fork()``-ed child, which sends back plain data through a pipe; past the time limit the child is
killed and the caller gets a FormatError. Elsewhere the step runs in-process.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import sys
import time
from collections.abc import Callable
from typing import TypeVar

from .._errors import FormatError, MissingDependencyError

__all__ = ["guarded"]

T = TypeVar("T")
TIME_LIMIT = 10.0


def _child(fn: Callable[[], object], w: int) -> None:
    try:
        try:
            payload = ("ok", fn())
        except (FormatError, MissingDependencyError) as err:
            payload = (type(err).__name__, str(err))
        except BaseException as err:  # reported to the parent, never lost
            payload = ("error", f"{type(err).__name__}: {err}")
        data = pickle.dumps(payload)
    except BaseException as err:  # an unpicklable result
        data = pickle.dumps(("error", f"{type(err).__name__}: {err}"))
    with os.fdopen(w, "wb") as fh:
        fh.write(data)
    os._exit(0)


def guarded(fn: Callable[[], T], path: str, what: str, limit: float = TIME_LIMIT) -> T:
    """``fn()``, run in a child process with a time limit where the platform allows it."""
    if sys.platform != "linux" or os.environ.get("RNNSCOPE_NO_FORK"):
        return fn()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(r)
        _child(fn, w)
    os.close(w)
    chunks, deadline, done = [], time.monotonic() + limit, False
    try:
        with os.fdopen(r, "rb") as fh:
            while True:
                ready, _, _ = select.select([fh], [], [], max(deadline - time.monotonic(), 0))
                if not ready:
                    raise FormatError(
                        f"'{path}': reading {what} took longer than {limit:.0f} s; the HDF5 "
                        "library stopped responding (a damaged file)"
                    )
                chunk = os.read(fh.fileno(), 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        done = True
    finally:  # whatever happened here (a timeout, an interrupt), the child does not outlive it
        if not done:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    if not chunks:
        raise FormatError(f"'{path}': reading {what} crashed the reading process")
    status, value = pickle.loads(b"".join(chunks))  # our own child's data
    if status == "ok":
        return value
    if status == "MissingDependencyError":
        raise MissingDependencyError(value)
    if status == "FormatError":
        raise FormatError(value)
    raise FormatError(f"'{path}': cannot read {what}: {value}")
