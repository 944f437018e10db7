"""rnnscope.compat.see_rnn against See RNN 1.15.1 itself, on the same tf-keras model.

See RNN's weight-side functions run on tf-keras 2.21 once two names it imports exist again: the
module ``tensorflow.python.keras.mixed_precision.experimental`` (TensorFlow removed it) and
``matplotlib.cm.get_cmap`` (matplotlib removed it). The ``see_rnn`` fixture provides both for the
duration of this module and removes them afterwards. Every argument of ``rnn_histogram``,
``rnn_heatmap``, ``weights_norm``, ``get_rnn_weights``, ``get_weights``, ``rnn_summary`` and
``features_0D/1D/2D/hist`` is exercised; figures are compared artist by artist, returned values
exactly. Where the compat layer differs on purpose (README: "differences by design"), the test
checks our side against its own oracle instead.
"""

from __future__ import annotations

import contextlib
import io
import sys
import types

import numpy as np
import pytest

from tests.conftest import requires_tf_keras

from ._artists import assert_density_histogram, assert_same, bars, figure_facts, line_facts

pytestmark = requires_tf_keras
tf_keras = pytest.importorskip("tf_keras")
plt = pytest.importorskip("matplotlib.pyplot")
from rnnscope.compat import see_rnn as ours  # noqa: E402

_MP = "tensorflow.python.keras.mixed_precision.experimental"


@pytest.fixture(scope="module")
def see_rnn():
    """See RNN 1.15.1, importable and callable on today's TensorFlow and matplotlib."""
    import matplotlib
    import matplotlib.cm as cm
    from tf_keras.src.mixed_precision import loss_scale_optimizer

    alias = types.ModuleType(_MP)
    alias.loss_scale_optimizer = loss_scale_optimizer  # what See RNN imports from it
    had_cmap = hasattr(cm, "get_cmap")
    saved = {k: v for k, v in sys.modules.items() if k == _MP or k.startswith("see_rnn")}
    sys.modules[_MP] = alias
    if not had_cmap:
        cm.get_cmap = matplotlib.colormaps.get_cmap
    try:
        import see_rnn as module

        assert hasattr(module, "rnn_histogram"), "see_rnn imported without its Keras functions"
        yield module
    finally:
        if not had_cmap:
            del cm.get_cmap
        for k in [k for k in sys.modules if k == _MP or k.startswith("see_rnn")]:
            del sys.modules[k]
        sys.modules.update(saved)


@pytest.fixture(scope="module")
def model():
    tf_keras.utils.set_random_seed(3)
    L = tf_keras.layers
    x = L.Input((4, 3), name="inp")
    h = L.LSTM(4, return_sequences=True, name="lstm")(x)
    h = L.Bidirectional(L.GRU(3, return_sequences=True), name="bidirectional")(h)
    h = L.SimpleRNN(2, use_bias=False, return_sequences=True, name="simple_rnn")(h)
    h = L.Bidirectional(L.LSTM(2, use_bias=False), name="bidir_nobias")(h)
    out = L.Dense(2, name="dense")(h)
    return tf_keras.Model(x, out)


def _both(fn_theirs, fn_ours):
    """Run See RNN then us on fresh pyplot state; return both results."""
    plt.close("all")
    theirs = fn_theirs()
    plt.close("all")
    mine = fn_ours()
    return theirs, mine


