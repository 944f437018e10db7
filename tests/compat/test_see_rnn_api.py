"""The compat layer's surface: every See RNN 1.15.1 name and argument, errors and warnings, and
the live tf-keras ``Bidirectional(CuDNNLSTM(...))`` of See RNN's own example."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

from tests.conftest import requires_tf_keras, requires_torch

pytest.importorskip("matplotlib")
from rnnscope.compat import see_rnn

SEE_RNN_PUBLIC = {  # the public functions of see_rnn 1.15.1's __init__ and modules
    "scalefig",
    "features_0D",
    "features_1D",
    "features_2D",
    "features_hist",
    "features_hist_v2",
    "hist_clipped",
    "rnn_histogram",
    "rnn_heatmap",
    "get_outputs",
    "get_gradients",
    "get_layer",
    "get_full_name",
    "get_weights",
    "detect_nans",
    "weights_norm",
    "get_weight_penalties",
    "weight_loss",
    "get_rnn_weights",
    "rnn_summary",
}
ANSWER = {"get_rnn_gradients", "show_features_0D", "show_features_1D", "show_features_2D"}


def test_all_names_are_here():
    assert set(see_rnn.__all__) == SEE_RNN_PUBLIC | ANSWER
    assert see_rnn.__all__ == sorted(see_rnn.__all__, key=str)
    for name in see_rnn.__all__:
        fn = getattr(see_rnn, name)
        assert fn.__doc__ and "Example" in fn.__doc__, name


@requires_tf_keras
def test_every_see_rnn_argument_and_default_is_accepted():
    """Signatures read from See RNN's installed source (no import: it needs TF1-era names)."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec("see_rnn")
    if spec is None or spec.submodule_search_locations is None:
        pytest.fail("see-rnn 1.15.1 is not installed (scripts/test.sh installs it)")
    folder = spec.submodule_search_locations[0]
    checked = 0
    for mod in ("__init__", "visuals_gen", "visuals_rnn", "inspect_gen", "inspect_rnn"):
        tree = ast.parse(open(f"{folder}/{mod}.py").read())
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef) or node.name not in SEE_RNN_PUBLIC:
                continue
            ours = inspect.signature(getattr(see_rnn, node.name)).parameters
            args = node.args.args
            defaults = [None] * (len(args) - len(node.args.defaults)) + node.args.defaults
            for a, d in zip(args, defaults, strict=True):
                assert a.arg in ours, (node.name, a.arg)
                if d is not None:
                    theirs = (
                        ast.literal_eval(d)
                        if not isinstance(d, ast.Attribute)
                        and not (
                            isinstance(d, ast.Tuple)
                            and any(isinstance(e, ast.Attribute) for e in d.elts)
                        )
                        else ast.unparse(d)
                    )
                    mine = ours[a.arg].default
                    if isinstance(theirs, str) and theirs.startswith(("np.", "(np.")):
                        mine = ast.unparse(ast.parse(_np_names(mine)))
                        theirs = ast.unparse(ast.parse(theirs))
                    assert mine == theirs, (node.name, a.arg, mine, theirs)
            checked += 1
    assert checked == len(SEE_RNN_PUBLIC)


def _np_names(v):
    if isinstance(v, tuple):
        return "(" + ", ".join(f"np.{f.__name__}" for f in v) + ")"
    return f"np.{v.__name__}"


def test_detect_nans_and_helpers():
    assert see_rnn.detect_nans(np.ones(4)) is None
    assert see_rnn.detect_nans(np.array([1.0, np.nan, np.inf, 2.0])) == "25.0% NaN, 25.0% Inf"
    assert see_rnn.detect_nans(np.array([1.0, np.inf]), include_inf=False) is None
    big = np.zeros(10000)
    big[:3] = np.nan
    assert see_rnn.detect_nans(big) == "3 NaN"


def test_keyword_errors_name_themselves():
    with pytest.raises(TypeError, match=r"'shw_borders'.*show_borders"):
        see_rnn.features_2D(np.zeros((2, 3)), shw_borders=True)
    with pytest.raises(Exception, match=r"configs key.*'plt'"):
        see_rnn.features_1D(np.zeros((2, 3)), configs={"plt": {}})


@requires_tf_keras
def test_layer_ids_warnings_and_errors():
    import tf_keras

    L = tf_keras.layers
    x = L.Input((3, 2))
    h = L.LSTM(2, return_sequences=True, name="lstm_a")(x)
    h = L.Activation("tanh", name="act")(h)
    out = L.LSTM(2, name="lstm_b")(h)
    m = tf_keras.Model(x, out)
    with pytest.warns(UserWarning, match="'lstm' matches 2 layers.*earliest, 'lstm_a'"):
        assert see_rnn.get_full_name(m, "lstm") == "lstm_a"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert see_rnn.get_full_name(m, ["lstm_b", 1]) == ["lstm_a", "lstm_b"]
    with pytest.raises(Exception, match="no layer name contains 'gru'"):
        see_rnn.get_layer(m, "gru")
    with pytest.raises(Exception, match="out of range"):
        see_rnn.get_weights(m, 9)
    with pytest.raises(Exception, match="mode must be 'weights' or 'grads'"):
        see_rnn.rnn_histogram(m, "lstm_b", mode="gradients")
    with pytest.raises(Exception, match="not a recurrent layer"):
        see_rnn.rnn_heatmap(m, "act")
    with pytest.raises(Exception, match="needs input_data and labels"):
        see_rnn.rnn_heatmap(m, "lstm_b", mode="grads")
    # a layer without weights answers get_outputs like the framework's own sub-model
    xs = np.random.default_rng(0).normal(size=(2, 3, 2)).astype("f4")
    want = tf_keras.Model(x, h)(xs).numpy()
    np.testing.assert_allclose(see_rnn.get_outputs(m, "act", xs), want, atol=1e-6)
    np.testing.assert_allclose(see_rnn.get_outputs(m, "*", xs)[1], want, atol=1e-6)
    per_gate = see_rnn.get_rnn_weights(m, "lstm_b", concat_gates=False)
    kernel = m.get_layer("lstm_b").get_weights()[0]
    assert len(per_gate) == 3 and len(per_gate[0]) == 4
    np.testing.assert_array_equal(per_gate[0][1], kernel[:, 2:4])  # forget gate: block 2 of 4


