"""``keras.layers.RNN`` around ``LSTMCell``/``GRUCell``/``SimpleRNNCell`` and ``StackedRNNCells``
(each stacked cell a layer ``<rnn>/cell_<k>``), live and from ``.keras``/``.weights.h5``/``.h5``.

Oracles: Keras's own output and gradients (the backend's autodiff), and every gate from the numpy
cells of ``tests/oracles/raw.py`` over the cells' raw variables sliced by Keras's documented
columns. Runs on whichever backend KERAS_BACKEND selects.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from tests.oracles import autodiff, raw

pytestmark = pytest.mark.keras_backend
keras = pytest.importorskip("keras")
L = keras.layers

B, T, F = 2, 5, 3
X = np.random.default_rng(0).standard_normal((B, T, F)).astype("f4")
TOL = 1e-5


def _np(t) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(t), np.float64)


def _seeded(model, seed=1):
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.normal(scale=0.6, size=tuple(v.shape)).astype("float32"))
    return model


def _cell_oracle(cell, x: np.ndarray) -> raw.Gates:
    """Every gate of ``cell`` over ``x`` (processing order), from its raw variables."""
    k, rk = _np(cell.kernel), _np(cell.recurrent_kernel)
    b = _np(cell.bias)
    if isinstance(cell, L.LSTMCell):
        return raw.keras_lstm(x, k, rk, b)
    if isinstance(cell, L.GRUCell):
        return raw.keras_gru(x, k, rk, b, cell.reset_after)
    return raw.keras_simple(x, k, rk, b)


CELLS = {
    "lstm": lambda: L.LSTMCell(4),
    "gru": lambda: L.GRUCell(4),
    "gru_reset_before": lambda: L.GRUCell(4, reset_after=False),
    "simple": lambda: L.SimpleRNNCell(4),
}


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("name", sorted(CELLS))
def test_rnn_of_one_cell_traces_every_gate(name, go_backwards):
    inp = keras.Input((T, F))
    rnn = L.RNN(CELLS[name](), return_sequences=True, go_backwards=go_backwards, name="rnn")
    model = _seeded(keras.Model(inp, rnn(inp)))
    (info,) = rnnscope.layers(model)
    assert (info.name, info.kind, info.recurrent) == ("rnn", "RNN", True)
    t = rnnscope.trace(model, X, layer="rnn")
    np.testing.assert_allclose(t.output(), _np(model(X)), atol=TOL, rtol=0)
    xs = X[:, ::-1] if go_backwards else X
    want = _cell_oracle(rnn.cell, xs)
    for gate, arr in want.items():
        got = t.get(gate)[:, ::-1] if go_backwards else t.get(gate)  # processing order
        np.testing.assert_allclose(got, arr, atol=2e-5, rtol=0, err_msg=gate)


def _stack_model(go_backwards: bool):
    inp = keras.Input((T, F))
    cells = [L.LSTMCell(4), L.GRUCell(3), L.SimpleRNNCell(2)]
    rnn = L.RNN(
        L.StackedRNNCells(cells), return_sequences=True, go_backwards=go_backwards, name="stack"
    )
    return _seeded(keras.Model(inp, L.Dense(1, name="d")(rnn(inp)))), rnn


def _chain(source, x: np.ndarray) -> tuple[np.ndarray, list]:
    """Each stacked cell traced on the output of the one below; the last output and traces."""
    traces, h = [], x
    for k in range(3):
        t = rnnscope.trace(source, h, layer=f"stack/cell_{k}")
        traces.append(t)
        h = t.output()
    return h, traces


@pytest.mark.parametrize("go_backwards", [False, True])
def test_stacked_cells_are_layers_traced_gate_by_gate(go_backwards):
    model, rnn = _stack_model(go_backwards)
    infos = rnnscope.layers(model)
    assert [(i.name, i.kind) for i in infos] == [
        ("stack/cell_0", "StackedRNNCells"),
        ("stack/cell_1", "StackedRNNCells"),
        ("stack/cell_2", "StackedRNNCells"),
        ("d", "Dense"),
    ]
    cells = rnn.cell.cells
    w = [rnnscope.rnn_weights(model, f"stack/cell_{k}") for k in range(3)]
    assert [(r.cell, r.units, r.input_dim) for r in w] == [
        ("LSTM", 4, 3),
        ("GRU", 3, 4),
        ("SimpleRNN", 2, 3),
    ]
    np.testing.assert_array_equal(w[1].array("kernel", "reset"), _np(cells[1].kernel)[:, 3:6])
    out, traces = _chain(model, X)
    np.testing.assert_allclose(out, _np(keras.Model(model.input, rnn.output)(X)), atol=TOL)
    h = X[:, ::-1] if go_backwards else X  # cell 0 reads the input reversed; the others do not
    for k, cell in enumerate(cells):
        want = _cell_oracle(cell, h)
        for gate, arr in want.items():
            got = traces[k].get(gate)
            got = got[:, ::-1] if (go_backwards and k == 0) else got
            np.testing.assert_allclose(got, arr, atol=2e-5, rtol=0, err_msg=f"cell {k} {gate}")
        h = want["h"]


def test_stacked_cells_weight_gradients_and_no_outputs():
    model, rnn = _stack_model(False)
    y = np.random.default_rng(4).standard_normal((B, T, 1)).astype("f4")
    g = rnnscope.gradients(model, X, y, loss="mse", wrt="weights")
    yt = keras.ops.convert_to_tensor(y)
    want = autodiff.keras_grads(keras, model, lambda p: keras.ops.mean((p - yt) ** 2), X)
    for k, cell in enumerate(rnn.cell.cells):
        rec = g[f"stack/cell_{k}"]
        np.testing.assert_allclose(
            rec.array("recurrent_kernel"), want[id(cell.recurrent_kernel)], atol=1e-5, rtol=1e-4
        )
        np.testing.assert_allclose(rec.array("kernel"), want[id(cell.kernel)], atol=1e-5, rtol=1e-4)
    assert sorted(rnnscope.activations(model, X)) == ["d"]  # by default: layers with outputs
    with pytest.raises(rnnscope.LayerError, match="one cell of a StackedRNNCells") as err:
        rnnscope.activations(model, X, layers="stack/cell_1")
    assert err.value.layer == "stack/cell_1"
    with pytest.raises(rnnscope.LayerError, match="one cell of a StackedRNNCells"):
        rnnscope.gradients(model, X, y, layers="stack/cell_0", loss="mse")


def test_stacked_and_single_cells_read_the_same_from_files(tmp_path):
    inp = keras.Input((T, F))
    one = L.RNN(L.GRUCell(3), return_sequences=True, name="one")(inp)
    stack = L.RNN(
        [L.LSTMCell(4), L.LSTMCell(2)], return_sequences=True, go_backwards=True, name="stack"
    )(one)
    model = _seeded(keras.Model(inp, stack))
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    model.save(tmp_path / "m.h5")
    live = rnnscope.layers(model)
    assert [(i.name, i.kind) for i in live] == [
        ("one", "RNN"),
        ("stack/cell_0", "StackedRNNCells"),
        ("stack/cell_1", "StackedRNNCells"),
    ]
    keras_out = _np(model(X))
    for name in ("m.keras", "m.weights.h5", "m.h5"):
        p = tmp_path / name
        got = rnnscope.layers(p)
        kinds = [i.kind for i in got]
        # a weights-only file has no config: the single-cell RNN's kind is inferred from shapes
        assert kinds[1:] == ["StackedRNNCells"] * 2, (name, kinds)
        assert kinds[0] == ("GRU" if name == "m.weights.h5" else "RNN"), name
        assert [i.name for i in got] == [i.name for i in live], name
        for i in live:
            a, b = rnnscope.rnn_weights(model, i.name), rnnscope.rnn_weights(p, i.name)
            for (_, part, gate, block), (_, _, _, other) in zip(
                a.blocks(), b.blocks(), strict=True
            ):
                np.testing.assert_array_equal(
                    block, other, err_msg=f"{name} {i.name} {part} {gate}"
                )
        h = rnnscope.trace(p, X, layer="one").output()
        if name == "m.weights.h5":  # no config: go_backwards is assumed False, and said so
            notes = " ".join(rnnscope.load(p).notes)
            assert "'stack/cell_0': no config" in notes and "go_backwards assumed" in notes
            continue
        h = rnnscope.trace(p, h, layer="stack/cell_0").output()
        h = rnnscope.trace(p, h, layer="stack/cell_1").output()
        np.testing.assert_allclose(h, keras_out, atol=TOL, rtol=0, err_msg=name)


def test_bidirectional_stacked_cells_listed_with_every_weight(tmp_path):
    inp = keras.Input((T, F))
    rnn = L.RNN([L.LSTMCell(4), L.GRUCell(2)], return_sequences=True)
    model = _seeded(keras.Model(inp, L.Bidirectional(rnn, name="bi")(inp)))
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    model.save(tmp_path / "m.h5")
    want = sorted(float(np.sum(_np(v))) for v in model.weights)
    kind = "Bidirectional (stacked cells: not split into gates)"
    for source in (model, *(tmp_path / n for n in ("m.keras", "m.h5", "m.weights.h5"))):
        (info,) = rnnscope.layers(source)
        no_config = source == tmp_path / "m.weights.h5"
        assert info.kind == ("Bidirectional" if no_config else kind), source
        rec = rnnscope.weights(source, "bi")
        got = sorted(float(np.sum(a)) for _, a in rec.items())
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=str(source))
