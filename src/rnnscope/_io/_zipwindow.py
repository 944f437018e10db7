"""Read a zip member in place, as a seekable file, without extracting it."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from .._errors import FormatError
from ._remote import is_url, known_version, open_binary

__all__ = ["open_member"]

_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # the 30-byte local file header
# remote members whose CRC-32 matched, by URL, member, CRC and the object's (size, ETag)
_checked: set[tuple[str, str, int, tuple[int, str] | None]] = set()


class _Window(io.RawIOBase):
    """Bytes ``[start, start + size)`` of an open file, as a read-only seekable file."""

    def __init__(self, fh: Any, start: int, size: int) -> None:
        super().__init__()
        self._fh, self._start, self._size, self._pos = fh, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = max(0, min(len(buffer), self._size - self._pos))
        if n == 0:
            return 0
        self._fh.seek(self._start + self._pos)
        got = self._fh.readinto(memoryview(buffer)[:n])
        self._pos += got or 0
        return got or 0


@contextmanager
def open_member(path: str, member: str) -> Iterator[IO[bytes]]:
    """A seekable file over ``member`` of the zip at ``path``.

    A stored (uncompressed) member, as Keras writes them, is a window on the archive itself:
    seeking is free and nothing is copied; its CRC-32 is checked first, in one streaming pass.
    A compressed member is decompressed as it is read.

    A remote archive (a URL) is read by range requests through fsspec's block cache: the end
    record and central directory, then the member's blocks as they are read. Its CRC-32 is
    checked too, streaming the member once through that cache (whose blocks the HDF5 reads then
    find); once checked for an object's size and ETag, this process does not check it again.
    """
    remote = is_url(path)
    with open_binary(path, "blockcache") as src, zipfile.ZipFile(src) as zf:
        try:
            info = zf.getinfo(member)
        except KeyError as err:
            raise FormatError(f"'{path}': the archive has no member '{member}'", path=path) from err
        if info.compress_type != zipfile.ZIP_STORED:
            with zf.open(info) as fh:
                yield fh
            return
    with open_binary(path, "blockcache") as raw:
        raw.seek(info.header_offset)
        header = raw.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            raise FormatError(f"'{path}': damaged local header for member '{member}'", path=path)
        fields = _LOCAL_HEADER.unpack(header)
        _same_member(fields, raw.read(fields[-2]), info, path, member)
        start = info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1]
        raw.seek(0, io.SEEK_END)
        if start + info.file_size > raw.tell():
            raise FormatError(
                f"'{path}': member '{member}' runs past the end of the file (truncated archive)",
                path=path,
            )
        window = _Window(raw, start, info.file_size)
        version = known_version(path) if remote else None
        seen = (path, member, info.CRC, version)
        if version is None or seen not in _checked:
            _check_crc(window, info, path, member)
            if version is not None:
                if len(_checked) > 1024:
                    _checked.clear()
                _checked.add(seen)
        window.seek(0)
        yield io.BufferedReader(window, buffer_size=1 << 16)


def _same_member(
    fields: tuple[Any, ...], name: bytes, info: zipfile.ZipInfo, path: str, member: str
) -> None:
    """Refuse a central directory that points the member at another one's local header (or one
    compressed though listed as stored): its CRC-32 may well match the bytes it points at."""
    local = name.decode("utf-8" if fields[3] & 0x800 else "cp437", errors="replace")
    if local != info.orig_filename or fields[4] != zipfile.ZIP_STORED:
        raise FormatError(
            f"'{path}': the central directory lists member '{member}' (stored) at offset "
            f"{info.header_offset}, but the local header there is of {local!r} (compression "
            f"method {fields[4]}): the archive is damaged",
            path=path,
        )


def _check_crc(window: _Window, info: zipfile.ZipInfo, path: str, member: str) -> None:
    """Refuse a member whose bytes do not match the CRC-32 the archive records for it (zipfile
    checks this only when a member is read to its end, and h5py reads a window in pieces)."""
    crc, buf = 0, bytearray(1 << 20)
    while n := window.readinto(buf):
        crc = zlib.crc32(memoryview(buf)[:n], crc)
    if crc != info.CRC:
        raise FormatError(
            f"'{path}': member '{member}' fails its CRC-32 check (recorded {info.CRC:08x}, "
            f"computed {crc:08x}): the archive is damaged",
            path=path,
        )