@requires_torch
def test_torch_layers_and_weights_by_name():
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential()
    net.add_module("gru", torch.nn.GRU(3, 2, num_layers=2))
    net.add_module("head", torch.nn.Linear(2, 1))
    assert see_rnn.get_full_name(net, 0) == "gru.l0"
    ws = see_rnn.get_weights(net, "gru.l1/bias", as_dict=True)
    assert list(ws) == ["gru.bias_ih_l1", "gru.bias_hh_l1"]
    np.testing.assert_array_equal(ws["gru.bias_hh_l1"], net.gru.bias_hh_l1.detach().numpy())
    tensors = see_rnn.get_rnn_weights(net, "gru.l1", as_tensors=True)
    assert tensors[0] is net.gru.weight_ih_l1
    k, _rk, b = see_rnn.get_rnn_weights(net, "gru.l0")
    w_ih = net.gru.weight_ih_l0.detach().numpy()  # rows r, z, n; Keras order z, r, h
    np.testing.assert_array_equal(k[:, :2], w_ih[2:4].T)
    np.testing.assert_array_equal(k[:, 2:4], w_ih[0:2].T)
    assert b.shape == (2, 6)
    stats = see_rnn.weights_norm(net, ["head"])
    want = np.sqrt(np.square(net.head.weight.detach().numpy()).sum(axis=0))
    assert stats["head"][0][0] == [want.max()]


@requires_tf_keras
def test_bidirectional_cudnn_lstm_on_cpu():
    """See RNN's EX 10 model: a live Bidirectional(CuDNNLSTM). Built and read without a GPU;
    the oracle is tf-keras's own CuDNN-to-CPU conversion, run by tf-keras."""
    import tf_keras
    from tf_keras.src.layers.rnn.cudnn_lstm import CuDNNLSTM
    from tf_keras.src.saving.legacy.hdf5_format import _convert_rnn_weights

    import rnnscope

    rng = np.random.default_rng(2)
    L = tf_keras.layers
    ipt = L.Input((5, 3))
    model = tf_keras.Model(ipt, L.Bidirectional(CuDNNLSTM(4, return_sequences=True))(ipt))
    model.set_weights([rng.normal(size=w.shape).astype("f4") for w in model.get_weights()])
    cpu_in = L.Input((5, 3))
    cpu = tf_keras.Model(cpu_in, L.Bidirectional(L.LSTM(4, return_sequences=True))(cpu_in))
    bi, cpu_bi = model.layers[1], cpu.layers[1]
    cpu_bi.forward_layer.set_weights(
        _convert_rnn_weights(cpu_bi.forward_layer, bi.forward_layer.get_weights())
    )
    cpu_bi.backward_layer.set_weights(
        _convert_rnn_weights(cpu_bi.backward_layer, bi.backward_layer.get_weights())
    )
    x = rng.normal(size=(2, 5, 3)).astype("f4")

    w = rnnscope.rnn_weights(model, "bidir")
    assert w.kind == "Bidirectional" and w.directions == ("forward", "backward")
    np.testing.assert_allclose(rnnscope.trace(model, x).output(), cpu(x).numpy(), atol=1e-5)
    raw = see_rnn.get_rnn_weights(model, "bidir")
    assert len(raw) == 6 and raw[2].shape == (32,)  # CuDNN's own layout: 8u biases
    figs, _ = see_rnn.rnn_heatmap(model, "bidir", norm=None)
    assert len(figs) == 2
    for fig, side in zip(figs, (cpu_bi.forward_layer, cpu_bi.backward_layer), strict=True):
        kernel = np.asarray(fig.axes[0].images[0].get_array())
        np.testing.assert_allclose(kernel, side.get_weights()[0], atol=1e-6)
    figs, _axes = see_rnn.rnn_histogram(model, "bidir", equate_axes=2)
    assert [f._suptitle.get_text() for f in figs] == ["FORWARD LAYER", "BACKWARD LAYER"]


def test_scalefig_reads_the_environment(monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.setenv("SCALEFIG", "(2, 0.5)")
    fig, _ax = see_rnn.features_0D(np.ones((2, 2)))
    assert tuple(fig.get_size_inches()) == (24.0, 2.0)
    plt.close(fig)