def _quiet(fn, *args, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


# -- values ----------------------------------------------------------------------------------------
IDS = [
    "lstm",
    "bidir",
    ["dense", 1],
    "bidirectional/bias",
    "lstm/recurrent",
    [(1, 1), "dense/kernel"],
    (5, 0),
    2,
    ["simple", "lstm"],
]


@pytest.mark.parametrize("_id", [*IDS, "*"], ids=repr)
@pytest.mark.parametrize("as_dict", [False, True])
@pytest.mark.parametrize("omit_names", [None, "bias", ["recurrent", "dense/kernel"]])
def test_get_weights(see_rnn, model, _id, as_dict, omit_names):
    theirs = see_rnn.get_weights(model, _id, omit_names=omit_names, as_dict=as_dict)
    mine = ours.get_weights(model, _id, omit_names=omit_names, as_dict=as_dict)
    assert type(mine) is type(theirs)
    assert_same(theirs, mine)


@pytest.mark.parametrize("_id", ["lstm", ["dense", 1], "*", (5, 0)], ids=repr)
def test_get_weights_as_tensors_gives_the_models_own_variables(see_rnn, model, _id):
    theirs = see_rnn.get_weights(model, _id, as_tensors=True, as_dict=True)
    mine = ours.get_weights(model, _id, as_tensors=True, as_dict=True)
    assert list(theirs) == list(mine)
    assert all(theirs[k] is mine[k] for k in theirs)


@pytest.mark.parametrize("_id", ["lstm", "bidirectional", "simple", 4, "bidir_nobias"], ids=repr)
@pytest.mark.parametrize("as_tensors", [False, True])
def test_get_rnn_weights(see_rnn, model, _id, as_tensors):
    theirs = see_rnn.get_rnn_weights(model, _id, as_tensors=as_tensors)
    mine = ours.get_rnn_weights(model, _id, as_tensors=as_tensors)
    if as_tensors:
        assert len(mine) == len(theirs) and all(a is b for a, b in zip(theirs, mine, strict=True))
    else:
        assert_same(theirs, mine)
    layer = model.get_layer(ours.get_full_name(model, _id))
    assert_same(
        see_rnn.get_rnn_weights(model, None, layer=layer),
        ours.get_rnn_weights(model, None, layer=layer),
    )


@pytest.mark.parametrize(
    "_id",
    ["lstm", ["lstm", "dense"], "dense", (5, 0), [(5, 1)], ["bidirectional", "simple"]],
    ids=repr,
)
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"stat_fns": (np.min, np.median, np.std)},
        {"norm_fn": np.abs},
        {"norm_fn": (np.sqrt, np.square), "axis": 0},
        {"omit_names": "bias"},
        {"omit_names": ["recurrent"], "stat_fns": (np.max,)},
    ],
    ids=lambda k: ",".join(k) or "defaults",
)
def test_weights_norm_accumulates_like_see_rnn(see_rnn, model, _id, kw):
    theirs = mine = None
    for _ in range(3):  # three "epochs"
        theirs = see_rnn.weights_norm(model, _id, theirs, **kw)
        mine = ours.weights_norm(model, _id, mine, **kw)
    assert_same(theirs, mine)
    assert all(len(stat) == 3 for w in mine.values() for ws in w for stat in ws)


def test_weights_norm_verbose_prints_the_same(see_rnn, model, capsys):
    see_rnn.weights_norm(model, ["lstm", "dense"], verbose=1)
    theirs = capsys.readouterr().out
    ours.weights_norm(model, ["lstm", "dense"], verbose=1)
    assert capsys.readouterr().out == theirs and theirs.count("\n") == 2


@pytest.mark.parametrize("name", ["lstm", "bidirectional", "simple_rnn", "bidir_nobias"])
def test_rnn_summary_prints_the_same(see_rnn, model, name, capsys):
    see_rnn.rnn_summary(model.get_layer(name))
    theirs = capsys.readouterr().out
    assert ours.rnn_summary(model.get_layer(name)) is None
    assert capsys.readouterr().out == theirs and "shape=" in theirs


def test_get_layer_and_full_name(see_rnn, model):
    for _id in ["lstm", 2, ["dense", 1], ["simple", "bidir"]]:
        assert ours.get_full_name(model, _id) == see_rnn.get_full_name(model, _id)
        assert ours.get_layer(model, _id) is see_rnn.get_layer(model, _id) or (
            ours.get_layer(model, _id) == see_rnn.get_layer(model, _id)
        )


