"""flax.nnx cells, ``nnx.RNN`` and ``nnx.Bidirectional``: layout, trace, masks, stats.

Oracles: flax's own output, and numpy cells written here from Flax's equations (read in
``flax/nnx/nn/recurrent.py``) on the cells' raw Linear parameters, sliced by hand; never
rnnscope's layout code.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from rnnscope import InputError, UnsupportedError

nnx = pytest.importorskip("flax.nnx")
jax = pytest.importorskip("jax")
jnp = jax.numpy

T, B, F, H = 5, 3, 3, 4
TOL = 1e-5


def sig(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def raw(layer: object, name: str = "kernel") -> np.ndarray:
    return np.asarray(getattr(layer, name)[...], np.float64)


def numpy_cell(cell: object, x: np.ndarray, reverse: bool = False) -> dict[str, np.ndarray]:
    """Flax's equations in numpy from the raw parameters; ``(batch, time, units)`` in input
    order, gates under rnnscope's names."""
    kind = type(cell).__name__
    steps = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
    h = np.zeros((x.shape[0], H))
    c = np.zeros_like(h)
    out: dict[str, list[tuple[int, np.ndarray]]] = {}
    for t in steps:
        xt = x[:, t].astype(np.float64)
        if kind == "LSTMCell":
            i = sig(xt @ raw(cell.ii) + h @ raw(cell.hi) + raw(cell.hi, "bias"))
            f = sig(xt @ raw(cell.if_) + h @ raw(cell.hf) + raw(cell.hf, "bias"))
            g = np.tanh(xt @ raw(cell.ig) + h @ raw(cell.hg) + raw(cell.hg, "bias"))
            o = sig(xt @ raw(cell.io) + h @ raw(cell.ho) + raw(cell.ho, "bias"))
            c = f * c + i * g
            h = o * np.tanh(c)
            rec = {"input": i, "forget": f, "cell": g, "output": o, "c": c}
        elif kind == "OptimizedLSTMCell":
            y = xt @ raw(cell.dense_i) + h @ raw(cell.dense_h) + raw(cell.dense_h, "bias")
            i, f, g, o = (
                sig(y[:, :H]),
                sig(y[:, H : 2 * H]),
                np.tanh(y[:, 2 * H : 3 * H]),
                sig(y[:, 3 * H :]),
            )
            c = f * c + i * g
            h = o * np.tanh(c)
            rec = {"input": i, "forget": f, "cell": g, "output": o, "c": c}
        elif kind == "GRUCell":
            xi = xt @ raw(cell.dense_i) + raw(cell.dense_i, "bias")  # blocks r, z, n
            hh = h @ raw(cell.dense_h)  # no bias
            r = sig(xi[:, :H] + hh[:, :H])
            z = sig(xi[:, H : 2 * H] + hh[:, H : 2 * H])
            n = np.tanh(xi[:, 2 * H :] + r * hh[:, 2 * H :])
            h = (1 - z) * n + z * h
            rec = {"update": z, "reset": r, "new": n}
        else:  # SimpleCell
            h = np.tanh(xt @ raw(cell.dense_i) + raw(cell.dense_i, "bias") + h @ raw(cell.dense_h))
            rec = {}
        for k, v in {**rec, "h": h}.items():
            out.setdefault(k, []).append((t, v))
    return {
        k: np.stack([v for _, v in sorted(vs, key=lambda p: p[0])], axis=1) for k, vs in out.items()
    }


def make(kind: str, seed: int, **kw: object) -> object:
    """A cell built abstractly (no initialiser runs: compiling them costs seconds), its
    parameters then set from numpy: flax initialises biases to zero, these make them count."""
    rng = np.random.default_rng(seed)
    cell = nnx.eval_shape(lambda: getattr(nnx, kind)(F, H, rngs=nnx.Rngs(0), **kw))
    return fill(cell, rng)


def fill(module: object, rng: np.random.Generator) -> object:
    for _, v in nnx.iter_graph(module):
        if isinstance(v, nnx.Param):
            v.set_value(jnp.asarray(rng.normal(scale=0.5, size=v.shape).astype(np.float32)))
    return module


CELLS = ("LSTMCell", "OptimizedLSTMCell", "GRUCell", "SimpleCell")


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(B, T, F)).astype(np.float32)


@pytest.fixture(scope="module")
def rnns() -> dict[str, object]:
    return {k: nnx.RNN(make(k, n)) for n, k in enumerate(CELLS)}


@pytest.mark.parametrize("kind", CELLS)
def test_trace_equals_flax_and_numpy_cell(rnns: dict, x: np.ndarray, kind: str) -> None:
    rnn = rnns[kind]
    flax_out = np.asarray(rnn(jnp.asarray(x)))
    oracle = numpy_cell(rnn.cell, x)
    np.testing.assert_allclose(oracle["h"], flax_out, atol=TOL)  # the equations are Flax's
    t = rnnscope.trace(rnn, x)
    np.testing.assert_allclose(t.output(), flax_out, atol=TOL)
    for name, expected in oracle.items():
        np.testing.assert_allclose(t.get(name), expected, atol=TOL, err_msg=name)
    # the bare cell reads the same
    assert rnnscope.rnn_weights(rnn.cell).cell == rnnscope.rnn_weights(rnn).cell


