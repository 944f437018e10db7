"""See RNN's public functions, on Keras 3 (every backend), tf-keras and torch.

Code written for See RNN (``from see_rnn import ...``) runs by importing from here instead. The
names and keyword arguments are See RNN's; the work is rnnscope's: weights come in the
framework's own layout (Keras: ``layer.get_weights()`` order and shapes; torch: rnnscope's
canonical kernel, recurrent kernel, bias order), gradients from :func:`rnnscope.gradients`, and
figures from :mod:`rnnscope.plot`. ``_id`` is a layer index (into ``model.layers`` for Keras, as
in See RNN; into the layers with weights for torch), a name, or a unique name part, or a list of
them. Figures are returned, never shown; call ``plt.show()`` where See RNN showed them.

An unknown keyword argument raises ``TypeError`` naming it and the accepted ones.

Also here are the names of the widely copied answer that preceded See RNN:
``get_rnn_gradients`` and ``show_features_0D/1D/2D``.

Example:
    >>> from rnnscope.compat.see_rnn import rnn_histogram, get_gradients  # doctest: +SKIP
    >>> rnn_histogram(model, "lstm", equate_axes=False, show_bias=False)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import _api
from .._adapters import framework_of
from .._capture import activations, gradients
from .._errors import InputError, UnsupportedError
from .._model import LayerWeights, RNNWeights
from .._summary import Summary, summary
from .._trace import to_numpy

__all__ = [
    "detect_nans",
    "features_0D",
    "features_1D",
    "features_2D",
    "features_hist",
    "get_gradients",
    "get_outputs",
    "get_rnn_gradients",
    "get_rnn_weights",
    "get_weight_penalties",
    "get_weights",
    "rnn_heatmap",
    "rnn_histogram",
    "rnn_summary",
    "show_features_0D",
    "show_features_1D",
    "show_features_2D",
    "weight_loss",
    "weights_norm",
]


def _options(
    fn: str, given: dict[str, Any], defaults: dict[str, Any], named: Sequence[str] = ()
) -> dict[str, Any]:
    """``defaults`` updated with ``given``; an unknown keyword is a ``TypeError`` naming it."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        accepted = ", ".join([*named, *sorted(defaults)])
        raise TypeError(
            f"{fn}() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
            f"it accepts: {accepted}"
        )
    return {**defaults, **given}


# -- layers ----------------------------------------------------------------------------------------
def _key(model: Any, _id: Any) -> Any:
    """See RNN's ``_id``: a Keras int indexes ``model.layers`` (input layers included)."""
    if isinstance(_id, (int, np.integer)) and not isinstance(_id, bool):
        if framework_of(model) in ("keras", "tf_keras") and hasattr(model, "layers"):
            layers = list(model.layers)
            if not -len(layers) <= int(_id) < len(layers):
                raise InputError(
                    f"_id {int(_id)} is out of range: the model has {len(layers)} "
                    f"layers: {', '.join(lay.name for lay in layers)}"
                )
            return layers[int(_id)].name
        return int(_id)
    if isinstance(_id, str):
        return _id
    raise InputError(f"_id must be a layer index, name or name part (or a list); got {_id!r}")


def _keys(model: Any, _id: Any) -> tuple[list[Any], bool]:
    if isinstance(_id, (list, tuple)):
        return [_key(model, i) for i in _id], True
    return [_key(model, _id)], False


def _one_or_list(values: list[Any], many: bool) -> Any:
    return values if many else values[0]


def _native(rec: RNNWeights | LayerWeights, framework: str | None) -> list[np.ndarray]:
    """A record's arrays in the order (and, for Keras, the shapes) of ``layer.get_weights()``."""
    if isinstance(rec, LayerWeights):
        return [a.copy() for _, a in rec.items()]
    out: list[np.ndarray] = []
    keras = framework in ("keras", "tf_keras")
    for d in rec.directions:
        for p in rec.parts:
            a = rec.array(p, direction=d)
            if p == "recurrent_bias" and keras and rec.cell == "GRU":
                out[-1] = np.stack([out[-1], a])  # Keras GRU reset_after: one (2, 3u) bias
                continue
            out.append(a)
    return out


