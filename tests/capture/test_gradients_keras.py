"""Keras 3 activations and gradients, checked by central finite differences in float64, on
whichever backend KERAS_BACKEND selects (the suite runs all three)."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from tests.oracles import autodiff, raw

pytestmark = pytest.mark.keras_backend

B, T, F = 3, 4, 2
keras = pytest.importorskip("keras")
# Keras's eager float64 forward on JAX does not converge under central differences (it computes
# some matmuls and losses in float32), so on JAX the finite differences are taken of a float64
# numpy forward written in this test from the model's raw variables (test_numpy_forward_is_the_
# frameworks ties it to Keras's own forward); tests/oracles/test_grad_mapping_keras.py adds
# jax.grad of the framework call itself.
JAX = keras.backend.backend() == "jax"
EPS = 1e-6
RTOL = 1e-5


@pytest.fixture
def f64():
    old, old_policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")  # the global policy is cached once layers exist
    if keras.backend.backend() == "jax":  # JAX computes in float32 unless x64 is enabled
        import jax

        jax.config.update("jax_enable_x64", True)
    yield
    keras.config.set_floatx(old)
    keras.config.set_dtype_policy(old_policy)
    if keras.backend.backend() == "jax":
        import jax

        jax.config.update("jax_enable_x64", False)


def _np(t):
    return np.asarray(keras.ops.convert_to_numpy(t))


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((T, F))
    h = keras.layers.LSTM(3, return_sequences=True, name="lstm")(inp)
    h = keras.layers.Bidirectional(keras.layers.GRU(2, return_sequences=True), name="bigru")(h)
    if keras.backend.backend() in ("torch", "jax"):
        # Keras computes Dense and SimpleRNN matmuls in float32 on these backends even with
        # float64 weights (outputs move in steps of 6e-8), too coarse for float64 differences:
        # the model ends in recurrent layers there.
        h = keras.layers.GRU(2, return_sequences=True, name="srnn")(h)
        out = keras.layers.GRU(1, name="head")(h)
    else:
        h = keras.layers.SimpleRNN(2, name="srnn")(h)
        out = keras.layers.Dense(1, name="head")(h)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(seed)
    for v in model.trainable_variables:
        v.assign(rng.normal(scale=0.5, size=v.shape))
    model.compile(loss="mse")
    return model


def _data(rng):
    return rng.normal(size=(B, T, F)), rng.normal(size=(B, 1))


def _mse(y_true, y_pred):
    # A plain per-sample loss: Keras's Loss objects and compiled loss return float32 on the
    # torch and JAX backends even for float64 models, which float64 differences see as noise.
    return keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)


def _forward(model, x):
    return _np(model(x))


def _loss(model, x, y, sw=None):
    """The reference loss, in numpy: sum_i w_i * mean_j (y - y_pred)^2 / batch."""
    per = ((y - _forward(model, x)) ** 2).reshape(len(y), -1).mean(axis=1)
    return float(np.mean(per if sw is None else per * sw))


def _fd_weights(model, x, y, sw=None, per_variable=4):
    """d loss / d a few sampled entries of every trainable variable (NaN elsewhere)."""
    out = {}
    pick = np.random.default_rng(9)
    for v in model.trainable_variables:
        base = _np(v).copy()
        g = np.full_like(base, np.nan)
        flat = pick.choice(base.size, size=min(per_variable, base.size), replace=False)
        for idx in (np.unravel_index(i, base.shape) for i in flat):
            g[idx] = 0.0
            for sign in (1, -1):
                w = base.copy()
                w[idx] += sign * EPS
                v.assign(w)
                g[idx] += sign * _loss(model, x, y, sw) / (2 * EPS)
        v.assign(base)
        out[id(v)] = g
    return out


def _cell_forward(rnn, values, h):
    """One Keras recurrent layer in float64 numpy over its raw variables (values by id)."""
    c = rnn.cell
    k, rk = values[id(c.kernel)], values[id(c.recurrent_kernel)]
    b = values[id(c.bias)] if c.use_bias else None
    act = c.activation.__name__
    if isinstance(rnn, keras.layers.LSTM):
        return raw.keras_lstm(h, k, rk, b, act, c.recurrent_activation.__name__)["h"]
    if isinstance(rnn, keras.layers.GRU):
        ract = c.recurrent_activation.__name__
        return raw.keras_gru(h, k, rk, b, c.reset_after, act, ract)["h"]
    return raw.keras_simple(h, k, rk, b, act)["h"]


def _numpy_forward(model, values, x, probe=None):
    """The model in float64 numpy from its raw variables, written in this test (no rnnscope):
    Keras's layouts, sliced as in ``tests/oracles/raw.py``. ``probe = (layer, array)`` is added
    to that layer's output."""
    h = np.asarray(x, np.float64)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Bidirectional):
            fw = _cell_forward(layer.forward_layer, values, h)
            bw = _cell_forward(layer.backward_layer, values, h[:, ::-1])[:, ::-1]
            seq = layer.return_sequences
            h = np.concatenate([fw, bw] if seq else [fw[:, -1], bw[:, 0]], axis=-1)
        elif isinstance(layer, keras.layers.Dense):
            h = h @ values[id(layer.kernel)] + values[id(layer.bias)]
        elif hasattr(layer, "cell"):
            out = _cell_forward(layer, values, h)
            h = out if layer.return_sequences else out[:, -1]
        else:
            continue
        if probe is not None and probe[0] == layer.name:
            h = h + probe[1]
    return h