# -- RNN figures -----------------------------------------------------------------------------------
def _compare_rnn(theirs, mine, lines=True):
    (f1, a1), (f2, a2) = theirs, mine
    assert len(f1) == len(f2) and [a.shape for a in a1] == [a.shape for a in a2]
    for x, y in zip(f1, f2, strict=True):
        assert_same(figure_facts(x, lines), figure_facts(y, lines))


HIST_KW = [
    {},
    {"bins": 7},
    {"w": 1.5, "h": 0.5},
    {"show_borders": True},
    {"show_xy_ticks": [0, 1]},
    {"show_xy_ticks": [1, 0], "bins": 20},
    {"configs": {"title": {"fontsize": 9}, "annot": {"color": "g"}, "subplot": {"dpi": 50}}},
    {"configs": {"tight": {"hspace": 0.3}, "annot-nan": {"fontsize": 5}}},
]


# See RNN's default of 150 bins is compared on two cases; elsewhere 9 bins draw every panel,
# limit and option the same way with a sixteenth of the bars (150 bars a panel made this test
# one of the suite's slowest).
DEFAULT_BINS = {("lstm", 0), ("simple_rnn", 0)}
HIST_CASES = [
    (_id, eq, {} if (_id, eq) in DEFAULT_BINS else {"bins": 9})
    for _id in ("lstm", "bidirectional", "simple_rnn", 4)
    for eq in (0, 1, 2)
] + [
    (_id, eq, {"bins": 9, **kw})
    for kw in HIST_KW[1:]
    for _id, eq in [("lstm", 0), ("simple_rnn", 1)]
]


@pytest.mark.parametrize(
    ("_id", "equate_axes", "kw"),
    HIST_CASES,
    ids=lambda v: ",".join(v) if isinstance(v, dict) else repr(v),
)
def test_rnn_histogram(see_rnn, model, _id, equate_axes, kw):
    theirs, mine = _both(
        lambda: see_rnn.rnn_histogram(model, _id, equate_axes=equate_axes, **kw),
        lambda: ours.rnn_histogram(model, _id, equate_axes=equate_axes, **kw),
    )
    has_bias = _id in ("lstm", "bidirectional")
    if has_bias and equate_axes:
        # By design: See RNN's merged panels are new axes that share nothing, and its
        # equate_axes=2 counts the removed placeholder axes' (0, 1) limits.
        _limits_equated(mine, equate_axes)
        for f in (*theirs[0], *mine[0]):
            for ax in f.axes:
                ax.set_xlim(0, 1)
                ax.set_ylim(0, 1)
    _compare_rnn(theirs, mine)


def test_rnn_histogram_shades_large_blocks(see_rnn):
    """Gate blocks of 1000 values or more get See RNN's banded bar colours."""
    L = tf_keras.layers
    tf_keras.utils.set_random_seed(4)
    x = L.Input((2, 32))
    big = tf_keras.Model(x, L.SimpleRNN(32, name="rnn")(x))  # kernel of 1024 values
    theirs, mine = _both(
        lambda: see_rnn.rnn_histogram(big, "rnn", equate_axes=0),
        lambda: ours.rnn_histogram(big, "rnn", equate_axes=0),
    )
    _compare_rnn(theirs, mine)
    colours = {b[3] for b in bars(mine[0][0].axes[0])}
    assert len(colours) > 10


