"""ConvLSTM per-gate figures: ``rnn_heatmap`` and ``rnn_histogram`` of ConvLSTM1D/2D/3D weights
and weight gradients, live and from a file, and in the report.

Oracle: the layer's raw variables (``cell.kernel`` ``(*kernel_size, in, 4 * filters)``, gates
``i, f, c, o`` on the last axis, as Keras documents them) reshaped in the test to
``(prod(kernel_size) * in, 4 * filters)``; gradients from the backend's own autodiff.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from tests.oracles import autodiff

keras = pytest.importorskip("keras")
pytest.importorskip("matplotlib")
from rnnscope import plot  # noqa: E402

L = keras.layers
GATES = ("input", "forget", "cell", "output")
SHAPES = {  # (time, *space, channels), kernel_size
    "ConvLSTM1D": ((3, 5, 2), 3),
    "ConvLSTM2D": ((3, 4, 5, 2), (2, 3)),
    "ConvLSTM3D": ((2, 3, 3, 4, 1), (2, 1, 2)),
}
FILTERS = 3


def _model(kind: str):
    shape, ks = SHAPES[kind]
    inp = keras.Input(shape)
    layer = getattr(L, kind)(FILTERS, ks, name="conv")
    model = keras.Model(inp, layer(inp))
    rng = np.random.default_rng(5)
    for v in model.weights:
        v.assign(rng.normal(scale=0.5, size=tuple(v.shape)).astype("float32"))
    return model, layer


def _raw(v) -> np.ndarray:
    a = keras.ops.convert_to_numpy(v)
    return a.reshape(-1, a.shape[-1]) if a.ndim > 1 else a


def _images(fig):
    return [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_heatmap_is_the_flattened_kernels_gates_side_by_side(tmp_path, kind):
    model, layer = _model(kind)
    cell = layer.cell
    kernel, recurrent, bias = _raw(cell.kernel), _raw(cell.recurrent_kernel), _raw(cell.bias)
    model.save(tmp_path / "m.keras")
    for source in (model, tmp_path / "m.keras"):
        fig = plot.rnn_heatmap(source, "conv")
        kern_ax, rec_ax, bias_ax = _images(fig)
        np.testing.assert_array_equal(kern_ax.images[0].get_array(), kernel)
        np.testing.assert_array_equal(rec_ax.images[0].get_array(), recurrent)
        np.testing.assert_array_equal(bias_ax.images[0].get_array()[0], bias)
        for ax in (kern_ax, rec_ax):
            assert list(ax.get_xticks()) == [(k + 0.5) * FILTERS - 0.5 for k in range(4)]
            lines = sorted(ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_gid())
            assert lines == [k * FILTERS - 0.5 for k in (1, 2, 3)]
        ks = SHAPES[kind][1]
        k = "x".join(map(str, ks if isinstance(ks, tuple) else (ks,)))
        channels = SHAPES[kind][0][-1]
        assert kern_ax.get_ylabel() == f"kernel\n({k} x {channels} ch)"
        assert rec_ax.get_ylabel() == f"recurrent kernel\n({k} x {FILTERS} ch)"
        assert f"({kind}, {FILTERS} filters)" in fig._suptitle.get_text()


def test_histograms_per_gate_and_part():
    model, layer = _model("ConvLSTM2D")
    raw = {
        "kernel": _raw(layer.cell.kernel),
        "recurrent_kernel": _raw(layer.cell.recurrent_kernel),
        "bias": _raw(layer.cell.bias),
    }
    fig = plot.rnn_histogram(model, "conv", bins=7, equate_axes=0)
    axes = np.array(fig.axes).reshape(3, 4)
    for i, part in enumerate(("kernel", "recurrent_kernel", "bias")):
        for j in range(4):
            block = raw[part][..., j * FILTERS : (j + 1) * FILTERS]
            (stairs,) = axes[i, j].patches
            drawn = stairs.get_data()
            lo, hi = float(block.min()), float(block.max())
            np.testing.assert_allclose(drawn.edges, np.linspace(lo, hi, 8), atol=1e-6)
            counts, _ = np.histogram(block, bins=drawn.edges)  # at the drawn edges (float64)
            np.testing.assert_array_equal(drawn.values, counts, err_msg=f"{part} {j}")
    assert [axes[0, j].get_title() for j in range(4)] == list(GATES)


def test_gradient_heatmap_and_nonfinite_marks():
    model, layer = _model("ConvLSTM1D")
    x = np.random.default_rng(6).standard_normal((2, *SHAPES["ConvLSTM1D"][0])).astype("f4")
    y = np.random.default_rng(7).standard_normal(tuple(model(x).shape)).astype("f4")
    yt = keras.ops.convert_to_tensor(y)
    grads = autodiff.keras_grads(keras, model, lambda p: keras.ops.mean((p - yt) ** 2), x)
    want = grads[id(layer.cell.kernel)]
    fig = plot.rnn_heatmap(model, "conv", mode="grads", x=x, y=y, loss="mse")
    np.testing.assert_allclose(
        _images(fig)[0].images[0].get_array(),
        want.reshape(-1, want.shape[-1]),
        rtol=1e-4,
        atol=1e-6,
    )
    assert "gradients" in fig._suptitle.get_text()
    w = rnnscope.weights(model, "conv")
    blocks = {n: w.array(n) for n in w.names}
    blocks["recurrent_kernel/forget"][0, 1, 2] = np.nan
    bad = rnnscope.LayerWeights("conv", "ConvLSTM1D", blocks)
    fig = plot.rnn_heatmap(bad)
    assert fig.nonfinite == {("forward", "recurrent_kernel", "forget"): {"nan": 1, "inf": 0}}
    (marks,) = [c for c in _images(fig)[1].collections if c.get_gid() == "nonfinite-marker"]
    # row = position 0 * filters + channel 1; column = forget block + filter 2
    np.testing.assert_array_equal(marks.get_offsets(), [[FILTERS + 2, 1]])


def test_report_draws_convlstm_gates():
    from rnnscope._report import model_section

    model, _ = _model("ConvLSTM2D")
    caps = [f["caption"] for f in model_section(model, "m", 1e-6)["figures"]]
    assert caps == ["conv: heatmap", "conv: histograms"]


def test_not_a_convlstm_still_refused():
    model = keras.Sequential([keras.Input((4,)), L.Dense(2, name="dense")])
    with pytest.raises(rnnscope.LayerError, match="dense"):
        plot.rnn_heatmap(model, "dense")


def test_trace_plot_of_a_convlstm_flattens_positions_and_filters():
    model, _ = _model("ConvLSTM1D")
    x = np.random.default_rng(8).standard_normal((2, *SHAPES["ConvLSTM1D"][0])).astype("f4")
    t = rnnscope.trace(model, x, "conv")
    fig = plot.trace_plot(t, ["forget", "c"], sample=1)
    forget = t.get("forget")[1]  # (time, positions, filters)
    drawn = [ax.images[0].get_array() for ax in _images(fig)]
    # rows: position * filters + filter; columns: time
    np.testing.assert_allclose(drawn[0], forget.reshape(forget.shape[0], -1).T)
    np.testing.assert_allclose(drawn[1], t.get("c")[1].reshape(forget.shape[0], -1).T)
