"""Bad files give FormatError naming the file: never another exception, a hang, or executed code."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

import rnnscope
from rnnscope import FormatError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "files"


def _fixture(suffix: str) -> Path:
    found = sorted(p for p in FIXTURES.glob(f"*{suffix}") if not p.name.endswith((".npz", ".json")))
    if not found:
        pytest.skip(f"no {suffix} fixture")
    return found[0]


def _read_all(path: Path) -> None:
    """Open and read every layer, as summary() does."""
    rnnscope.summary(path, quiet=True)


@pytest.mark.parametrize(
    "name", ["empty.h5", "empty.keras", "empty.safetensors", "empty.pt", "empty.onnx"]
)
def test_empty_file(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(b"")
    with pytest.raises(FormatError, match=rf"'{p}' is empty \(0 bytes\)"):
        rnnscope.load(p)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FormatError, match="does not exist"):
        rnnscope.load(tmp_path / "nope.keras")
    with pytest.raises(FormatError, match="is a directory"):
        rnnscope.layers(tmp_path)


@pytest.mark.parametrize("ext", [".h5", ".keras", ".safetensors", ".pt", ".bin", ".txt", ".onnx"])
def test_random_bytes_with_any_extension(tmp_path, ext):
    p = tmp_path / f"random{ext}"
    p.write_bytes(np.random.default_rng(7).bytes(4096))
    with pytest.raises(FormatError, match=r"random.*(not a checkpoint|cannot be read|declares)"):
        rnnscope.load(p)


def test_hdf5_that_is_not_keras(tmp_path):
    p = tmp_path / "data.h5"
    with h5py.File(p, "w") as f:
        f["x"] = np.arange(10)
    with pytest.raises(FormatError, match=r"data\.h5' is an HDF5 file but not a Keras"):
        rnnscope.load(p)


def test_zip_without_members_and_with_unsafe_names(tmp_path):
    plain = tmp_path / "plain.keras"
    with zipfile.ZipFile(plain, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(FormatError, match=r"neither a Keras \.keras file"):
        rnnscope.load(plain)
    evil = tmp_path / "evil.keras"
    shutil.copy(_fixture(".keras"), evil)
    with zipfile.ZipFile(evil, "a") as z:
        z.writestr("../../escape.txt", "x")
    with pytest.raises(FormatError, match=r"zip member name '../../escape.txt' is unsafe"):
        rnnscope.load(evil)
    assert not (tmp_path.parent / "escape.txt").exists()


def test_keras_zip_with_broken_config(tmp_path):
    src = _fixture(".keras")
    bad = tmp_path / "badconfig.keras"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            data = b"{not json" if item.filename == "config.json" else zin.read(item.filename)
            zout.writestr(item, data)
    with pytest.raises(FormatError, match=r"config.json is not valid JSON"):
        rnnscope.load(bad)


def _safetensors(header: dict, data: bytes, declared: int | None = None) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if declared is None else declared) + raw + data


@pytest.mark.parametrize(
    "header,data,declared,match",
    [
        (
            {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}},
            b"\0" * 16,
            1 << 60,
            "declares",
        ),
        (
            {"w": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 4000000]}},
            b"\0" * 16,
            None,
            "data section holds 16 bytes",
        ),
        (
            {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}},
            b"\0" * 16,
            None,
            "data_offsets",
        ),
        (
            {"w": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 8]}},
            b"\0" * 8,
            None,
            "unknown dtype",
        ),
        (
            {"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}},
            b"\0" * 8,
            None,
            "invalid shape",
        ),
        (
            {"w": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 8]}},
            b"\0" * 8,
            None,
            "data_offsets",
        ),
        (["not", "a", "map"], b"", None, "not a map"),
    ],
    ids=[
        "absurd-header-size",
        "absurd-shape",
        "offsets-mismatch",
        "dtype",
        "shape",
        "huge",
        "list",
    ],
)
def test_safetensors_lying_headers(tmp_path, header, data, declared, match):
    p = tmp_path / "lie.safetensors"
    p.write_bytes(_safetensors(header, data, declared))
    with pytest.raises(FormatError, match=match):
        _read_all(p)


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickle_that_would_run_code_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "pwned"
    zipped = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "payload": _Evil(str(marker))}, zipped)
    legacy = tmp_path / "evil_legacy.pth"
    legacy.write_bytes(pickle.dumps(_Evil(str(marker)), protocol=2))
    for p in (zipped, legacy):
        with pytest.raises(FormatError, match=rf"'{p}'.*(refused|cannot be read)"):
            rnnscope.load(p)
    assert not marker.exists(), "a pickle ran code"
    # Sanity: unpickling it for real would have created the file.
    pickle.loads(legacy.read_bytes())
    assert marker.exists()


def test_pt_that_is_not_a_state_dict(tmp_path):
    torch = pytest.importorskip("torch")
    p = tmp_path / "list.pt"
    torch.save([1, 2, 3], p)
    with pytest.raises(FormatError, match="expected a state dict"):
        rnnscope.load(p)


def _fuzz_sources() -> list[Path]:
    wanted = [".keras", ".weights.h5", "_weights.h5", ".safetensors", ".pt"]
    legacy = sorted(p for p in FIXTURES.glob("*.h5") if not p.name.endswith("weights.h5"))
    out = [_fixture(s) for s in wanted if any(FIXTURES.glob(f"*{s}"))]
    return out + legacy[:2]


class _Hang(Exception):
    pass


def _snapshot(path: Path) -> dict[tuple, object]:
    """Every layer's settings and arrays as read from ``path``, keyed by (index, name, ...)."""
    ckpt = rnnscope.load(path)
    out: dict[tuple, object] = {}
    for i, info in enumerate(ckpt.layers()):
        rec = rnnscope.weights(ckpt, i)
        if isinstance(rec, rnnscope.RNNWeights):
            out[(i, info.name, "settings")] = (
                rec.cell,
                rec.activation,
                rec.recurrent_activation,
                rec.reset_after,
                rec.go_backwards,
                rec.merge_mode,
                rec.proj_size,
            )
            out |= {(i, info.name, d, p, g): a for d, p, g, a in rec.items()}
        else:
            out |= {(i, info.name, n): a for n, a in rec.items()}
    return out


