"""What a file-format reader is: the :class:`Reader` base class and the zip probe readers share.

A reader is a small class in the manner of xarray's ``BackendEntrypoint``: a ``name`` (the
``Checkpoint.format`` it produces), a one-line ``description`` for messages, the file-name
``suffixes`` a folder is searched for, :meth:`Reader.guess_can_open` (magic bytes first, the
file name as a fallback) and :meth:`Reader.open`. The registry (``_registry``) holds one instance
of each; detection, the format list in messages and the suffix list all come from there.
"""

from __future__ import annotations

import enum
import functools
import os
import zipfile
from typing import TYPE_CHECKING, ClassVar

from .._errors import RnnscopeError
from ._remote import is_url, open_binary, stamp

if TYPE_CHECKING:
    from ._checkpoint import Checkpoint

__all__ = ["ZIP_MAGIC", "Match", "Reader", "zip_names"]

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty archive's end record
HEAD_BYTES = 16  # what detection reads of a file and hands to every reader


class Match(enum.IntEnum):
    """How sure a reader is that it can open a file (falsy: not at all)."""

    NO = 0
    NAME = 1  # the file name says so, and the content does not contradict it
    CONTENT = 2  # the magic bytes (or the archive's members) say so


class Reader:
    """One file format. Subclass it, set the class attributes, write the two methods.

    Attributes:
        name: the format's name, ``Checkpoint.format`` (e.g. ``"safetensors"``).
        description: one line for messages, e.g. ``"safetensors (torch state_dict key names)"``.
        suffixes: file-name endings a folder is searched for, lower case (``(".pt", ".pth")``).
        in_zip: for a format inside a zip archive, what the archive holds, for the message about
            a zip that no reader takes (``"a torch checkpoint (data.pkl)"``); "" otherwise.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]] = ()
    in_zip: ClassVar[str] = ""

    def guess_can_open(self, path: str, head: bytes) -> Match:
        """Whether this reader can open ``path``, whose first bytes are ``head``.

        Cheap and never raising: the magic bytes decide (:attr:`Match.CONTENT`); the suffix is a
        fallback (:attr:`Match.NAME`) that detection uses only when no reader knows the content.
        """
        raise NotImplementedError

    def open(self, path: str) -> Checkpoint:
        """The file's layers, listed (arrays are read when asked for).

        Raises:
            FormatError: the file is damaged or not what its magic bytes promised; errors name
                ``path`` in their message and carry it as ``.path``.
        """
        raise NotImplementedError

    def named(self, path: str) -> bool:
        """True when ``path`` ends with one of :attr:`suffixes`."""
        return path.lower().endswith(self.suffixes)


def zip_names(path: str) -> frozenset[str] | None:
    """The member names of a zip archive, or None when it cannot be read as one.

    Several readers ask during one detection: the answer is kept for the same file, size and
    modification time (for a remote object: size and ETag).
    """
    if is_url(path):
        try:
            n, tag = stamp(path)
        except Exception:  # detection never raises: the caller reports the object itself
            return None
        return _zip_names(path, n, 0, hash(tag))
    try:
        st = os.stat(path)
    except OSError:
        return None
    return _zip_names(path, st.st_size, st.st_mtime_ns, st.st_ino)


@functools.lru_cache(maxsize=4)
def _zip_names(path: str, size: int, mtime: int, inode: int) -> frozenset[str] | None:
    try:
        with open_binary(path, "blockcache") as fh, zipfile.ZipFile(fh) as zf:
            return frozenset(zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return None
    except RnnscopeError:  # a remote read that failed: the caller reports the object itself
        return None