def _label(rec: RNNWeights | LayerWeights, i: int) -> str:
    if isinstance(rec, LayerWeights):
        return rec.names[i]
    return f"weight {i}"


# -- data ------------------------------------------------------------------------------------------
def get_outputs(model: Any, _id: Any, input_data: Any, **kwargs: Any) -> Any:
    """Outputs of the layer(s) ``_id`` for ``input_data`` (See RNN ``get_outputs``)."""
    opts = _options(
        "get_outputs",
        kwargs,
        {"learning_phase": 0, "as_dict": False},
        ("model", "_id", "input_data"),
    )
    keys, many = _keys(model, _id)
    out = activations(model, input_data, keys, training=bool(opts["learning_phase"]))
    if opts["as_dict"]:
        return out
    return _one_or_list(list(out.values()), many)


def get_gradients(model: Any, _id: Any, input_data: Any, labels: Any, **kwargs: Any) -> Any:
    """Gradients of the loss w.r.t. the outputs or the weights of layer(s) ``_id``.

    ``mode="outputs"`` gives arrays shaped like the outputs; ``mode="weights"`` a list per layer
    in ``layer.get_weights()`` order. The loss is the compiled one (Keras); pass ``loss=`` for
    torch.
    """
    opts = _options(
        "get_gradients",
        kwargs,
        {
            "mode": "outputs",
            "sample_weight": None,
            "learning_phase": 0,
            "as_dict": False,
            "loss": None,
        },
        ("model", "_id", "input_data", "labels"),
    )
    if opts["mode"] not in ("outputs", "weights"):
        raise InputError(f"mode must be 'outputs' or 'weights'; got {opts['mode']!r}")
    keys, many = _keys(model, _id)
    out = gradients(
        model,
        input_data,
        labels,
        keys,
        wrt=opts["mode"],
        loss=opts["loss"],
        sample_weight=opts["sample_weight"],
        training=bool(opts["learning_phase"]),
    )
    if opts["mode"] == "weights":
        fw = framework_of(model)
        out = {k: _native(v, fw) for k, v in out.items()}
    if opts["as_dict"]:
        return out
    return _one_or_list(list(out.values()), many)


def get_weights(model: Any, _id: Any, **kwargs: Any) -> Any:
    """Weights of layer(s) ``_id`` in ``layer.get_weights()`` order (See RNN ``get_weights``)."""
    opts = _options("get_weights", kwargs, {"omit_names": None, "as_dict": False}, ("model", "_id"))
    keys, many = _keys(model, _id)
    fw = framework_of(model)
    per_layer = {}
    for k in keys:
        rec = _api.weights(model, k)
        arrays = _native(rec, fw)
        omit = opts["omit_names"] or ()
        omit = [omit] if isinstance(omit, str) else list(omit)
        per_layer[rec.name] = [
            a for i, a in enumerate(arrays) if not any(o in _label(rec, i) for o in omit)
        ]
    if opts["as_dict"]:
        return per_layer
    return _one_or_list(list(per_layer.values()), many)


def get_rnn_weights(model: Any, _id: Any, **kwargs: Any) -> Any:
    """A recurrent layer's kernel, recurrent kernel and bias(es) (See RNN ``get_rnn_weights``).

    Unidirectional: ``[kernel, recurrent_kernel, bias, ...]``; bidirectional: a list of two such
    lists (forward, backward). ``concat_gates=False`` splits each into a list of gate blocks.
    """
    opts = _options(
        "get_rnn_weights", kwargs, {"as_tensors": False, "concat_gates": True}, ("model", "_id")
    )
    if opts["as_tensors"]:
        raise UnsupportedError(
            "get_rnn_weights: as_tensors=True is not supported; rnnscope returns numpy arrays"
        )
    rec = _api.rnn_weights(model, _key(model, _id))
    per_dir: list[Any] = []
    for d in rec.directions:
        parts = [p for p in rec.parts if p != "projection"]
        if opts["concat_gates"]:
            per_dir.append([rec.array(p, direction=d) for p in parts])
        else:
            per_dir.append([[rec.array(p, g, d) for g in rec.gates] for p in parts])
    return per_dir[0] if len(per_dir) == 1 else per_dir