# A mutated file that still loads must read exactly as the original, or be one of these benign
# mutations (each checked as narrowly as stated):
BENIGN = {
    # Same layers, parts, shapes and settings; only stored numbers (or the number type an HDF5
    # dataset declares, within float16/32/64: wider types are refused) differ. HDF5 datasets and
    # safetensors carry no checksum over their numbers, and torch's loader does not check the
    # CRC-32 of a .pt member: a changed number is indistinguishable from a trained one. (A
    # .keras weights member does carry one, and rnnscope checks it: tests/io/test_damaged_members.)
    "numbers": "only values (or the declared number type) of stored arrays changed",
    # A name inside the file changed (names are data): the file is read by the names it now
    # holds, so a layer or weight is renamed, or a weight whose name no longer fits its layer
    # is left out (the layer is then read without it, e.g. as a layer without bias).
    "names": "a stored name changed",
    # A key or value of the JSON config changed and the JSON still parses: the setting takes
    # Keras's default (as Keras would for a missing key) or the notes say it was assumed.
    "config": "a config setting changed, arrays unchanged",
}


def _classify(base: dict[tuple, object], got: dict[tuple, object]) -> str:
    """'same', or the BENIGN kind of a loaded mutation; AssertionError for anything else."""
    if set(base) != set(got):
        return "names"
    settings = [k for k in base if k[-1] == "settings" and base[k] != got[k]]
    arrays = [k for k in base if k[-1] != "settings"]
    for k in arrays:
        a, b = np.asarray(base[k]), np.asarray(got[k])
        assert a.shape == b.shape, (k, a.shape, b.shape)
    changed = [
        k
        for k in arrays
        if np.asarray(base[k]).dtype != np.asarray(got[k]).dtype
        or not np.array_equal(base[k], got[k], equal_nan=True)
    ]
    assert not (settings and changed), (settings, changed)  # never both at once
    return "config" if settings else "numbers" if changed else "same"