def _numpy_loss(model, values, x, y, sw=None, probe=None):
    per = ((y - _numpy_forward(model, values, x, probe)) ** 2).reshape(len(y), -1).mean(axis=1)
    return float(np.mean(per if sw is None else per * sw))


def _fd_numpy(model, x, y, sw, per_variable=4):
    """FD of the numpy forward w.r.t. sampled entries of every raw variable (the JAX variant)."""
    values = {id(v): _np(v).astype(np.float64) for v in model.trainable_variables}
    pick = np.random.default_rng(9)
    out = {}
    for v in model.trainable_variables:
        base = values[id(v)]
        g = np.full(base.shape, np.nan)
        for i in pick.choice(base.size, size=min(per_variable, base.size), replace=False):
            idx = np.unravel_index(i, base.shape)
            vals = []
            for sign in (1, -1):
                moved = base.copy()
                moved[idx] += sign * EPS
                vals.append(_numpy_loss(model, {**values, id(v): moved}, x, y, sw))
            g[idx] = (vals[0] - vals[1]) / (2 * EPS)
        out[id(v)] = g
    return out


def _by_hand(model, per_variable):
    """Per-variable arrays cut into gate blocks by Keras's documented columns, by hand:
    {layer: {(direction, part, gate): block}} (Dense: {("", name, ""): array})."""
    out = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            out[layer.name] = {
                ("", "kernel", ""): per_variable[id(layer.kernel)],
                ("", "bias", ""): per_variable[id(layer.bias)],
            }
            continue
        subs = (
            [("forward", layer.forward_layer), ("backward", layer.backward_layer)]
            if isinstance(layer, keras.layers.Bidirectional)
            else [("forward", layer)]
            if hasattr(layer, "cell")
            else []
        )
        for d, sub in subs:
            cell = {keras.layers.LSTM: "LSTM", keras.layers.GRU: "GRU"}.get(type(sub), "SimpleRNN")
            c = sub.cell
            blocks = raw.keras_raw_blocks(
                cell,
                per_variable[id(c.kernel)],
                per_variable[id(c.recurrent_kernel)],
                per_variable[id(c.bias)],
            )
            for (part, gate), block in blocks.items():
                out.setdefault(layer.name, {})[(d, part, gate)] = block
    return out


def test_numpy_forward_is_the_frameworks(f64, rng):
    model = _model()
    x, _ = _data(rng)
    values = {id(v): _np(v) for v in model.trainable_variables}
    np.testing.assert_allclose(_numpy_forward(model, values, x), _forward(model, x), atol=1e-6)


