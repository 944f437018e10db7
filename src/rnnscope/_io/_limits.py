"""Bounds on what an untrusted checkpoint may make rnnscope allocate, and path checks.

A file declares the shapes of its tensors; nothing forces the declaration to match the bytes the
file holds. Before any tensor is materialised, its declared size is checked against:

* the **budget** ``RNNSCOPE_MAX_TENSOR_BYTES`` (environment variable, bytes; default 2 GiB): no
  single tensor larger than this is ever allocated;
* the **bytes the file stores for it** times ``RNNSCOPE_MAX_RATIO`` (default 64): compressed
  data still reads (real weights compress by far less than 64x), but a few kilobytes cannot
  claim gigabytes (sparse chunks, gzip of zeros, zero strides). Tensors up to ``ALLOWANCE``
  (32 MiB) are exempt from the ratio, so all-zero biases in small compressed files read.

Both are read at every check, so a process can change them at any time (also for the HDF5 reader
process, which inherits the environment when it starts).
"""

from __future__ import annotations

import os
import stat

from .._errors import FormatError

__all__ = [
    "ALLOWANCE",
    "ORBAX_MARKERS",
    "check_declared",
    "directory_error",
    "max_ratio",
    "max_tensor_bytes",
    "regular_file",
]

DEFAULT_BUDGET = 2 << 30
DEFAULT_RATIO = 64.0
ALLOWANCE = 32 << 20


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if value > 0 else default


def max_tensor_bytes() -> int:
    """The budget: the largest tensor (in bytes) rnnscope allocates from a file."""
    return int(_env_number("RNNSCOPE_MAX_TENSOR_BYTES", DEFAULT_BUDGET))


def max_ratio() -> float:
    """How many times its stored size a tensor may be once read (compression, fill values)."""
    return _env_number("RNNSCOPE_MAX_RATIO", DEFAULT_RATIO)


def check_declared(path: str, what: str, declared: int, stored: int) -> None:
    """Refuse ``what`` (a tensor of ``path``) if its ``declared`` size is out of bounds.

    Args:
        path: the checkpoint, for the message.
        what: the tensor or dataset, for the message.
        declared: bytes the tensor takes once read (elements x item size).
        stored: bytes the file holds for it (compressed size, allocated chunks, storage record).
    """
    budget = max_tensor_bytes()
    if declared > budget:
        raise FormatError(
            f"'{path}': {what} declares {declared} bytes, over the read budget of {budget} "
            "bytes (set RNNSCOPE_MAX_TENSOR_BYTES to raise it)",
            path=path,
        )
    ratio = max_ratio()
    if declared > ALLOWANCE and declared > stored * ratio:
        raise FormatError(
            f"'{path}': {what} declares {declared} bytes but the file stores only {stored} "
            f"bytes for it (more than {ratio:g}x; sparse, fill-value or repeated data that no "
            "saved weights produce; set RNNSCOPE_MAX_RATIO to allow it)",
            path=path,
        )


ORBAX_MARKERS = ("_CHECKPOINT_METADATA", "_METADATA", "manifest.ocdbt")
"""Files that make a folder an orbax checkpoint (one item, or a step holding items)."""


def directory_error(path: str) -> FormatError:
    """The error for a folder given where a checkpoint file is expected; an orbax checkpoint
    (tensorstore / OCDBT chunks, read only by running orbax and tensorstore) is named as one."""
    try:
        names = set(os.listdir(path))
        folders = sorted(n for n in names if os.path.isdir(os.path.join(path, n)))[:64]
        inner = {n for d in folders for n in os.listdir(os.path.join(path, d))}
    except OSError:
        names, inner = set(), set()
    if names & set(ORBAX_MARKERS) or inner & set(ORBAX_MARKERS):
        return FormatError(
            f"'{path}' is an orbax checkpoint (tensorstore/OCDBT folder); rnnscope does not "
            "read orbax checkpoints. Restore it with orbax into your flax.nnx model "
            "(nnx.update(model, restored)) and pass the model to rnnscope",
            path=path,
        )
    return FormatError(f"'{path}' is a directory, not a checkpoint file", path=path)


def regular_file(path: str) -> int:
    """The size of ``path``, which must be a regular file (not a FIFO, device or directory)."""
    try:
        st = os.stat(path)
    except FileNotFoundError as err:
        raise FormatError(f"checkpoint file '{path}' does not exist", path=path) from err
    except OSError as err:
        raise FormatError(f"cannot read '{path}': {err.strerror or err}", path=path) from err
    if stat.S_ISDIR(st.st_mode):
        raise directory_error(path)
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a FIFO (named pipe)"
            if stat.S_ISFIFO(st.st_mode)
            else "a device"
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            else "a socket"
            if stat.S_ISSOCK(st.st_mode)
            else "not a regular file"
        )
        raise FormatError(f"'{path}' is {kind}, not a regular checkpoint file", path=path)
    return int(st.st_size)
