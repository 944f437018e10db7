"""Keras ``ConvLSTM1D/2D/3D``: per-gate kernel, recurrent-kernel and bias blocks, the same kind
and blocks live and from ``.keras``/``.weights.h5``/``.h5``, statistics and weight gradients; a
ConvLSTM has no ``rnn_weights`` record, and says so (its trace: ``tests/test_convlstm_trace.py``).

Oracle: the layer's raw variables sliced in the test by Keras's documented layout (gates ``i, f,
c, o`` on the last axis, ``4 * filters`` wide) and the backend's own gradients.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from tests.oracles import autodiff

keras = pytest.importorskip("keras")
L = keras.layers

GATE_ORDER = ("input", "forget", "cell", "output")  # Keras's ConvLSTM gate columns
SHAPES = {
    "ConvLSTM1D": ((4, 5, 2), 3),  # (time, *space, channels), kernel_size
    "ConvLSTM2D": ((3, 4, 5, 2), (2, 3)),
    "ConvLSTM3D": ((2, 3, 3, 4, 1), (2, 1, 2)),
}


def _model(kind: str):
    shape, ks = SHAPES[kind]
    inp = keras.Input(shape)
    layer = getattr(L, kind)(3, ks, return_sequences=True, name="conv")
    model = keras.Model(inp, layer(inp))
    rng = np.random.default_rng(2)
    for v in model.weights:
        v.assign(rng.normal(scale=0.5, size=tuple(v.shape)).astype("float32"))
    return model, layer


def _raw_blocks(layer) -> dict[str, np.ndarray]:
    cell, u = layer.cell, 3
    out = {}
    for part, v in (
        ("kernel", cell.kernel),
        ("recurrent_kernel", cell.recurrent_kernel),
        ("bias", cell.bias),
    ):
        a = keras.ops.convert_to_numpy(v)
        for k, gate in enumerate(GATE_ORDER):
            out[f"{part}/{gate}"] = a[..., k * u : (k + 1) * u]
    return out


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_convlstm_gate_blocks_live_and_from_files(tmp_path, kind):
    model, layer = _model(kind)
    want = _raw_blocks(layer)
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    model.save(tmp_path / "m.h5")
    for source in (model, *(tmp_path / n for n in ("m.keras", "m.weights.h5", "m.h5"))):
        (info,) = rnnscope.layers(source)
        assert (info.name, info.kind, info.recurrent) == ("conv", kind, False), source
        assert info.shapes["kernel"] == tuple(layer.cell.kernel.shape)
        rec = rnnscope.weights(source, "conv")
        assert sorted(rec.names) == sorted(want), source
        for name, block in want.items():
            np.testing.assert_array_equal(rec.array(name), block, err_msg=f"{source} {name}")


def test_convlstm_stats_gradients_and_no_trace():
    model, layer = _model("ConvLSTM2D")
    want = _raw_blocks(layer)
    df = rnnscope.stats(model)
    row = df[(df["layer"] == "conv") & (df["part"] == "recurrent_kernel/forget")].iloc[0]
    block = want["recurrent_kernel/forget"]
    assert row["size"] == block.size
    assert row["mean"] == pytest.approx(float(block.mean()), rel=1e-6)
    assert row["abs_max"] == pytest.approx(float(np.abs(block).max()), rel=1e-6)
    x = np.random.default_rng(3).standard_normal((2, *SHAPES["ConvLSTM2D"][0])).astype("f4")
    y = np.random.default_rng(4).standard_normal(tuple(model(x).shape)).astype("f4")
    yt = keras.ops.convert_to_tensor(y)
    grads = autodiff.keras_grads(keras, model, lambda p: keras.ops.mean((p - yt) ** 2), x)
    g = rnnscope.gradients(model, x, y, loss="mse", wrt="weights")["conv"]
    full = grads[id(layer.cell.recurrent_kernel)]
    np.testing.assert_allclose(
        g.array("recurrent_kernel/output"), full[..., 9:12], rtol=1e-4, atol=1e-6
    )
    with pytest.raises(rnnscope.LayerError, match="is a ConvLSTM2D, not a recurrent layer"):
        rnnscope.rnn_weights(model, "conv")