def test_weight_gradients_match_finite_differences(f64, rng):
    model = _model()
    x, y = _data(rng)
    sw = np.array([1.0, 0.5, 2.0])
    got = rnnscope.gradients(model, x, y, wrt="weights", sample_weight=sw, loss=_mse)
    fd = _fd_numpy(model, x, y, sw) if JAX else _fd_weights(model, x, y, sw)
    want = _by_hand(model, fd)
    assert set(want) == set(got)
    for name, blocks in want.items():
        checked = 0
        for (d, part, gate), fd_block in blocks.items():
            g = got[name]
            ours = g.array(part, gate, d) if isinstance(g, rnnscope.RNNWeights) else g.array(part)
            mask = ~np.isnan(fd_block)
            np.testing.assert_allclose(
                ours[mask],
                fd_block[mask],
                rtol=RTOL,
                atol=1e-8,
                err_msg=f"{name} {d} {part} {gate}",
            )
            checked += int(mask.sum())
        assert checked > 0, name


def test_output_gradients_match_finite_differences(f64, rng):
    model = _model(1)
    x, y = _data(rng)
    got = rnnscope.gradients(model, x, y, layers=["lstm", "bigru", "srnn"], loss=_mse)
    assert got["lstm"].shape == (B, T, 3) and got["bigru"].shape == (B, T, 4)
    assert got["srnn"].shape[0] == B
    values = {id(v): _np(v).astype(np.float64) for v in model.trainable_variables}
    for name in ("lstm", "bigru", "srnn"):
        shape = got[name].shape
        if not JAX:  # the model split at the layer's output: Keras itself before and after it
            out = model.get_layer(name).output
            h = _forward(keras.Model(model.input, out), x)
            after = keras.Model(out, model.output)
        for idx in [(0, 0, 0), (1, T - 1, 1), (2, 1, shape[-1] - 1)][
            : 3 if len(shape) == 3 else 0
        ] or [(0, 0), (2, 1)]:
            vals = []
            for sign in (1, -1):
                probe = np.zeros(shape)
                probe[idx] = sign * EPS
                if JAX:
                    vals.append(_numpy_loss(model, values, x, y, probe=(name, probe)))
                    continue
                pred = _np(after(keras.ops.convert_to_tensor(h + probe)))
                vals.append(float(np.mean(((y - pred) ** 2).reshape(B, -1).mean(axis=1))))
            fd = (vals[0] - vals[1]) / (2 * EPS)
            np.testing.assert_allclose(
                got[name][idx], fd, rtol=RTOL, atol=1e-9, err_msg=f"{name} {idx}"
            )


def test_sample_weight_is_honoured(rng):
    model = _model(2)
    x, y = _data(rng)
    x, y = x.astype("float32"), y.astype("float32")
    g_w = rnnscope.gradients(model, x, y, wrt="weights", sample_weight=np.array([1.0, 0, 0]))
    g_1 = rnnscope.gradients(model, x[:1], y[:1], wrt="weights")
    # sum(w * loss) / batch with w = (1, 0, 0) is a third of sample 0's loss
    for name in ("lstm", "head"):
        ka, kb = g_w[name].array("kernel"), g_1[name].array("kernel")  # RNN or Dense alike
        np.testing.assert_allclose(ka, kb / 3, rtol=1e-4, atol=1e-7)


def test_activations_and_leaving_nothing_behind(rng):
    model = _model(3)
    x, y = (a.astype("float32") for a in _data(rng))
    before = _np(model(x))
    weights = [_np(v).copy() for v in model.weights]
    acts = rnnscope.activations(model, x)
    assert set(acts) == {"lstm", "bigru", "srnn", "head"}
    np.testing.assert_allclose(acts["head"], before, rtol=1e-6)
    t = rnnscope.trace(model, x, layer="lstm")
    np.testing.assert_allclose(acts["lstm"], t.output(), atol=1e-5)
    rnnscope.gradients(model, x, y)
    rnnscope.gradients(model, x, y, wrt="weights", loss="mae")
    assert not any("call" in layer.__dict__ for layer in model.layers)
    np.testing.assert_array_equal(_np(model(x)), before)
    for v, w in zip(model.weights, weights, strict=True):
        np.testing.assert_array_equal(_np(v), w)