def detect_nans(data: Any, include_inf: bool = True) -> str | None:
    """``"NaN: 12.5%, Inf: 0.0%"`` if ``data`` has any non-finite values, else None."""
    a = to_numpy(data, what="data")
    if not np.issubdtype(a.dtype, np.floating) or a.size == 0:
        return None
    nan = float(np.isnan(a).mean() * 100)
    inf = float(np.isinf(a).mean() * 100) if include_inf else 0.0
    if nan == 0 and inf == 0:
        return None
    text = f"NaN: {nan:.4g}%"
    return f"{text}, Inf: {inf:.4g}%" if include_inf else text


def weights_norm(
    model: Any, _id: Any, _dict: dict[str, Any] | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Statistics of per-row weight norms of layer(s) ``_id``, for tracking over epochs.

    Each weight's norms along ``axis`` (``norm_fn=(np.sqrt, 2)``: L2) are reduced by every
    function in ``stat_fns`` (default max and mean). Returns ``{layer: [[stats of weight 0],
    ...]}``; with ``_dict`` from an earlier call, each weight's stats are appended to its list
    there (``_dict[layer][w]`` is a list of per-call stats), which is how See RNN tracked norms
    epoch by epoch.
    """
    opts = _options(
        "weights_norm",
        kwargs,
        {
            "stat_fns": (np.max, np.mean),
            "norm_fn": (np.sqrt, 2),
            "omit_names": None,
            "axis": -1,
            "verbose": 0,
        },
        ("model", "_id", "_dict"),
    )
    outer, power = opts["norm_fn"]
    ids = _id if isinstance(_id, (list, tuple)) else [_id]
    found = get_weights(model, list(ids), omit_names=opts["omit_names"], as_dict=True)
    stats: dict[str, list[list[float]]] = {}
    for name, arrays in found.items():
        stats[name] = []
        for w in arrays:
            norms = outer(np.sum(np.abs(w) ** power, axis=opts["axis"]))
            stats[name].append([float(fn(norms)) for fn in opts["stat_fns"]])
            if opts["verbose"]:
                print(f"{name} {w.shape}: " + ", ".join(f"{v:.4g}" for v in stats[name][-1]))
    if _dict is None:
        return stats
    for name, per_weight in stats.items():
        slot = _dict.setdefault(name, [[] for _ in per_weight])
        for i, s in enumerate(per_weight):
            slot[i].append(s)
    return _dict


def get_weight_penalties(model: Any, **kwargs: Any) -> list[tuple[str, float, float, float]]:
    """Every regularised weight of a Keras model as ``(name, l1, l2, penalty)``."""
    _options("get_weight_penalties", kwargs, {}, ("model",))
    if framework_of(model) == "tf_keras":
        from ..tf_keras import weight_penalties
    else:
        from ..keras import weight_penalties

    return [
        (f"{p['layer']}/{p['weight']}", p["l1"], p["l2"], p["penalty"])
        for p in weight_penalties(model)
    ]


def weight_loss(model: Any, **kwargs: Any) -> float:
    """The total regularisation penalty of a Keras model's weights."""
    _options("weight_loss", kwargs, {}, ("model",))
    return float(sum(p[3] for p in get_weight_penalties(model)))


def rnn_summary(layer: Any, **kwargs: Any) -> Summary:
    """Print (and return) per-gate statistics of a recurrent layer (See RNN ``rnn_summary``)."""
    _options("rnn_summary", kwargs, {}, ("layer",))
    return summary(layer)


# -- figures ---------------------------------------------------------------------------------------
def _rnn_plot(
    fn: str,
    draw: Callable[..., Any],
    model: Any,
    _id: Any,
    extra: dict[str, Any],
    kwargs: dict[str, Any],
) -> Any:
    common = {
        "mode": "weights",
        "input_data": None,
        "labels": None,
        "sample_weight": None,
        "loss": None,
        "show_bias": True,
        "direction": None,
        "title": None,
        "dpi": None,
        "savepath": None,
    }
    opts = _options(fn, kwargs, {**common, **extra}, ("model", "_id"))
    if "gate_sep" in opts:  # See RNN's name for the gate separator lines
        opts["gate_lines"] = opts.pop("gate_sep")
    x, y = opts.pop("input_data"), opts.pop("labels")
    mode = "grads" if opts.pop("mode") in ("grads", "gradients") else "weights"
    if mode == "weights":
        x = y = None
    return draw(model, _key(model, _id), mode, x, y, **opts)


def rnn_histogram(model: Any, _id: Any, **kwargs: Any) -> Any:
    """Histograms of a recurrent layer's weights or gradients, parts x gates per direction."""
    from ..plot import rnn_histogram as draw

    return _rnn_plot("rnn_histogram", draw, model, _id, {"equate_axes": 1, "bins": 100}, kwargs)


def rnn_heatmap(model: Any, _id: Any, **kwargs: Any) -> Any:
    """Heatmaps of a recurrent layer's weights or gradients, gates side by side."""
    from ..plot import rnn_heatmap as draw

    extra = {"cmap": "bwr", "norm": None, "absolute_value": False, "gate_sep": True}
    return _rnn_plot("rnn_heatmap", draw, model, _id, extra, kwargs)


_LOOKS = {
    "scale_width": 1.0,
    "scale_height": 1.0,
    "title_fontsize": 12,
    "show_borders": True,
    "savepath": None,
    "dpi": None,
}


def _looks(fig: Any, opts: dict[str, Any]) -> Any:
    """See RNN's cosmetic options, applied to a drawn figure; then save it."""
    from ..plot._common import save

    w, h = fig.get_size_inches()
    fig.set_size_inches(w * float(opts["scale_width"]), h * float(opts["scale_height"]))
    if fig._suptitle is not None:
        fig._suptitle.set_fontsize(opts["title_fontsize"])
    if not opts["show_borders"]:
        for ax in fig.axes:
            for spine in ax.spines.values():
                spine.set_visible(False)
    save(fig, opts["savepath"])
    return fig


def _split(opts: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    looks = {k: opts.pop(k) for k in list(opts) if k in _LOOKS and k != "dpi"}
    return opts, {**_LOOKS, **looks}


def features_2D(data: Any, **kwargs: Any) -> Any:
    """One channels-by-timesteps image per sample (See RNN ``features_2D``)."""
    from ..plot import features_2d

    opts = _options(
        "features_2D",
        kwargs,
        {
            "n_rows": None,
            "norm": None,
            "cmap": "bwr",
            "reflect_half": False,
            "timesteps_xaxis": True,
            "max_timesteps": None,
            "share_xy": True,
            "annotations": "auto",
            "show_xy_ticks": (1, 1),
            "show_colorbar": True,
            "show_title": True,
            "title": None,
            "channel_axis": -1,
            **_LOOKS,
        },
        ("data",),
    )
    opts, looks = _split(opts)
    opts["colorbar"] = opts.pop("show_colorbar")
    return _looks(features_2d(data, **opts), looks)


def features_1D(data: Any, **kwargs: Any) -> Any:
    """Values over timesteps as lines (See RNN ``features_1D``): one panel per channel, a line
    per sample; ``subplot_samples=True`` for one panel per sample, a line per channel."""
    from ..plot import features_1d

    opts = _options(
        "features_1D",
        kwargs,
        {
            "n_rows": None,
            "subplot_samples": False,
            "share_xy": True,
            "reflect_half": False,
            "max_timesteps": None,
            "annotations": "auto",
            "show_xy_ticks": (1, 1),
            "show_title": True,
            "title": None,
            "channel_axis": -1,
            **_LOOKS,
        },
        ("data",),
    )
    opts, looks = _split(opts)
    opts["per"] = "sample" if opts.pop("subplot_samples") else "channel"
    return _looks(features_1d(data, **opts), looks)


def features_0D(data: Any, **kwargs: Any) -> Any:
    """``(samples, channels)`` data as points per channel (See RNN ``features_0D``)."""
    from ..plot import features_0d

    opts = _options(
        "features_0D",
        kwargs,
        {
            "marker": "o",
            "cmap": "viridis",
            "color": None,
            "show_y_zero": True,
            "show_xy_ticks": (1, 1),
            "show_title": True,
            "title": None,
            "channel_axis": -1,
            **_LOOKS,
        },
        ("data",),
    )
    opts, looks = _split(opts)
    return _looks(features_0d(data, **opts), looks)


def features_hist(data: Any, **kwargs: Any) -> Any:
    """One histogram per entry along the first axis (See RNN ``features_hist``)."""
    from ..plot import features_hist as draw

    opts = _options(
        "features_hist",
        kwargs,
        {
            "n_rows": None,
            "bins": 100,
            "share_xy": True,
            "annotations": "auto",
            "show_xy_ticks": (1, 1),
            "show_title": True,
            "title": None,
            **_LOOKS,
        },
        ("data",),
    )
    opts, looks = _split(opts)
    return _looks(draw(data, **opts), looks)


# -- the answer that preceded See RNN --------------------------------------------------------------
def get_rnn_gradients(model: Any, input_data: Any, labels: Any, **kwargs: Any) -> Any:
    """Gradients of the loss w.r.t. one layer's outputs, chosen by ``layer_idx`` or
    ``layer_name`` (``sample_weights``: per-sample weights)."""
    opts = _options(
        "get_rnn_gradients",
        kwargs,
        {"layer_idx": None, "layer_name": None, "sample_weights": None, "loss": None},
        ("model", "input_data", "labels"),
    )
    if (opts["layer_idx"] is None) == (opts["layer_name"] is None):
        raise InputError("get_rnn_gradients: give exactly one of layer_idx and layer_name")
    _id = opts["layer_idx"] if opts["layer_idx"] is not None else opts["layer_name"]
    return get_gradients(
        model,
        _id,
        input_data,
        labels,
        mode="outputs",
        sample_weight=opts["sample_weights"],
        loss=opts["loss"],
    )


def _show_opts(fn: str, kwargs: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    return _options(
        fn,
        kwargs,
        {"show_title": True, "show_xy_ticks": (1, 1), "channel_axis": -1, **extra, **_LOOKS},
        ("data",),
    )


def show_features_2D(data: Any, **kwargs: Any) -> Any:
    """Per-sample channels-by-timesteps images (the answer's ``show_features_2D``)."""
    opts = _show_opts(
        "show_features_2D",
        kwargs,
        {
            "n_rows": None,
            "norm": None,
            "cmap": "bwr",
            "reflect_half": False,
            "timesteps_xaxis": True,
            "max_timesteps": None,
            "show_colorbar": False,
        },
    )
    return features_2D(data, **opts)


def show_features_1D(data: Any, **kwargs: Any) -> Any:
    """One panel per channel, a line per sample, over timesteps (``show_features_1D``)."""
    opts = _show_opts(
        "show_features_1D",
        kwargs,
        {
            "n_rows": None,
            "label_channels": True,
            "equate_axes": True,
            "max_timesteps": None,
            "color": None,
        },
    )
    label = opts.pop("label_channels")
    opts["share_xy"] = bool(opts.pop("equate_axes"))
    opts["annotations"] = "auto" if label else None
    color = opts.pop("color")
    fig = features_1D(data, **opts)
    if color is not None:
        for ax in fig.axes:
            for line in ax.get_lines()[:-1]:
                line.set_color(color)
    return fig


def show_features_0D(data: Any, **kwargs: Any) -> Any:
    """Points per channel, one colour per sample (``show_features_0D``)."""
    opts = _show_opts(
        "show_features_0D",
        kwargs,
        {"marker": "o", "cmap": "viridis", "color": None, "show_y_zero": True},
    )
    return features_0D(data, **opts)
