"""A ``.keras`` whose central directory lies: it points ``model.weights.h5`` at another member's
local header and records the CRC-32 of the bytes found there, so the CRC check passes. The
member's local header must name it; else one clear error naming the file, locally and over
HTTP (the range-read path), instead of HDF5's "file signature not found"."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

import rnnscope

from .http_server import Served

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "files" / "k3_seq.keras"
MEMBER = b"model.weights.h5"


def _lying(data: bytes, to: str) -> bytes:
    """The archive with the member's central-directory entry pointed at member ``to``."""
    out = bytearray(data)
    other = zipfile.ZipFile(FIXTURE).getinfo(to)
    nlen, xlen = struct.unpack_from("<HH", out, other.header_offset + 26)
    start = other.header_offset + 30 + nlen + xlen
    crc = zlib.crc32(out[start : start + other.compress_size])
    at = out.find(b"PK\x01\x02")
    while at != -1:
        n = struct.unpack_from("<H", out, at + 28)[0]
        if out[at + 46 : at + 46 + n] == MEMBER:
            struct.pack_into("<LLL", out, at + 16, crc, other.compress_size, other.compress_size)
            struct.pack_into("<L", out, at + 42, other.header_offset)
            break
        at = out.find(b"PK\x01\x02", at + 4)
    assert at != -1
    lied = zipfile.ZipFile(io.BytesIO(bytes(out))).getinfo("model.weights.h5")
    assert (lied.header_offset, lied.CRC) == (other.header_offset, crc)  # the lie is in place
    return bytes(out)


@pytest.mark.parametrize("to", ["config.json", "metadata.json"])
def test_a_central_directory_pointing_at_another_member_is_refused(tmp_path, to):
    path = tmp_path / "lie.keras"
    path.write_bytes(_lying(FIXTURE.read_bytes(), to))
    with pytest.raises(rnnscope.FormatError, match="the archive is damaged") as info:
        rnnscope.rnn_weights(path, "lstm")
    assert f"the local header there is of '{to}'" in str(info.value)
    assert info.value.path == str(path)
    assert rnnscope.rnn_weights(FIXTURE, "lstm").units > 0  # the intact file reads


def test_a_lying_central_directory_over_http(tmp_path):
    pytest.importorskip("aiohttp")
    server = Served()
    try:
        server.objects["/lie.keras"] = _lying(FIXTURE.read_bytes(), "config.json")
        url = server.url("/lie.keras")
        with pytest.raises(rnnscope.FormatError, match=r"local header there is of 'config\.json'"):
            rnnscope.rnn_weights(url, "lstm")
    finally:
        server.close()