def test_rnn_histogram_plot_configs(model):
    """``configs['plot']`` (See RNN 1.15.1 ignores it): bar styles go to the one bar artist,
    any other ``hist`` keyword to ``ax.hist`` itself; the bars stay the numpy histogram."""
    import matplotlib.colors as mcolors

    kernel = model.get_layer("lstm").get_weights()[0]  # Keras layout: gates i, f, c, o
    style = {"color": "g", "alpha": 0.5, "edgecolor": "k", "linewidth": 0.5}
    _figs, axes = ours.rnn_histogram(model, "lstm", bins=9, configs={"plot": style})
    ax = axes[0][1, 0]  # the forget gate's kernel
    assert_density_histogram(ax, kernel[:, 4:8])
    (drawn,) = ax.collections
    assert tuple(drawn.get_facecolor()[0]) == mcolors.to_rgba("g", 0.5)
    assert tuple(drawn.get_edgecolor()[0]) == mcolors.to_rgba("k", 0.5)
    assert drawn.get_linewidth()[0] == 0.5 and not ax.patches
    _figs, axes = ours.rnn_histogram(model, "lstm", bins=9, configs={"plot": {"histtype": "step"}})
    ax = axes[0][1, 0]
    (outline,) = ax.patches  # ax.hist's one step polygon
    want, edges = np.histogram(kernel[:, 4:8], bins=9, density=True)
    xy = outline.get_xy()
    assert not ax.collections and type(outline).__name__ == "Polygon"
    np.testing.assert_allclose(xy[:, 1].max(), want.max())
    np.testing.assert_allclose([xy[:, 0].min(), xy[:, 0].max()], edges[[0, -1]], rtol=1e-6)


def _limits_equated(result, equate_axes):
    _figs, axes = result
    gates = axes[0].shape[0] - 1  # the last row is the bias panel
    panels = [[ax for ax in a[:gates].flat] for a in axes]
    every = [ax for group in panels for ax in group]
    for group in panels if equate_axes == 1 else [every]:
        assert len({ax.get_xlim() for ax in group}) == 1
        assert len({ax.get_ylim() for ax in group}) == 1
    if equate_axes == 2:
        lo, hi = panels[0][0].get_xlim()
        assert lo == -hi and hi >= max(abs(b[0]) for ax in every for b in bars(ax))


def test_rnn_histogram_prefetched_data_and_savepath(see_rnn, model, tmp_path):
    data = see_rnn.get_rnn_weights(model, "bidirectional")
    data[0][0, :3] = np.nan  # NaN marks in the forward kernel's first gate
    theirs, mine = _both(
        # See RNN would save two figures into a folder named "a_0" (it joins the suffix as a
        # path part); the compat layer writes b_0.png and b_1.png.
        lambda: see_rnn.rnn_histogram(
            model, "bidirectional", data=[d.copy() for d in data], equate_axes=0, bins=9
        ),
        lambda: ours.rnn_histogram(
            model,
            "bidirectional",
            data=[d.copy() for d in data],
            equate_axes=0,
            bins=9,
            savepath=str(tmp_path / "b.png"),
        ),
    )
    _compare_rnn(theirs, mine)
    assert any("NaN" in t.get_text() for t in mine[0][0].axes[0].texts)
    assert (tmp_path / "b_0.png").stat().st_size > 0 and (tmp_path / "b_1.png").exists()
    _both(
        lambda: see_rnn.rnn_histogram(model, "lstm", bins=9, savepath=str(tmp_path / "a.png")),
        lambda: ours.rnn_histogram(model, "lstm", bins=9, savepath=str(tmp_path / "c.png")),
    )
    assert (tmp_path / "a.png").exists() and (tmp_path / "c.png").stat().st_size > 0


HEAT_KW = [
    {},
    {"cmap": None},
    {"cmap": "viridis", "norm": None},
    {"norm": (-0.5, 0.5)},
    {"norm": None, "show_colorbar": False},
    {"show_borders": False, "gate_sep_width": 0},
    {"gate_sep_width": 3, "w": 0.5, "h": 2},
    {"show_bias": False},
    {"normalize": True, "cmap": None},
    {
        "configs": {
            "subtitle": {"fontsize": 7},
            "xlabel": {"fontsize": 5},
            "ylabel": {"color": "r"},
            "colorbar": {"fraction": 0.1},
            "plot": {"interpolation": "bilinear"},
            "plot-bias": {"aspect": 2},
            "title": {"fontsize": 3},
            "tight": {"wspace": 0.4},
        }
    },
]