def test_errors_name_the_problem(rng):
    model = _model(4)
    x, y = (a.astype("float32") for a in _data(rng))
    uncompiled = keras.Model(model.inputs, model.outputs)
    with pytest.raises(rnnscope.InputError, match="has no compiled loss"):
        rnnscope.gradients(uncompiled, x, y)
    with pytest.raises(rnnscope.InputError, match="wrt must be one of outputs, weights"):
        rnnscope.gradients(model, x, y, wrt="inputs")
    with pytest.raises(rnnscope.LayerError, match="'nope' not found"):
        rnnscope.activations(model, x, layers="nope")
    with pytest.raises(rnnscope.UnsupportedError, match="need a Keras 3, tf-keras or torch model"):
        rnnscope.activations(rnnscope.rnn_weights(model, "lstm"), x)


def test_multi_io_nested_and_subclassed(rng):
    keras.utils.set_random_seed(5)
    inner = keras.Sequential(
        [keras.Input((T, F)), keras.layers.GRU(3, return_sequences=True, name="g")], name="inner"
    )
    a, b = keras.Input((T, F), name="a"), keras.Input((T, F), name="b")
    h = keras.layers.Concatenate()(
        [inner(a), keras.layers.LSTM(2, return_sequences=True, name="l")(b)]
    )
    o1 = keras.layers.Dense(1, name="o1")(keras.layers.SimpleRNN(2, name="s")(h))
    o2 = keras.layers.Dense(2, name="o2")(h)
    model = keras.Model([a, b], [o1, o2])
    model.compile(loss=["mse", "mse"])
    xa, xb = (rng.normal(size=(B, T, F)).astype("float32") for _ in range(2))
    ys = [rng.normal(size=(B, 1)).astype("float32"), rng.normal(size=(B, T, 2)).astype("float32")]
    g = rnnscope.gradients(model, [xa, xb], ys, layers=["inner/g", "l", "s"])
    assert g["inner/g"].shape == (B, T, 3) and g["l"].shape == (B, T, 2)
    # d (mse(o1) + mse(o2)) / d output of the nested GRU, by the backend's autodiff of the same
    # layers called on that output
    hl = model.get_layer("l")(xb)
    y1, y2 = (keras.ops.convert_to_tensor(y) for y in ys)

    def total(hg):
        h = keras.ops.concatenate([hg, hl], axis=-1)
        o1 = model.get_layer("o1")(model.get_layer("s")(h))
        o2 = model.get_layer("o2")(h)
        return keras.ops.mean(keras.ops.square(y1 - o1)) + keras.ops.mean(keras.ops.square(y2 - o2))

    want = autodiff.keras_grad_of_input(keras, total, _np(inner(xa)))
    np.testing.assert_allclose(g["inner/g"], want, rtol=1e-4, atol=1e-7)
    assert np.abs(want).max() > 1e-3

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.rnn = keras.layers.LSTM(3, return_sequences=True)
            self.out = keras.layers.Dense(1)

        def call(self, x):
            return self.out(self.rnn(x))

    sub = Sub()
    sub.compile(loss="mse")
    x = rng.normal(size=(B, T, F)).astype("float32")
    sub(x)
    name = rnnscope.layers(sub)[0].name
    ys = rng.normal(size=(B, T, 1)).astype("float32")
    g = rnnscope.gradients(sub, x, ys)
    ty = keras.ops.convert_to_tensor(ys)
    want = autodiff.keras_grad_of_input(
        keras, lambda h: keras.ops.mean(keras.ops.square(ty - sub.out(h))), _np(sub.rnn(x))
    )
    np.testing.assert_allclose(g[name], want, rtol=1e-4, atol=1e-7)
