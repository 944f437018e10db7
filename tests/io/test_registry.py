"""The reader registry is the one source of formats: detection, messages, FORMATS and the suffixes
a folder is searched for all follow it, and a reader registered here (a real, tiny file format
written by this test) is detected, listed and read without touching any other file."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest

import rnnscope
from rnnscope import FormatError
from rnnscope._io import (
    FORMATS,
    Checkpoint,
    Match,
    Reader,
    checkpoint_suffixes,
    detect_format,
    register,
    unregister,
)
from rnnscope._io._registry import READERS
from rnnscope._model import LayerInfo, LayerWeights
from rnnscope._refs import LayerRef
from rnnscope._tables import collect_sources

TINY_MAGIC = b"TINYCKPT"


def write_tiny(path: Path, layers: dict[str, dict[str, np.ndarray]]) -> None:
    """The tiny format: magic, a 4-byte header length, a JSON header, float32 data in order."""
    header = {
        name: {k: list(a.shape) for k, a in weights.items()} for name, weights in layers.items()
    }
    raw = json.dumps(header).encode()
    data = b"".join(
        np.asarray(a, "<f4").tobytes() for weights in layers.values() for a in weights.values()
    )
    path.write_bytes(TINY_MAGIC + struct.pack("<I", len(raw)) + raw + data)


class TinyReader(Reader):
    """A format only this test knows."""

    name = "tiny"
    description = "tiny test checkpoints (TINYCKPT magic)"
    suffixes = (".tiny",)

    def guess_can_open(self, path: str, head: bytes) -> Match:
        if head.startswith(TINY_MAGIC):
            return Match.CONTENT
        return Match.NAME if self.named(path) else Match.NO

    def open(self, path: str) -> Checkpoint:
        blob = Path(path).read_bytes()
        (n,) = struct.unpack("<I", blob[8:12])
        header = json.loads(blob[12 : 12 + n])
        offset = 12 + n
        refs = []
        for name, shapes in header.items():
            weights = {}
            for key, shape in shapes.items():
                count = int(np.prod(shape))
                a = np.frombuffer(blob, "<f4", count, offset).reshape(shape)
                offset += 4 * count
                weights[key] = a
            info = LayerInfo(name, "Dense", {k: tuple(s) for k, s in shapes.items()}, False)
            rec = LayerWeights(name, "Dense", weights)
            refs.append(LayerRef(info, lambda rec=rec: rec))
        return Checkpoint(path, self.name, tuple(refs), (), "tiny")


@pytest.fixture
def tiny():
    reader = register(TinyReader())
    try:
        yield reader
    finally:
        unregister("tiny")


def _listed(message: str) -> list[str]:
    """The format names a "not a checkpoint" message lists after "supported: "."""
    tail = message.split("supported: ", 1)[1]
    return [entry.split(": ", 1)[0] for entry in tail.split("; ")]


def _unknown_file_message(tmp_path: Path) -> str:
    p = tmp_path / "notes.unknown"
    p.write_bytes(b"plain text, no format at all\n")
    with pytest.raises(FormatError) as err:
        rnnscope.load(p)
    return str(err.value)


def _collected_suffixes(tmp_path: Path, suffixes: list[str]) -> tuple[set[str], str]:
    folder = tmp_path / "folder"
    folder.mkdir()
    for i, s in enumerate(suffixes):
        (folder / f"m{i}{s}").write_bytes(b"x")
    (folder / "readme.txt").write_text("not a checkpoint")
    pairs, left = collect_sources(str(folder))
    found = {"." + Path(src).name.split(".", 1)[1] for _, src in pairs}
    (skipped,) = [e for e in left if e["name"] == "readme.txt"]
    return found, skipped["reason"]


def _all_suffixes() -> list[str]:
    return [s for r in READERS for s in r.suffixes]


def test_formats_messages_and_folder_suffixes_all_follow_the_registry(tmp_path):
    names = [r.name for r in READERS]
    assert names == ["keras", "keras-h5", "safetensors", "torch", "onnx"]
    assert list(FORMATS) == names
    assert dict(FORMATS) == {r.name: r.description for r in READERS}
    assert _listed(_unknown_file_message(tmp_path)) == names
    assert checkpoint_suffixes() == (
        ".keras",
        ".h5",
        ".hdf5",
        ".safetensors",
        ".pt",
        ".pth",
        ".onnx",
    )
    found, reason = _collected_suffixes(tmp_path, _all_suffixes())
    assert found == set(_all_suffixes()) == set(checkpoint_suffixes())
    assert reason == f"not a checkpoint file name (read: {', '.join(checkpoint_suffixes())})"


def test_a_registered_reader_is_detected_listed_collected_and_read(tmp_path, tiny):
    kernel = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    bias = np.array([1.5, -2.0, 0.25, 3.0], np.float32)
    p = tmp_path / "model.tiny"
    write_tiny(p, {"dense": {"kernel": kernel, "bias": bias}})

    assert detect_format(p) == "tiny"
    assert FORMATS["tiny"] == tiny.description
    assert _listed(_unknown_file_message(tmp_path))[-1] == "tiny"
    assert checkpoint_suffixes()[-1] == ".tiny"
    found, reason = _collected_suffixes(tmp_path, _all_suffixes())
    assert ".tiny" in found and found == set(checkpoint_suffixes())
    assert reason.endswith(", .tiny)")
    with pytest.raises(FormatError, match=r"is empty \(0 bytes\); expected one of: .*tiny: tiny"):
        (tmp_path / "empty.tiny").write_bytes(b"")
        rnnscope.load(tmp_path / "empty.tiny")

    ckpt = rnnscope.load(p)
    assert ckpt.format == "tiny" and [i.name for i in ckpt.layers()] == ["dense"]
    got = rnnscope.weights(p)
    assert isinstance(got, LayerWeights)
    np.testing.assert_array_equal(got.weights["kernel"], kernel)
    np.testing.assert_array_equal(got.weights["bias"], bias)
    df = rnnscope.stats(p)
    row = df[df.gate.fillna("").eq("") & df.part.eq("bias")].iloc[0]
    assert row["mean"] == pytest.approx(float(bias.mean()))
    assert row["abs_max"] == pytest.approx(3.0)


def test_a_registered_reader_gets_the_same_guards(tmp_path, tiny):
    p = tmp_path / "cut.tiny"
    write_tiny(p, {"dense": {"kernel": np.ones((4, 4), np.float32)}})
    p.write_bytes(p.read_bytes()[:-10])  # the data section is cut short
    with pytest.raises(FormatError) as err:
        rnnscope.load(p)
    assert err.value.path == str(p)
    assert str(err.value).startswith(
        f"'{p}' looks like tiny test checkpoints (TINYCKPT magic) but cannot be read: ValueError: "
    )


def test_content_beats_the_name_and_unregistering_forgets(tmp_path, tiny):
    disguised = tmp_path / "tiny_inside.safetensors"
    write_tiny(disguised, {"d": {"w": np.zeros(2, np.float32)}})
    assert detect_format(disguised) == "tiny"  # magic bytes beat the safetensors suffix
    st = tmp_path / "really.tiny"
    raw = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    st.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 8)
    assert detect_format(st) == "safetensors"  # and safetensors' header beats the .tiny suffix
    plain = tmp_path / "plain.tiny"
    write_tiny(plain, {"d": {"w": np.zeros(2, np.float32)}})
    assert detect_format(plain) == "tiny"
    unregister("tiny")
    assert "tiny" not in FORMATS and ".tiny" not in checkpoint_suffixes()
    assert detect_format(st) == "safetensors"
    with pytest.raises(FormatError, match=re.escape(f"'{plain}' is not a checkpoint")):
        rnnscope.load(plain)


def test_register_replaces_a_reader_of_the_same_name_in_place():
    before = list(READERS)
    keras_h5 = READERS[1]
    try:
        register(type(keras_h5)())
        assert [r.name for r in READERS] == [r.name for r in before]
        assert READERS[1] is not keras_h5
    finally:
        READERS[:] = before


@pytest.mark.parametrize(
    "suffix", [".keras", ".h5", ".hdf5", ".pt", ".pth", ".bin", ".safetensors"]
)
def test_a_name_alone_is_a_fallback_only_where_the_reader_takes_it(tmp_path, suffix):
    p = tmp_path / f"text{suffix}"
    p.write_bytes(b"plain text, no format at all\n")
    with pytest.raises(FormatError) as err:
        rnnscope.load(p)
    if suffix == ".safetensors":  # the name is enough to try: its reader says what is wrong
        assert str(err.value).startswith(f"'{p}': safetensors header declares ")
    else:
        assert str(err.value).startswith(f"'{p}' is not a checkpoint rnnscope can read")
    pickle = tmp_path / f"bare{suffix}"
    pickle.write_bytes(b"\x80\x04plain pickle-looking bytes")
    if suffix in (".pt", ".pth", ".bin"):
        assert detect_format(pickle) == "torch"  # a bare pickle under a torch name