def test_lstm_cell_layout_rows(rnns: dict) -> None:
    """README rows: LSTMCell ii/if_/ig/io -> kernel gates, hi.. -> recurrent kernel, their
    bias the recurrent bias; no input-side bias."""
    cell = rnns["LSTMCell"].cell
    w = rnnscope.rnn_weights(rnns["LSTMCell"])
    assert (w.cell, w.parts) == ("LSTM", ("kernel", "recurrent_kernel", "recurrent_bias"))
    for gate, (i, h) in {
        "input": ("ii", "hi"),
        "forget": ("if_", "hf"),
        "cell": ("ig", "hg"),
        "output": ("io", "ho"),
    }.items():
        np.testing.assert_array_equal(w.array("kernel", gate=gate), raw(getattr(cell, i)))
        np.testing.assert_array_equal(w.array("recurrent_kernel", gate=gate), raw(getattr(cell, h)))
        np.testing.assert_array_equal(
            w.array("recurrent_bias", gate=gate), raw(getattr(cell, h), "bias")
        )


def test_fused_cells_layout_rows(rnns: dict) -> None:
    """OptimizedLSTMCell: dense_i/dense_h columns i, f, g, o; GRUCell: r, z, n with the bias on
    dense_i only; SimpleCell: dense_i with bias, dense_h without."""
    cell = rnns["OptimizedLSTMCell"].cell
    w = rnnscope.rnn_weights(cell)
    assert w.parts == ("kernel", "recurrent_kernel", "recurrent_bias")
    for k, gate in enumerate(("input", "forget", "cell", "output")):
        cols = slice(k * H, (k + 1) * H)
        np.testing.assert_array_equal(w.array("kernel", gate=gate), raw(cell.dense_i)[:, cols])
        np.testing.assert_array_equal(
            w.array("recurrent_bias", gate=gate), raw(cell.dense_h, "bias")[cols]
        )
    cell = rnns["GRUCell"].cell
    w = rnnscope.rnn_weights(cell)
    assert (w.parts, w.reset_after) == (("kernel", "recurrent_kernel", "bias"), True)
    for k, gate in enumerate(("reset", "update", "new")):  # flax's block order
        cols = slice(k * H, (k + 1) * H)
        np.testing.assert_array_equal(w.array("kernel", gate=gate), raw(cell.dense_i)[:, cols])
        np.testing.assert_array_equal(
            w.array("recurrent_kernel", gate=gate), raw(cell.dense_h)[:, cols]
        )
        np.testing.assert_array_equal(w.array("bias", gate=gate), raw(cell.dense_i, "bias")[cols])
    cell = rnns["SimpleCell"].cell
    w = rnnscope.rnn_weights(cell)
    assert (w.cell, w.parts) == ("SimpleRNN", ("kernel", "recurrent_kernel", "bias"))
    np.testing.assert_array_equal(w.array("recurrent_kernel"), raw(cell.dense_h))


class Model(nnx.Module):
    def __init__(self, rngs: nnx.Rngs) -> None:
        fwd, bwd = nnx.RNN(make("LSTMCell", 10)), nnx.RNN(make("LSTMCell", 11))
        self.bi = nnx.Bidirectional(fwd, bwd)
        rng = np.random.default_rng(5)
        self.gru = nnx.RNN(
            fill(nnx.eval_shape(lambda: nnx.GRUCell(2 * H, H, rngs=nnx.Rngs(0))), rng)
        )
        self.drop = nnx.Dropout(0.5, rngs=rngs)
        self.head = fill(nnx.eval_shape(lambda: nnx.Linear(H, 2, rngs=nnx.Rngs(0))), rng)

    def __call__(self, x: jax.Array, lengths: jax.Array | None = None) -> jax.Array:
        h = self.bi(x, seq_lengths=lengths)
        return self.head(self.drop(self.gru(h, seq_lengths=lengths)))


@pytest.fixture(scope="module")
def model() -> Model:
    return Model(nnx.Rngs(3))


def test_model_layers_and_bidirectional_trace(model: Model, x: np.ndarray) -> None:
    infos = rnnscope.layers(model)
    assert [(i.name, i.kind, i.recurrent) for i in infos] == [
        ("bi", "Bidirectional", True),
        ("gru", "RNN", True),
        ("head", "Linear", False),
    ]
    t = rnnscope.trace(model, x, "bi")
    np.testing.assert_allclose(t.output(), np.asarray(model.bi(jnp.asarray(x))), atol=TOL)
    fwd = numpy_cell(model.bi.forward_rnn.cell, x)
    bwd = numpy_cell(model.bi.backward_rnn.cell, x, reverse=True)
    np.testing.assert_allclose(t.get("forget", "backward"), bwd["forget"], atol=TOL)
    np.testing.assert_allclose(t.get("c", "forward"), fwd["c"], atol=TOL)


