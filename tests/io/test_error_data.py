"""Errors carry their facts as attributes (``.path``, ``.layer``, ``.argument``), on real bad files
and bad arguments, and every message names the file once: an error raised deep in a reader (or
in the HDF5 reader process) is passed up as it is, not wrapped a second time."""

from __future__ import annotations

import json
import pickle
import shutil
import struct
from pathlib import Path

import h5py
import numpy as np
import pytest

import rnnscope
from rnnscope import FormatError, InputError, LayerError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "files"


def _safetensors(path: Path, header: dict, data: bytes, declared: int | None = None) -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if declared is None else declared) + raw + data)


def _raised(exc: type[Exception], fn, *args, **kwargs) -> Exception:
    with pytest.raises(exc) as err:
        fn(*args, **kwargs)
    return err.value


def _once(err: Exception, path: Path) -> str:
    """The message, checked to name ``path`` exactly once."""
    text = str(err)
    assert text.count(str(path)) == 1, text
    return text


def test_truncated_h5_names_its_file(tmp_path):
    p = tmp_path / "cut.h5"
    blob = (FIXTURES / "k3_seq.h5").read_bytes()
    p.write_bytes(blob[: len(blob) // 2])
    err = _raised(FormatError, rnnscope.load, p)
    assert (err.path, err.layer, err.argument) == (str(p), None, None)
    assert _once(err, p).startswith(f"'{p}': cannot read the HDF5 file: OSError: ")


def test_error_from_the_hdf5_reader_process_keeps_its_path_and_message(tmp_path):
    p = tmp_path / "data.h5"
    with h5py.File(p, "w") as f:
        f["x"] = np.arange(10)
    err = _raised(FormatError, rnnscope.load, p)
    assert err.path == str(p)
    assert _once(err, p) == (
        f"'{p}' is an HDF5 file but not a Keras model or weights file (no 'layers' group and "
        "no 'layer_names' attribute)"
    )


def test_error_without_a_path_from_the_reader_process_gets_it_and_its_layer(tmp_path):
    p = tmp_path / "ghost.h5"
    with h5py.File(p, "w") as f:
        f.attrs["layer_names"] = np.array([b"ghost"])
        f.attrs["keras_version"] = "2.21.0"
    err = _raised(FormatError, rnnscope.load, p)
    assert (err.path, err.layer) == (str(p), "ghost")
    assert _once(err, p) == f"'{p}': layer 'ghost' is listed in layer_names but has no group"


@pytest.mark.parametrize(
    "header,data,declared,start",
    [
        (
            {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}},
            b"\0" * 16,
            1 << 60,
            "safetensors header declares 1152921504606846976 bytes",
        ),
        (
            {"w": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 4000000]}},
            b"\0" * 16,
            None,
            "tensor 'w' (F32 [1000, 1000], 4000000 bytes) has data_offsets",
        ),
        (
            {"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}},
            b"\0" * 16,
            None,
            "tensor 'a' starts at byte 8 of the data section; expected 0",
        ),
        (["not", "a", "map"], b"", None, "safetensors header is a list, not a map"),
    ],
    ids=["header-size", "offsets-past-data", "gap", "list"],
)
def test_safetensors_with_a_lying_header(tmp_path, header, data, declared, start):
    p = tmp_path / "lie.safetensors"
    _safetensors(p, header, data, declared)
    err = _raised(FormatError, rnnscope.load, p)
    assert (err.path, err.layer) == (str(p), None)
    assert _once(err, p).startswith(f"'{p}': {start}")


def test_a_layer_that_fails_to_read_names_file_and_layer(tmp_path):
    p = tmp_path / "f8.safetensors"
    _safetensors(
        p,
        {
            "head.weight": {"dtype": "F8_E4M3", "shape": [2, 2], "data_offsets": [0, 4]},
            "body.weight": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
        },
        b"\0" * 8,
    )
    ckpt = rnnscope.load(p)  # listing reads no data
    assert [i.name for i in ckpt.layers()] == ["head", "body"]
    err = _raised(FormatError, rnnscope.weights, p, layer="head")
    assert (err.path, err.layer, err.argument) == (str(p), "head", None)
    assert _once(err, p).startswith(f"'{p}': tensor 'head.weight' is F8_E4M3 (8-bit float)")
    assert rnnscope.weights(p, layer="body").weights["weight"].tolist() == [0.0]


def test_a_torch_layer_with_inconsistent_shapes_names_file_and_layer(tmp_path):
    p = tmp_path / "odd.safetensors"
    _safetensors(
        p,
        {
            "rnn.weight_ih_l0": {"dtype": "F32", "shape": [8, 3], "data_offsets": [0, 96]},
            "rnn.weight_hh_l0": {"dtype": "F32", "shape": [5, 5], "data_offsets": [96, 196]},
        },
        b"\0" * 196,
    )
    err = _raised(FormatError, rnnscope.load, p)
    assert (err.path, err.layer) == (str(p), "rnn.l0")
    assert _once(err, p).startswith(f"'{p}': recurrent layer 'rnn.l0': weight_ih (8, 3)")


