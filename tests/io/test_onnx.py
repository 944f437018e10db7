"""ONNX files: LSTM/GRU/RNN nodes read into the canonical layout and traced equal to onnxruntime.

Oracles: onnxruntime's (and, for ``layout=1``, which its CPU kernels refuse, onnx's reference
evaluator's) output of the same file; weights sliced in the test by ONNX's documented layout
(gates ``i, o, f, c`` / ``z, r, h``, ``B = [Wb; Rb]``) and by torch's (``i, f, g, o``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import rnnscope
from rnnscope import FormatError, LayerError
from tests.conftest import has

from . import onnx_graphs as og

pytestmark = pytest.mark.skipif(
    not (has("onnx") and has("onnxruntime")), reason="onnx/onnxruntime are not installed"
)

X = np.random.default_rng(1).standard_normal((2, 5, 3)).astype("f4")


def _check_trace(path: Path, y: np.ndarray, **kw: object) -> None:
    t = rnnscope.trace(path, X, **kw)
    assert len(t.directions) == y.shape[2]
    for k, d in enumerate(t.directions):
        np.testing.assert_allclose(t.get("h", d), y[:, :, k], atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("op", "extra"),
    [
        ("LSTM", {}),
        ("GRU", {"linear_before_reset": 0}),
        ("GRU", {"linear_before_reset": 1}),
        ("RNN", {}),
    ],
)
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_hand_built_node_traces_equal_onnxruntime(tmp_path, op, extra, direction):
    dirs = 2 if direction == "bidirectional" else 1
    p = og.write(tmp_path / "m.onnx", op, og.weights(op, 3, 4, dirs), direction=direction, **extra)
    _check_trace(p, og.run(p, X))
    w = rnnscope.rnn_weights(p)
    assert (w.kind, w.go_backwards, w.directions) == (
        op,
        direction == "reverse",
        ("forward", "backward") if dirs == 2 else ("forward",),
    )
    if op == "GRU":
        assert w.reset_after is bool(extra["linear_before_reset"])


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_layout_1_traces_equal_reference_evaluator(tmp_path, op):
    w = og.weights(op, 3, 4, 2, seed=3)
    p0 = og.write(tmp_path / "l0.onnx", op, w, direction="bidirectional", layout=0)
    p1 = og.write(tmp_path / "l1.onnx", op, w, direction="bidirectional", layout=1)
    # the reference evaluator agrees with onnxruntime where both run
    np.testing.assert_allclose(og.run(p0, X, reference=True), og.run(p0, X), atol=1e-6)
    y1 = og.run(p1, X, layout=1, reference=True)
    _check_trace(p1, y1)


def test_weights_are_onnx_blocks_in_canonical_order(tmp_path):
    w = og.weights("LSTM", 3, 4, 2, seed=5)
    p = og.write(tmp_path / "m.onnx", "LSTM", w, direction="bidirectional")
    rec = rnnscope.rnn_weights(p)
    h = 4
    onnx_rows = {"input": 0, "output": 1, "forget": 2, "cell": 3}  # ONNX's documented i, o, f, c
    for k, d in enumerate(("forward", "backward")):
        for gate, pos in onnx_rows.items():
            rows = slice(pos * h, (pos + 1) * h)
            np.testing.assert_array_equal(rec.array("kernel", gate, d), w["W"][k, rows].T)
            np.testing.assert_array_equal(rec.array("recurrent_kernel", gate, d), w["R"][k, rows].T)
            np.testing.assert_array_equal(rec.array("bias", gate, d), w["B"][k, :16][rows])
            np.testing.assert_array_equal(
                rec.array("recurrent_bias", gate, d), w["B"][k, 16:][rows]
            )
    g = og.weights("GRU", 3, 4, 1, seed=6)
    rec = rnnscope.rnn_weights(og.write(tmp_path / "g.onnx", "GRU", g, linear_before_reset=1))
    for pos, gate in enumerate(("update", "reset", "new")):  # ONNX z, r, h
        np.testing.assert_array_equal(
            rec.array("kernel", gate), g["W"][0, pos * h : (pos + 1) * h].T
        )


def test_initial_state_and_activations(tmp_path):
    h0 = np.random.default_rng(2).standard_normal((2, 2, 4)).astype("f4")
    w = og.weights("GRU", 3, 4, 2, seed=7)
    p = og.write(
        tmp_path / "h.onnx",
        "GRU",
        w,
        direction="bidirectional",
        with_h0=True,
        linear_before_reset=1,
        activations=["HardSigmoid", "Softsign"] * 2,
    )
    _check_trace(p, og.run(p, X, h0=h0), initial_state=[h0[0], h0[1]])
    assert rnnscope.rnn_weights(p).recurrent_activation == "hard_sigmoid_keras2"
    p = og.write(tmp_path / "r.onnx", "RNN", og.weights("RNN", 3, 4, 1), activations=["Relu"])
    _check_trace(p, og.run(p, X))
    p = og.write(
        tmp_path / "l.onnx",
        "LSTM",
        og.weights("LSTM", 3, 4, 1),
        activations=["Sigmoid", "Relu", "Relu"],
    )
    _check_trace(p, og.run(p, X))


@pytest.mark.parametrize(
    ("op", "attrs", "peephole", "why"),
    [
        ("LSTM", {"clip": 0.5}, None, "clip=0.5"),
        ("LSTM", {"input_forget": 1}, None, "input_forget=1"),
        ("LSTM", {}, 0.3, "non-zero peephole"),
        ("LSTM", {"activations": ["Sigmoid", "Tanh", "Relu"]}, None, "differs from output"),
        ("GRU", {"activations": ["Sigmoid", "LeakyRelu"]}, None, "LeakyRelu is not supported"),
        (
            "RNN",
            {"activations": ["Tanh", "Relu"], "direction": "bidirectional"},
            None,
            "different activations",
        ),
        (
            "GRU",
            {"activations": ["HardSigmoid", "Tanh"], "activation_alpha": [0.3]},
            None,
            "with parameters",
        ),
    ],
)
def test_unsupported_settings_are_stated_never_traced(tmp_path, op, attrs, peephole, why):
    attrs = dict(attrs)
    dirs = 2 if attrs.get("direction") == "bidirectional" else 1
    w = og.weights(op, 3, 4, dirs)
    if peephole is not None:
        w["P"] = np.full((dirs, 12), peephole, "f4")
    p = og.write(tmp_path / "m.onnx", op, w, **attrs)
    (info,) = rnnscope.layers(p)
    assert not info.recurrent and "not a supported cell" in info.kind
    ckpt = rnnscope.load(p)
    assert any(why in n and "not traced" in n for n in ckpt.notes), ckpt.notes
    raw = rnnscope.weights(p)  # the raw tensors still read, exactly as stored
    np.testing.assert_array_equal(raw.array("W"), w["W"])
    with pytest.raises(LayerError, match="rnn/" + op):
        rnnscope.rnn_weights(p)
    with pytest.raises(LayerError):
        rnnscope.trace(p, X)


def test_zero_peepholes_read_and_trace(tmp_path):
    w = og.weights("LSTM", 3, 4, 1)
    w["P"] = np.zeros((1, 12), "f4")
    p = og.write(tmp_path / "m.onnx", "LSTM", w)
    _check_trace(p, og.run(p, X))
    assert any("peephole weights P are all zero" in n for n in rnnscope.load(p).notes)


@pytest.mark.skipif(not has("torch"), reason="torch is not installed")
@pytest.mark.filterwarnings("ignore")  # the exporter's deprecation and tracer warnings
@pytest.mark.parametrize(
    ("kind", "kw"),
    [
        ("LSTM", {"num_layers": 2, "bidirectional": True}),
        ("GRU", {"num_layers": 2}),
        ("RNN", {"nonlinearity": "relu", "bidirectional": True}),
    ],
)
def test_torch_export_traces_equal_onnxruntime_and_torch(tmp_path, kind, kw):
    import onnxruntime as ort
    import torch

    torch.manual_seed(0)
    module = getattr(torch.nn, kind)(3, 4, batch_first=True, **kw).eval()
    p = tmp_path / "m.onnx"
    torch.onnx.export(
        module, (torch.from_numpy(X),), str(p), dynamo=False, input_names=["x"], output_names=["y"]
    )
    y_ort = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": X})[0]
    with torch.no_grad():
        y_torch = module(torch.from_numpy(X))[0].numpy()
    names = [i.name for i in rnnscope.layers(p) if i.recurrent]
    assert len(names) == kw.get("num_layers", 1)
    h = X
    for name in names:  # each layer's input is the layer below's output
        h = rnnscope.trace(p, h, layer=name).output()
    np.testing.assert_allclose(h, y_ort, atol=1e-5, rtol=0)
    np.testing.assert_allclose(h, y_torch, atol=1e-5, rtol=0)
    # the first layer's forget / update gate, sliced from torch's own rows (i, f, g, o / r, z, n)
    rows = {"LSTM": ("forget", 1), "GRU": ("update", 1), "RNN": ("hidden", 0)}[kind]
    rec = rnnscope.rnn_weights(p, layer=names[0])
    want = module.weight_ih_l0.detach().numpy()[rows[1] * 4 : (rows[1] + 1) * 4].T
    np.testing.assert_array_equal(rec.array("kernel", rows[0]), want)


# -- bad and hostile files ---------------------------------------------------------------------
def _lstm_file(tmp_path: Path) -> Path:
    return og.write(tmp_path / "m.onnx", "LSTM", og.weights("LSTM", 3, 4, 1))


def test_truncated_garbage_and_non_models(tmp_path):
    good = _lstm_file(tmp_path).read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(FormatError, match=r"cut\.onnx' cannot be read as an ONNX model"):
        rnnscope.load(cut)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(np.random.default_rng(3).bytes(4096))
    with pytest.raises(FormatError, match=r"junk\.onnx"):
        rnnscope.layers(junk)
    text = tmp_path / "text.onnx"
    text.write_bytes(b"hello world, not a model")
    with pytest.raises(FormatError, match=r"text\.onnx"):
        rnnscope.load(text)


def _external_model(tmp_path: Path, location: str, *, length: int | None = None) -> Path:
    import onnx
    from onnx import TensorProto

    p = _lstm_file(tmp_path)
    model = onnx.load(str(p))
    t = next(t for t in model.graph.initializer if t.name == "R")
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    entries = {"location": location, "offset": "0"}
    if length is not None:
        entries["length"] = str(length)
    for k, v in entries.items():
        e = t.external_data.add()
        e.key, e.value = k, v
    out = tmp_path / "ext.onnx"
    onnx.save(model, str(out))
    return out


def test_external_data_inside_the_folder_reads(tmp_path):
    r = og.weights("LSTM", 3, 4, 1)["R"]
    (tmp_path / "weights.bin").write_bytes(r.tobytes())
    p = _external_model(tmp_path, "weights.bin", length=r.nbytes)
    rec = rnnscope.rnn_weights(p)
    np.testing.assert_array_equal(rec.array("recurrent_kernel", "forget"), r[0, 8:12].T)


@pytest.mark.parametrize("how", ["parent", "absolute", "symlink", "too-long", "missing"])
def test_external_data_never_reads_outside_or_beyond(tmp_path, how):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"S" * 4096)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    location = {
        "parent": "../secret.bin",
        "absolute": str(secret),
        "symlink": "link.bin",
        "too-long": "short.bin",
        "missing": "nope.bin",
    }[how]
    if how == "symlink":
        os.symlink(secret, model_dir / "link.bin")
    (model_dir / "short.bin").write_bytes(b"\0" * 16)
    p = _external_model(model_dir, location)
    want = {
        "parent": "not inside the model's folder",
        "absolute": "not inside",
        "symlink": "not inside",
        "too-long": "the file holds 16 bytes",
        "missing": "does not exist",
    }[how]
    with pytest.raises(FormatError, match=want) as err:
        rnnscope.rnn_weights(p)
    assert err.value.path == str(p)
    assert "SSSS" not in str(err.value)


def test_declared_sizes_are_checked_before_reading(tmp_path, monkeypatch):
    import onnx

    p = _lstm_file(tmp_path)
    model = onnx.load(str(p))
    t = next(t for t in model.graph.initializer if t.name == "W")
    t.dims[:] = [1, 16, 30_000_000]  # raw_data still holds 16*3 floats
    bad = tmp_path / "lie.onnx"
    onnx.save(model, str(bad))
    assert rnnscope.layers(bad)[0].shapes["W"] == (1, 16, 30_000_000)  # listing reads no data
    with pytest.raises(FormatError, match=r"declares shape \(1, 16, 30000000\)") as err:
        rnnscope.rnn_weights(bad)
    assert err.value.path == str(bad)
    # a consistent tensor over the read budget is refused before it is converted
    monkeypatch.setenv("RNNSCOPE_MAX_TENSOR_BYTES", "100")
    with pytest.raises(FormatError, match="over the read budget"):
        rnnscope.rnn_weights(p)


def test_detection_and_folders(tmp_path):
    from rnnscope._io._registry import checkpoint_suffixes, detect_format

    p = _lstm_file(tmp_path)
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(p.read_bytes())
    assert detect_format(renamed) == "onnx"  # by content, whatever the name
    assert ".onnx" in checkpoint_suffixes()


@pytest.mark.skipif(not (has("tf2onnx") and has("keras")), reason="tf2onnx/keras not installed")
@pytest.mark.filterwarnings("ignore")  # tf2onnx's deprecation warnings
def test_keras_export_through_tf2onnx_traces_equal_onnxruntime_and_keras(tmp_path):
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        pytest.skip("tf2onnx converts TensorFlow graphs: the TensorFlow leg runs this")
    import keras
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    L = keras.layers
    inp = keras.Input((5, 3), batch_size=2)
    h = L.LSTM(4, return_sequences=True, name="lstm")(inp)
    out = L.Bidirectional(L.LSTM(3, return_sequences=True), name="bi")(h)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(8)
    for v in model.weights:
        v.assign(rng.normal(scale=0.6, size=tuple(v.shape)).astype("float32"))
    spec = (tf.TensorSpec((2, 5, 3), tf.float32, name="x"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=14)
    p = tmp_path / "keras.onnx"
    p.write_bytes(proto.SerializeToString())
    y_ort = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": X})[0]
    y_keras = keras.ops.convert_to_numpy(model(X))
    names = [i.name for i in rnnscope.layers(p) if i.recurrent]
    assert len(names) == 2  # tf2onnx writes LSTM nodes (a Keras 3 GRU becomes a Loop)
    h = X
    for name in names:
        h = rnnscope.trace(p, h, layer=name).output()
    np.testing.assert_allclose(h, y_ort, atol=1e-5, rtol=0)
    np.testing.assert_allclose(h, y_keras, atol=1e-5, rtol=0)
    # the first layer's forget gate, sliced from Keras's own kernel (columns i, f, c, o)
    kernel = keras.ops.convert_to_numpy(model.get_layer("lstm").cell.kernel)
    got = rnnscope.rnn_weights(p, layer=names[0]).array("kernel", "forget")
    np.testing.assert_array_equal(got, kernel[:, 4:8])


def test_fuzzed_onnx_files_read_or_raise_format_error(tmp_path):
    """Bit flips, byte runs, truncations and insertions: every mutation reads completely or is a
    FormatError naming the file; never another exception (a hang would stop the suite)."""
    w = og.weights("GRU", 3, 4, 2)
    data = og.write(tmp_path / "src.onnx", "GRU", w, direction="bidirectional").read_bytes()
    rng = np.random.default_rng(2026)
    errors = 0
    for k in range(200):
        b = bytearray(data)
        kind = k % 4
        if kind == 0:
            for pos in rng.integers(0, len(b), size=int(rng.integers(1, 9))):
                b[pos] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:
            pos = int(rng.integers(0, len(b)))
            run = rng.bytes(int(rng.integers(1, 64)))
            b[pos : pos + len(run)] = run
        elif kind == 2:
            b = b[: int(rng.integers(0, len(b)))]
        else:
            pos = int(rng.integers(0, len(b)))
            b[pos:pos] = rng.bytes(int(rng.integers(1, 32)))
        p = tmp_path / f"case{k}.onnx"
        p.write_bytes(bytes(b))
        try:
            rnnscope.summary(p, quiet=True)
            for info in rnnscope.layers(p):
                rnnscope.weights(p, info.name)
        except FormatError as err:
            assert str(p) in str(err), err
            errors += 1
    assert errors > 20  # the mutations do break files
