"""ConvLSTM1D/2D/3D traces, on whichever backend KERAS_BACKEND selects (the suite runs all three).

Oracles: the layer's own output (``model(x)``), and every gate at every step from a loop written
here with Keras's own convolution (``keras.ops.conv``) over the raw variables sliced by Keras's
documented layout (gates ``i, f, c, o`` on the kernel's last axis; the input convolution with the
layer's padding, strides and dilation, the recurrent one ``"same"``, stride 1).
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope

pytestmark = pytest.mark.keras_backend
keras = pytest.importorskip("keras")
L = keras.layers
ATOL = 1e-5
F = 3

CASES = {
    "1d-valid": ("ConvLSTM1D", (4, 7, 2), {"kernel_size": 3}),
    "1d-same-stride2": (
        "ConvLSTM1D",
        (3, 9, 2),
        {"kernel_size": 3, "strides": 2, "padding": "same"},
    ),
    "1d-same-dilation2": (
        "ConvLSTM1D",
        (3, 9, 2),
        {"kernel_size": 2, "dilation_rate": 2, "padding": "same"},
    ),
    "2d-same-even-backwards": (
        "ConvLSTM2D",
        (3, 6, 5, 2),
        {"kernel_size": (2, 3), "padding": "same", "go_backwards": True},
    ),
    "2d-valid-strides": ("ConvLSTM2D", (3, 7, 6, 2), {"kernel_size": (3, 2), "strides": (2, 1)}),
    "2d-same-strides": (
        "ConvLSTM2D",
        (2, 7, 6, 2),
        {"kernel_size": (3, 2), "strides": (2, 3), "padding": "same"},
    ),
    "3d-same": ("ConvLSTM3D", (2, 4, 3, 5, 1), {"kernel_size": (2, 1, 3), "padding": "same"}),
}


# Every case on TensorFlow; on JAX and torch (slow to compile each new convolution) a subset
# that still covers valid and same padding, strides, dilation, an even kernel, go_backwards, 3D.
ON_BACKEND = (
    sorted(CASES)
    if keras.backend.backend() == "tensorflow"
    else ["1d-same-dilation2", "1d-valid", "2d-same-even-backwards", "2d-same-strides", "3d-same"]
)


def _np(t):
    return np.asarray(keras.ops.convert_to_numpy(t))


def _model(kind, shape, kw, seed=0):
    inp = keras.Input(shape)
    layer = getattr(L, kind)(F, return_sequences=True, name="conv", **kw)
    model = keras.Model(inp, layer(inp))
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.normal(scale=0.5, size=tuple(v.shape)).astype("float32"))
    x = rng.normal(size=(2, *shape)).astype("float32")
    return model, layer, x


def _keras_gates(layer, x, kw):
    """Every gate at every step, by Keras's convolution, in processing order."""
    ops, cell = keras.ops, layer.cell
    k, u, b = (_np(v) for v in (cell.kernel, cell.recurrent_kernel, cell.bias))
    order = x[:, ::-1] if kw.get("go_backwards") else x
    conv = {
        "strides": kw.get("strides", 1),
        "padding": kw.get("padding", "valid"),
        "dilation_rate": kw.get("dilation_rate", 1),
    }
    h = c = None
    rec = {n: [] for n in ("input", "forget", "cell", "output", "c", "h")}
    for s in range(x.shape[1]):
        xs = [
            _np(ops.conv(order[:, s], k[..., j * F : (j + 1) * F], **conv)) + b[j * F : (j + 1) * F]
            for j in range(4)
        ]
        if h is None:
            h = np.zeros(xs[0].shape, "float32")
            c = np.zeros_like(h)
        hs = [_np(ops.conv(h, u[..., j * F : (j + 1) * F], padding="same")) for j in range(4)]
        i, f = (1 / (1 + np.exp(-(xs[j] + hs[j]))) for j in (0, 1))
        g = np.tanh(xs[2] + hs[2])
        o = 1 / (1 + np.exp(-(xs[3] + hs[3])))
        c = f * c + i * g
        h = o * np.tanh(c)
        for n, v in zip(rec, (i, f, g, o, c, h), strict=True):
            rec[n].append(v)
    return {n: np.stack(v, axis=1) for n, v in rec.items()}


@pytest.mark.parametrize("case", ON_BACKEND)
def test_trace_equals_keras_output(case):
    kind, shape, kw = CASES[case]
    model, _, x = _model(kind, shape, kw)
    t = rnnscope.trace(model, x, layer="conv")
    out = _np(model(x))
    assert t.output().shape == out.shape
    np.testing.assert_allclose(t.output(), out, atol=ATOL)
    np.testing.assert_allclose(t.output(sequences=False), out[:, -1], atol=ATOL)


@pytest.mark.parametrize("case", ["2d-same-even-backwards", "3d-same"])
def test_every_gate_equals_keras_convolutions(case):
    kind, shape, kw = CASES[case]
    model, layer, x = _model(kind, shape, kw, seed=1)
    want = _keras_gates(layer, x, kw)
    t = rnnscope.trace(model, x, layer="conv")
    assert t.names == ("input", "forget", "cell", "output", "c", "h")
    for name, expected in want.items():
        got = t.get(name)  # input order
        if kw.get("go_backwards"):
            got = got[:, ::-1]
        np.testing.assert_allclose(got, expected, atol=ATOL, err_msg=name)


def test_initial_state_and_refusals(tmp_path):
    kind, shape, kw = CASES["2d-same-strides"]
    model, layer, x = _model(kind, shape, kw, seed=2)
    out_shape = tuple(_np(model(x)).shape[2:])
    rng = np.random.default_rng(3)
    h0, c0 = (rng.normal(size=(2, *out_shape)).astype("float32") for _ in range(2))
    want = _np(layer(keras.ops.convert_to_tensor(x), initial_state=[h0, c0]))
    got = rnnscope.trace(model, x, layer="conv", initial_state=[h0, c0]).output()
    np.testing.assert_allclose(got, want, atol=ATOL)
    with pytest.raises(rnnscope.InputError, match=r"initial_state.*\[h, c\]"):
        rnnscope.trace(model, x, layer="conv", initial_state=[h0])
    with pytest.raises(rnnscope.InputError, match=r"x for layer 'conv' \(ConvLSTM2D\)"):
        rnnscope.trace(model, x[..., :1], layer="conv")
    with pytest.raises(rnnscope.UnsupportedError, match="masks and lengths are not traced"):
        rnnscope.trace(model, x, layer="conv", lengths=np.array([1, 2]))
    model.save(tmp_path / "m.keras")
    with pytest.raises(rnnscope.UnsupportedError, match="live Keras model only"):
        rnnscope.trace(tmp_path / "m.keras", x, layer="conv")
    inp = keras.Input((2, 2, 5, 4))
    first = keras.Model(inp, L.ConvLSTM2D(2, 2, data_format="channels_first", name="cf")(inp))
    with pytest.raises(rnnscope.UnsupportedError, match="channels_first"):
        rnnscope.trace(first, np.zeros((1, 2, 2, 5, 4), "float32"), layer="cf")