@pytest.mark.parametrize(
    "make,start",
    [
        (lambda p: p.write_bytes(b""), "'{p}' is empty (0 bytes)"),
        (lambda p: p.write_bytes(b"hello, no checkpoint here"), "'{p}' is not a checkpoint"),
        (lambda p: p.write_bytes(b"PK\x03\x04 cut short"), "'{p}' starts like a zip archive"),
        (lambda p: p.mkdir(), "'{p}' is a directory"),
        (lambda p: None, "checkpoint file '{p}' does not exist"),
    ],
    ids=["empty", "unknown", "broken-zip", "directory", "missing"],
)
def test_files_that_are_not_checkpoints(tmp_path, make, start):
    p = tmp_path / "m.keras"
    make(p)
    err = _raised(FormatError, rnnscope.layers, p)
    assert err.path == str(p)
    assert _once(err, p).startswith(start.format(p=p))


def test_a_zip_holding_neither_layout(tmp_path):
    import zipfile

    p = tmp_path / "other.pt"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("readme.txt", "hello")
    err = _raised(FormatError, rnnscope.load, p)
    assert err.path == str(p)
    assert _once(err, p) == (
        f"'{p}' is a zip archive but neither a Keras .keras file (config.json + "
        "model.weights.h5) nor a torch checkpoint (data.pkl)"
    )


def test_layer_selection_errors_carry_the_layer_asked_for(tmp_path):
    src = tmp_path / "seq.keras"
    shutil.copy(FIXTURES / "k3_seq.keras", src)
    err = _raised(LayerError, rnnscope.rnn_weights, src, layer="nope")
    assert (err.path, err.layer, err.argument) == (str(src), "nope", "layer")
    assert str(err).startswith(f"layer 'nope' not found in file '{src}'; layers with weights: ")
    err = _raised(LayerError, rnnscope.rnn_weights, src, layer=99)
    assert (err.layer, err.argument) == (99, "layer")
    err = _raised(LayerError, rnnscope.rnn_weights, src, layer="dense")
    assert (err.path, err.layer, err.argument) == (str(src), "dense", "layer")
    assert "is a Dense, not a recurrent layer" in str(err)
    err = _raised(LayerError, rnnscope.rnn_weights, src)  # several recurrent layers
    assert (err.path, err.layer, err.argument) == (str(src), None, "layer")
    err = _raised(LayerError, rnnscope.weights, src, layer=1.5)
    assert (err.path, err.layer, err.argument) == (str(src), None, "layer")
    ckpt = rnnscope.load(src)
    err = _raised(LayerError, ckpt.rnn_weights, "nope")  # the Checkpoint method: the same error
    assert (err.path, err.layer, err.argument, str(err)) == (
        str(src),
        "nope",
        "layer",
        str(_raised(LayerError, rnnscope.rnn_weights, src, layer="nope")),
    )


def test_layer_selection_on_a_live_model_has_no_path():
    torch = pytest.importorskip("torch")
    err = _raised(LayerError, rnnscope.rnn_weights, torch.nn.LSTM(3, 4), layer="nope")
    assert (err.path, err.layer, err.argument) == (None, "nope", "layer")


def test_bad_keyword_arguments_are_named():
    rec = rnnscope.rnn_weights(FIXTURES / "pt_bare_gru.safetensors")
    x = np.zeros((1, 3, rec.input_dim + 1), np.float32)
    err = _raised(InputError, rnnscope.trace, rec, x)
    assert (err.layer, err.argument) == (rec.name, "x")
    good = np.zeros((1, 3, rec.input_dim), np.float32)
    err = _raised(InputError, rnnscope.trace, rec, good, initial_state=[np.zeros((1, 1))] * 5)
    assert (err.layer, err.argument) == (rec.name, "initial_state")
    t = rnnscope.trace(rec, good)
    err = _raised(LayerError, t.get, "forget")
    assert (err.layer, err.argument) == (rec.name, "name")
    for kwargs, argument in [
        ({"tol": -1}, "tol"),
        ({"jobs": 0}, "jobs"),
        ({"names": ["a", "b"]}, "names"),
    ]:
        err = _raised(InputError, rnnscope.stats, rec, **kwargs)
        assert err.argument == argument, kwargs
    err = _raised(InputError, rnnscope.compare, [rec, rec], names=["a", "b"], baseline="c")
    assert err.argument == "baseline"


def test_the_attributes_survive_pickling(tmp_path):
    p = tmp_path / "lie.safetensors"
    _safetensors(p, ["not", "a", "map"], b"")
    err = _raised(FormatError, rnnscope.load, p)
    back = pickle.loads(pickle.dumps(err))
    assert (type(back), str(back), back.path, back.layer) == (FormatError, str(err), str(p), None)
    dep = rnnscope.MissingDependencyError("needs x", path="a.pt", layer="l0", argument="source")
    back = pickle.loads(pickle.dumps(dep))
    assert (back.path, back.layer, back.argument, str(back)) == ("a.pt", "l0", "source", "needs x")