def test_lengths_equal_flax_seq_lengths_on_real_steps(model: Model, x: np.ndarray) -> None:
    lengths = np.array([5, 2, 3])
    carry, out = model.bi(jnp.asarray(x), seq_lengths=jnp.asarray(lengths), return_carry=True)
    out = np.asarray(out)
    t = rnnscope.trace(model, x, "bi", lengths=lengths)
    real = np.arange(T)[None, :] < lengths[:, None]
    got = np.ma.getdata(t.output())
    np.testing.assert_allclose(got[real], out[real], atol=TOL)
    # the state at the end of each direction's real steps is flax's returned carry (c, h)
    (c_f, h_f), (c_b, h_b) = carry
    np.testing.assert_allclose(t.get("h", "forward")[np.arange(B), lengths - 1], h_f, atol=TOL)
    np.testing.assert_allclose(t.get("c", "forward")[np.arange(B), lengths - 1], c_f, atol=TOL)
    np.testing.assert_allclose(t.get("c", "backward")[:, 0], c_b, atol=TOL)
    last = np.concatenate([np.asarray(h_f), np.asarray(h_b)], axis=-1)
    np.testing.assert_allclose(t.output(sequences=False), last, atol=TOL)
    np.testing.assert_allclose(t.get("h", "backward")[:, 0], h_b, atol=TOL)
    # flax's own masks, found in a forward pass of the model
    masks = rnnscope.masks(model, (jnp.asarray(x), jnp.asarray(lengths)))
    np.testing.assert_array_equal(masks["bi"], real)
    assert masks["head"] is None
    acts = rnnscope.activations(model, (jnp.asarray(x), jnp.asarray(lengths)), "gru")
    assert np.ma.isMaskedArray(acts["gru"])
    np.testing.assert_array_equal(np.ma.getmaskarray(acts["gru"])[:, :, 0], ~real)


@pytest.mark.parametrize("keep_order", [False, True])
def test_reverse_rnn(x: np.ndarray, keep_order: bool) -> None:
    rnn = nnx.RNN(make("GRUCell", 20), reverse=True, keep_order=keep_order)
    out = np.asarray(rnn(jnp.asarray(x)))
    t = rnnscope.trace(rnn, x)
    assert rnnscope.rnn_weights(rnn).go_backwards
    np.testing.assert_allclose(t.get("h"), numpy_cell(rnn.cell, x, reverse=True)["h"], atol=TOL)
    expected = t.get("h") if keep_order else t.output()  # output(): processing order
    np.testing.assert_allclose(expected, out, atol=TOL)


def test_custom_activations_are_flax_functions(x: np.ndarray) -> None:
    cell = make("LSTMCell", 4, gate_fn=jax.nn.hard_sigmoid, activation_fn=lambda a: jnp.sin(a))
    rnn = nnx.RNN(cell)
    w = rnnscope.rnn_weights(rnn)
    assert (w.recurrent_activation, w.activation) == ("hard_sigmoid", "flax:<lambda>")
    np.testing.assert_allclose(
        rnnscope.trace(rnn, x).output(), np.asarray(rnn(jnp.asarray(x))), atol=TOL
    )


def test_refusals_name_layer_and_reason() -> None:
    res = nnx.RNN(make("SimpleCell", 0, residual=True))
    with pytest.raises(UnsupportedError, match=r"layer 'rnn' \(RNN\).*residual=True"):
        rnnscope.rnn_weights(res)
    mixed = nnx.Bidirectional(nnx.RNN(make("LSTMCell", 1)), nnx.RNN(make("GRUCell", 2)))
    with pytest.raises(UnsupportedError, match="different cells \\(LSTMCell, GRUCell\\)"):
        rnnscope.trace(mixed, np.zeros((1, 2, F), np.float32))
    with pytest.raises(InputError, match=r"expected shape \(batch, time, 3\)"):
        rnnscope.trace(nnx.RNN(make("GRUCell", 0)), np.zeros((1, 2, 5), np.float32))


def test_stats_rows_per_gate(rnns: dict) -> None:
    df = rnnscope.stats(rnns["GRUCell"])
    row = df[(df["part"] == "kernel") & (df["gate"] == "update")].iloc[0]
    z = raw(rnns["GRUCell"].cell.dense_i)[:, H : 2 * H]  # flax's second block is z
    assert row["size"] == z.size
    assert row["mean"] == pytest.approx(z.mean(), abs=1e-6)
    assert row["max"] == pytest.approx(z.max(), abs=1e-6)


def test_orbax_checkpoint_is_refused_by_name(tmp_path: object, rnns: dict) -> None:
    """An orbax checkpoint is a tensorstore/OCDBT folder: named, not read (README)."""
    ocp = pytest.importorskip("orbax.checkpoint")
    from rnnscope import FormatError

    _, state = nnx.split(rnns["GRUCell"])
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(tmp_path / "step" / "state", state)
    for where in (tmp_path / "step" / "state", tmp_path / "step"):
        with pytest.raises(FormatError, match=r"is an orbax checkpoint .*does not read orbax") as e:
            rnnscope.layers(str(where))
        assert e.value.path == str(where)
    with pytest.raises(FormatError, match="is a directory, not a checkpoint file"):
        rnnscope.layers(str(tmp_path))