@pytest.mark.parametrize(
    "kw", HEAT_KW, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items())[:40] or "defaults"
)
@pytest.mark.parametrize("_id", ["lstm", "bidirectional", "simple_rnn", "bidir_nobias"])
def test_rnn_heatmap(see_rnn, model, _id, kw):
    theirs, mine = _both(
        lambda: _quiet(see_rnn.rnn_heatmap, model, _id, **kw),
        lambda: ours.rnn_heatmap(model, _id, **kw),
    )
    _compare_rnn(theirs, mine)


def test_rnn_heatmap_absolute_value_draws_magnitudes(model):
    # See RNN 1.15.1 calls np.abs on the list of differently shaped matrices, which numpy 2
    # refuses; the oracle here is the layer's own weights.
    figs, _axes = ours.rnn_heatmap(model, "lstm", absolute_value=True, cmap=None)
    kernel, rec, bias = model.get_layer("lstm").get_weights()
    drawn = [im.get_array() for ax in figs[0].axes for im in ax.images]
    assert_same([np.asarray(d) for d in drawn], [np.abs(kernel), np.abs(rec), np.abs(bias)[None]])
    assert figs[0].axes[0].images[0].get_clim() == (np.abs(kernel).min(), np.abs(kernel).max())
    assert figs[0].axes[0].images[0].get_cmap().name == "bone"


# -- general figures -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def feats():
    rng = np.random.default_rng(5)
    return rng.normal(size=(4, 10, 6)).astype("f4"), rng.normal(size=(16, 6)).astype("f4")


F0_KW = [
    {},
    {"marker": "x", "cmap": "viridis"},
    {"color": "red"},
    {"configs": {"plot": {"s": 3}, "title": {"fontsize": 5}}},
    {"w": 0.5, "h": 2, "show_borders": True},
    {"title": "grads"},
    {"title": "generic"},
    {"title": "my title"},
    {"title": False},
    {"show_y_zero": False, "ylims": (-3, 5)},
]


@pytest.mark.parametrize("kw", F0_KW, ids=lambda k: ",".join(k) or "defaults")
def test_features_0D(see_rnn, feats, kw):
    data = feats[1]
    (f1, _a1), (f2, a2) = _both(
        lambda: see_rnn.features_0D(data, **kw), lambda: ours.features_0D(data, **kw)
    )
    assert_same(figure_facts(f1), figure_facts(f2))
    x = a2.collections[0].get_offsets()[:, 0]
    assert_same(np.asarray(x).reshape(16, 6), np.repeat(np.arange(1.0, 17)[:, None], 6, 1))


def test_features_0D_markersize_and_markerwidth(feats):
    _fig, ax = ours.features_0D(feats[1], markersize=40, markerwidth=0.5)
    pts = ax.collections[0]
    assert set(pts.get_sizes()) == {40.0} and set(pts.get_linewidths()) == {0.5}


F1_KW = [
    {},
    {"n_rows": 3},
    {"annotations": ["a", "b"]},
    {"annotations": None, "share_xy": ("col", 1)},
    {"share_xy": False, "max_timesteps": 4},
    {"subplot_samples": True},
    {"show_borders": False, "show_xy_ticks": (0, 1)},
    {"show_xy_ticks": 0, "title": "grads"},
    {"title": "generic", "show_y_zero": True, "tight": True},
    {"borderwidth": 3, "color": ["r", "g", "b", "k", "c", "m"], "w": 0.7, "h": 1.3},
    {
        "configs": {
            "plot": {"linewidth": 4},
            "annot": {"color": "b"},
            "subplot": {"dpi": 40},
            "title": {"fontsize": 6},
            "tight": {"hspace": 0.2},
        },
        "tight": True,
    },
]