def _alarm(signum, frame):
    raise _Hang()


@pytest.mark.slow
def test_fuzz_every_format():
    """Bit flips, byte runs, truncations and insertions in a fixture of every format."""
    sources = _fuzz_sources()
    assert len(sources) >= 6, sources
    rng = np.random.default_rng(2024)
    cases = 0
    outcomes = {"same": 0, "FormatError": 0} | dict.fromkeys(BENIGN, 0)
    old = signal.signal(signal.SIGALRM, _alarm)
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"rnnscope-fuzz-{os.getpid()}"
    tmp.mkdir(exist_ok=True)
    try:
        for src in sources:
            data = bytearray(src.read_bytes())
            base = _snapshot(src)
            for k in range(100):
                b = bytearray(data)
                kind = k % 4
                if kind == 0:  # flip bits
                    for pos in rng.integers(0, len(b), size=int(rng.integers(1, 9))):
                        b[pos] ^= 1 << int(rng.integers(0, 8))
                elif kind == 1:  # overwrite a run with random bytes
                    pos = int(rng.integers(0, len(b)))
                    run = rng.bytes(int(rng.integers(1, 64)))
                    b[pos : pos + len(run)] = run
                elif kind == 2:  # truncate
                    b = b[: int(rng.integers(0, len(b)))]
                else:  # insert bytes
                    pos = int(rng.integers(0, len(b)))
                    b[pos:pos] = rng.bytes(int(rng.integers(1, 32)))
                p = tmp / f"case{k}{''.join(src.suffixes)}"
                p.write_bytes(bytes(b))
                signal.alarm(30)  # above the reader's own 10 s guard
                try:
                    _read_all(p)
                    outcomes[_classify(base, _snapshot(p))] += 1
                except FormatError as err:
                    assert str(p) in str(err), err
                    outcomes["FormatError"] += 1
                except _Hang:
                    pytest.fail(f"hang on a mutation of {src.name} (case {k})")
                finally:
                    signal.alarm(0)
                cases += 1
    finally:
        signal.signal(signal.SIGALRM, old)
        shutil.rmtree(tmp, ignore_errors=True)
    assert cases >= 500
    print(f"fuzz: {cases} cases, {outcomes}")


def test_pt_without_torch_names_the_extra():
    path = next(FIXTURES.glob("*.pt"))
    code = (
        "import sys\nsys.modules['torch'] = None\n"
        "import importlib.util\n_find = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda n, *a: None if n == 'torch' else _find(n, *a)\n"
        "import rnnscope\n"
        f"try:\n    rnnscope.load(r'{path}')\n"
        "except rnnscope.MissingDependencyError as e:\n    print('MISSING', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "MISSING" in out.stdout, out.stderr
    assert "pip install 'rnnscope[torch]'" in out.stdout and path.name in out.stdout


def test_float8_safetensors_and_torch_refusal_messages_are_plain(tmp_path):
    p = tmp_path / "f8.safetensors"
    p.write_bytes(
        _safetensors(
            {"l.weight": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}, b"\0\0"
        )
    )
    with pytest.raises(FormatError, match=r"'l.weight' is F8_E4M3 \(8-bit float\)"):
        _read_all(p)
    torch = pytest.importorskip("torch")
    evil = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), evil)  # a whole pickled module, not a state dict
    with pytest.raises(FormatError) as info:
        rnnscope.load(evil)
    assert "\x1b[" not in str(info.value) and "refused to unpickle" in str(info.value)
