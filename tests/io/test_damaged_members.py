"""Damage that no structural check sees: a ``.keras`` weights member whose bytes no longer match
the archive's CRC-32, and an HDF5 dataset that declares a number type no weights file holds."""

from __future__ import annotations

import shutil
import struct
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

import rnnscope
from rnnscope import FormatError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "files"
_LOCAL = struct.Struct("<4s2B4HL2L2H")


def _member_span(path: Path, member: str) -> tuple[int, int]:
    """Where ``member``'s bytes sit in the archive, found from the zip headers (not rnnscope)."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    assert info.compress_type == zipfile.ZIP_STORED  # Keras stores its weights uncompressed
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        fields = _LOCAL.unpack(fh.read(_LOCAL.size))
    start = info.header_offset + _LOCAL.size + fields[-2] + fields[-1]
    return start, info.file_size


def _read_every_layer(path: Path) -> None:
    ckpt = rnnscope.load(path)
    for i, _ in enumerate(ckpt.layers()):
        rnnscope.weights(ckpt, i)


def test_keras_member_failing_its_crc_is_refused(tmp_path):
    src = FIXTURES / "k3_seq.keras"
    _read_every_layer(src)  # the intact file reads
    p = tmp_path / "flipped.keras"
    shutil.copy(src, p)
    start, size = _member_span(p, "model.weights.h5")
    data = bytearray(p.read_bytes())
    # the last byte of the member: inside the weights' raw data, not the HDF5 superblock, so
    # h5py alone would open the file and read a changed number without complaint
    data[start + size - 1] ^= 0x01
    p.write_bytes(bytes(data))
    with zipfile.ZipFile(p) as zf:
        assert zf.testzip() == "model.weights.h5"  # the zip module's own verdict
    with pytest.raises(FormatError, match="fails its CRC-32 check") as err:
        _read_every_layer(p)
    assert str(p) in str(err.value) and "model.weights.h5" in str(err.value)
    assert err.value.path == str(p)


def test_keras_member_with_its_crc_intact_reads_as_before(tmp_path):
    """The check is not a refusal of every .keras file: a byte-identical copy reads the same."""
    p = tmp_path / "copy.keras"
    shutil.copy(FIXTURES / "k3_seq.keras", p)
    a = rnnscope.weights(rnnscope.load(FIXTURES / "k3_seq.keras"), 1)
    b = rnnscope.weights(rnnscope.load(p), 1)
    pairs = list(zip(a.items(), b.items(), strict=True))
    assert pairs
    for (*k1, x), (*k2, y) in pairs:
        assert k1 == k2
        np.testing.assert_array_equal(x, y)


def test_hdf5_dataset_declaring_float128_is_refused(tmp_path):
    p = tmp_path / "wide.weights.h5"
    shutil.copy(FIXTURES / "k3_seq.weights.h5", p)
    names: list[str] = []
    with h5py.File(p, "r") as f:
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    target = names[0]
    with h5py.File(p, "r+") as f:
        values = f[target][()]
        del f[target]
        f.create_dataset(target, data=values.astype(np.longdouble))
        assert f[target].dtype.itemsize > 8
    with pytest.raises(FormatError, match="declares float128") as err:
        _read_every_layer(p)
    assert str(p) in str(err.value) and target in str(err.value)