@pytest.mark.parametrize("kw", F1_KW, ids=lambda k: ",".join(k) or "defaults")
@pytest.mark.parametrize("ndim", [3, 2])
def test_features_1D(see_rnn, feats, kw, ndim):
    data = feats[0] if ndim == 3 else feats[0][0]
    (f1, _a1), (f2, _a2) = _both(
        lambda: _quiet(see_rnn.features_1D, data, **kw), lambda: ours.features_1D(data, **kw)
    )
    facts1, facts2 = figure_facts(f1, lines=False), figure_facts(f2, lines=False)
    # By design: panel i draws channel i (See RNN's panel i draws channel i-1), so the curves
    # and the limits they set are compared panel (i+1) to panel i.
    n = len(f2.axes)
    for i in range(n):
        assert_same(line_facts(f1.axes[(i + 1) % n]), line_facts(f2.axes[i]))
        for key in ("ylim", "n_yticks"):
            assert facts1["axes"][(i + 1) % n][key] == facts2["axes"][i][key]
    for f in (facts1, facts2):
        for ax in f["axes"]:
            ax.pop("ylim"), ax.pop("n_yticks")
    assert_same(facts1, facts2)


F2_KW = [
    {},
    {"n_rows": 1},
    {"norm": "auto", "cmap": "viridis"},
    {"norm": (-1, 1), "timesteps_xaxis": True},
    {"max_timesteps": 3, "share_xy": (1, 0)},
    {"share_xy": "row", "n_rows": 2},
    {"show_colorbar": True, "title": "grads", "tight": True},
    {"title": "generic", "show_borders": False, "show_xy_ticks": (1, 0)},
    {"borderwidth": 2, "bordercolor": "r", "w": 2, "h": 0.5},
    {
        "title": False,
        "configs": {
            "plot": {"interpolation": "nearest"},
            "colorbar": {"fraction": 0.2},
            "subplot": {"dpi": 30},
            "title": {"fontsize": 4},
        },
        "show_colorbar": True,
    },
]


@pytest.mark.parametrize("kw", F2_KW, ids=lambda k: ",".join(k) or "defaults")
@pytest.mark.parametrize("ndim", [3, 2])
def test_features_2D(see_rnn, feats, kw, ndim):
    data = feats[0] if ndim == 3 else feats[0][0]
    (f1, a1), (f2, a2) = _both(
        lambda: see_rnn.features_2D(data, **kw), lambda: ours.features_2D(data, **kw)
    )
    facts1, facts2 = figure_facts(f1), figure_facts(f2)
    if kw.get("title", "outputs") in ("outputs", "grads", "generic"):
        # By design: See RNN's generated title always says "Context-units" and "vs. Samples"
        # (it names the axes before choosing the words); ours names what is drawn.
        title = facts2.pop("suptitle")[0]
        facts1.pop("suptitle")
        assert ("Context-units" in title) == (kw.get("title") == "generic")
        assert ("vs. Samples" in title) == (ndim == 3)
        assert title.endswith(
            "norm="
            + (
                "auto"
                if kw.get("norm") is None
                else (
                    "(-1, 1)"
                    if kw.get("norm") == (-1, 1)
                    else f"({-np.abs(data).max():.4G}, {np.abs(data).max():.4G})"
                )
            )
        )
    assert_same(facts1, facts2)
    assert np.shape(a1) == np.shape(a2)


def test_features_2D_reflect_half_2d_matches_and_3d_flips_time(see_rnn, feats):
    (f1, _), (f2, _) = _both(
        lambda: see_rnn.features_2D(feats[0][0], reflect_half=True, title="t"),
        lambda: ours.features_2D(feats[0][0], reflect_half=True, title="t"),
    )
    assert_same(figure_facts(f1), figure_facts(f2))
    # 3D: See RNN flips the samples axis; the compat layer flips time, as documented.
    _fig, axes = ours.features_2D(feats[0], reflect_half=True)
    want = feats[0][1].copy()
    want[:, 3:] = want[::-1, 3:]
    assert_same(np.asarray(axes.flat[1].images[0].get_array()), want)


FH_KW = [
    {},
    {"n_rows": None, "bins": 9},
    {"n_rows": 1, "xlims": (-2, 2)},
    {"tight": False, "center_zero": True},
    {"share_xy": (0, 0), "pad_xticks": None},
    {"pad_xticks": True, "annotations": ["x", "y"]},
    {"annotations": None, "title": "T", "borderwidth": 2},
    {"show_borders": False, "show_xy_ticks": (0, 1), "w": 2},
    {
        "configs": {
            "plot": {"peaks_to_clip": 1},
            "annot": {"color": "k"},
            "pad_xticks": {"min": {"fontsize": 4, "xy": (0.1, 0.2)}},
            "title": {"fontsize": 3},
            "subplot": {"dpi": 20},
        },
        "title": "t",
        "pad_xticks": True,
    },
]


@pytest.mark.parametrize("kw", FH_KW, ids=lambda k: ",".join(k) or "defaults")
def test_features_hist(see_rnn, feats, kw):
    data = feats[0][:3].reshape(3, -1)
    (f1, a1), (f2, a2) = _both(
        lambda: see_rnn.features_hist(data, **kw), lambda: ours.features_hist(data, **kw)
    )
    assert_same(figure_facts(f1), figure_facts(f2))
    assert np.shape(a1) == np.shape(a2)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"colnames": ["a", "b"], "side_annot": "row", "ylim": 2, "bins": 7},
        {"xlims": (-1, 1), "tight": False, "share_xy": (0, 0), "title": "T", "borderwidth": 2},
        {"center_zero": True, "pad_xticks": True, "show_borders": False, "show_xy_ticks": 0},
        {
            "configs": {
                "plot": {"peaks_to_clip": 1, "annot_kw": None},
                "colnames": {"fontsize": 3},
            },
            "colnames": ["a", "b"],
        },
    ],
    ids=lambda k: ",".join(k) or "defaults",
)
def test_features_hist_v2_and_hist_clipped(see_rnn, feats, kw):
    data = [[feats[0][r, :, :2].T, [feats[0][r, :, 3]]] for r in range(3)]  # 2 and 1 per cell
    (f1, a1), (f2, a2) = _both(
        lambda: see_rnn.features_hist_v2(data, **kw), lambda: ours.features_hist_v2(data, **kw)
    )
    assert_same(figure_facts(f1), figure_facts(f2))
    assert np.shape(a1) == np.shape(a2) == (3, 2)
    f1, f2 = _both(
        lambda: see_rnn.hist_clipped(feats[1], peaks_to_clip=2, bins=9) or plt.gcf(),
        lambda: ours.hist_clipped(feats[1], peaks_to_clip=2, bins=9) or plt.gcf(),
    )
    assert_same(figure_facts(f1), figure_facts(f2))


# -- weight penalties ------------------------------------------------------------------------------
def test_get_weight_penalties_and_weight_loss(see_rnn):
    tf_keras.utils.set_random_seed(5)
    L, R = tf_keras.layers, tf_keras.regularizers
    x = L.Input((4, 3))
    h = L.LSTM(4, return_sequences=True, kernel_regularizer=R.L2(0.01), name="lstm")(x)
    h = L.Bidirectional(
        L.GRU(3, recurrent_regularizer=R.L1L2(0.001, 0.002), bias_regularizer=R.L1(0.0)),
        name="bidir",
    )(h)
    out = L.Dense(2, bias_regularizer=R.L1L2(l1=0.1), name="dense")(h)  # See RNN reads .l1 and .l2
    model = tf_keras.Model(x, out)
    theirs = see_rnn.get_weight_penalties(model)
    mine = ours.get_weight_penalties(model)
    assert list(mine) == list(theirs) and len(mine) == 4  # L1(0.0) is left out, as See RNN does
    assert all(np.allclose(mine[k], theirs[k]) for k in theirs)
    assert ours.weight_loss(model) == pytest.approx(float(see_rnn.weight_loss(model)), rel=1e-6)
    model(np.ones((1, 4, 3), "float32"))  # fills model.losses: the framework's own total
    assert ours.weight_loss(model) == pytest.approx(float(sum(model.losses)), rel=1e-5)
