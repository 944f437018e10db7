"""See RNN's weight readers: ``get_layer``, ``get_full_name``, ``get_weights``, ``weights_norm``,
``get_rnn_weights``, ``rnn_summary`` and ``detect_nans``."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Sequence
from copy import deepcopy
from typing import Any

import numpy as np

from ..._adapters import framework_of
from ..._api import resolve
from ..._errors import LayerError
from ..._model import RNNWeights
from ..._stats import count_nonfinite
from ._ids import KERAS, Layer, _by_index, _by_names, is_input, model_layers, parse_ids, pick_layers

__all__ = [
    "detect_nans",
    "get_full_name",
    "get_layer",
    "get_rnn_weights",
    "get_weights",
    "rnn_summary",
    "weights_norm",
]


def get_layer(model: Any, _id: Any) -> Any:
    """The layer(s) ``_id`` names, as See RNN's ``get_layer`` finds them.

    Args:
        model: a Keras 3 / tf-keras model, or a torch module.
        _id: a layer index into ``model.layers`` (torch: into the layers with weights), a layer
            name or part of one (the earliest layer containing it is taken, with a warning when
            several do), or a list mixing both.

    Returns:
        One layer when one was asked for, else a list: indexed layers first, then named ones in
        model order. torch layers are modules (a stacked layer is ``(module, layer_number)``).

    Example:
        >>> get_layer(model, "lstm")  # doctest: +SKIP
    """
    picked, one = pick_layers(model, _id)
    objs = [lay.obj for lay in picked]
    return objs[0] if one and len(objs) == 1 else objs


def get_full_name(model: Any, _id: Any) -> Any:
    """The complete name(s) of the layer(s) ``_id`` names (same rules as :func:`get_layer`).

    Example:
        >>> get_full_name(model, "bidir")  # doctest: +SKIP
        'bidirectional'
    """
    picked, one = pick_layers(model, _id)
    names = [lay.name for lay in picked]
    return names[0] if one and len(names) == 1 else names


# -- variables -------------------------------------------------------------------------------------
def _torch_names(model: Any) -> dict[int, str]:
    return {id(p): n for n, p in model.named_parameters()}


def variables(model: Any, lay: Layer, trainable: bool = False) -> list[tuple[str, Any]]:
    """``(full weight name, framework variable)`` of one layer, in the layer's own order."""
    fw = framework_of(model)
    if fw == "torch":
        assert lay.ref is not None
        names = _torch_names(model)
        return [(names.get(id(v), f"{lay.name}.{i}"), v) for i, v in enumerate(lay.ref.variables)]
    vs = lay.obj.trainable_weights if trainable else lay.obj.weights
    if fw == "keras":
        return [(str(getattr(v, "path", v.name)), v) for v in vs]
    return [(str(v.name), v) for v in vs]


def to_value(v: Any) -> np.ndarray:
    """A framework variable's value as a fresh numpy array."""
    if hasattr(v, "detach"):  # torch
        return np.array(v.detach().cpu().numpy(), copy=True)
    root = type(v).__module__.split(".", 1)[0]
    if root == "keras":
        keras = importlib.import_module("keras")
        return np.array(keras.ops.convert_to_numpy(v), copy=True)
    return np.array(v.numpy(), copy=True)


def _has_weights(model: Any, lay: Layer) -> bool:
    return not is_input(lay.obj) and bool(variables(model, lay))


def _weights_of(model: Any, key: Any, layers: list[Layer]) -> dict[str, Any]:
    """The ``{name: variable}`` one ``_id`` entry selects."""
    if isinstance(key, str):
        layer_part, _, weight_part = key.partition("/")
        lay = _by_names(layers, [layer_part])[0]
        found = {n: v for n, v in variables(model, lay) if weight_part in n}
        if not found:
            names = ", ".join(n for n, _ in variables(model, lay)) or "none"
            raise LayerError(
                f"_id '{key}': layer '{lay.name}' has no weight whose name contains "
                f"'{weight_part}'; its weights: {names}"
            )
        return found
    if isinstance(key, tuple):
        lay = _by_index(layers, key[0])
        wanted = [int(i) for w in key[1:] for i in (w if isinstance(w, (tuple, list)) else [w])]
    else:
        lay, wanted = _by_index(layers, key), None
    own = variables(model, lay)
    if wanted is not None and any(not -len(own) <= i < len(own) for i in wanted):
        raise LayerError(
            f"_id {key!r}: layer '{lay.name}' has {len(own)} weights; weight index out of range"
        )
    picks = range(len(own)) if wanted is None else [i % len(own) for i in wanted]
    return {own[i][0]: own[i][1] for i in sorted(set(picks))}


def get_weights(
    model: Any,
    _id: Any,
    omit_names: str | Sequence[str] | None = None,
    as_tensors: bool = False,
    as_dict: bool = False,
) -> Any:
    """Weights of layers, or single weights, chosen by See RNN's ``_id`` forms.

    Args:
        model: a Keras 3 / tf-keras model or a torch module.
        _id: ``'*'`` for every layer with weights; a layer name or part (``'gru'``); a
            layer-and-weight name (``'gru/bias'``: the weights of layer ``gru`` whose names
            contain ``bias``); a layer index (``2``); ``(layer_index, weight_index)`` or
            ``(layer_index, (i, j))``; or a list mixing these (names are read first, then
            indices, as See RNN does).
        omit_names: a weight name part, or a list of them, to leave out.
        as_tensors: return the framework's own variables (Keras variables, torch parameters)
            instead of numpy copies.
        as_dict: return ``{full weight name: value}``.

    Returns:
        A flat list of the weights in order (one array alone when a single ``_id`` selected a
        single weight), or the dict.

    Example:
        >>> get_weights(model, ["lstm", (3, 1)], as_dict=True)  # doctest: +SKIP
    """
    layers = model_layers(model)
    if isinstance(_id, str) and _id == "*":
        keys: list[Any] = [i for i, lay in enumerate(layers) if _has_weights(model, lay)]
    else:
        ids = parse_ids(_id)
        keys = [*(ids.names or []), *(ids.idxs or [])]
    omit = [omit_names] if isinstance(omit_names, str) else list(omit_names or [])
    found: dict[str, Any] = {}
    for key in keys:
        for name, v in _weights_of(model, key, layers).items():
            if not any(o in name for o in omit):
                found[name] = v
    if not as_tensors:
        found = {n: to_value(v) for n, v in found.items()}
    if as_dict:
        return found
    values = list(found.values())
    return values[0] if len(keys) == 1 and len(values) == 1 else values


# -- weight norms ----------------------------------------------------------------------------------
def _norm(w: np.ndarray, norm_fn: Any, axis: int) -> Any:
    keep = w.ndim - 1 if axis == -1 else axis
    others = tuple(a for a in range(w.ndim) if a != keep)
    if isinstance(norm_fn, (tuple, list)):
        outer, inner = norm_fn
        return outer(np.sum(inner(w), axis=others))
    return np.sum(norm_fn(w), axis=others)


def _print_norms(stats: list[Any], l_idx: int, name: str) -> None:
    groups = [", ".join(f"{s[-1]:.4f}" for s in w_stats) for w_stats in stats if w_stats]
    print(f"{l_idx} " + " -- ".join(groups))


def weights_norm(
    model: Any,
    _id: Any,
    _dict: dict[str, Any] | None = None,
    stat_fns: Sequence[Callable[[Any], Any]] = (np.max, np.mean),
    norm_fn: Any = (np.sqrt, np.square),
    omit_names: str | Sequence[str] | None = None,
    axis: int = -1,
    verbose: int | bool = 0,
) -> dict[str, Any]:
    """Statistics of each weight's norms, collected call after call (e.g. once per epoch).

    For every weight of the chosen layers, the norm is taken over all axes but ``axis``
    (``outer(sum(inner(w)))`` for ``norm_fn=(outer, inner)``, ``sum(norm_fn(w))`` for one
    function: ``(np.sqrt, np.square)`` is the L2 norm, ``np.abs`` the L1 norm), and each
    function of ``stat_fns`` reduces those norms to one number.

    Args:
        model: a Keras 3 / tf-keras model or a torch module.
        _id: a layer name/part, index, ``(layer_index, weight_index)``, ``'*'``, or a list.
        _dict: the result of an earlier call; this call's numbers are appended to a copy of it.
        stat_fns: functions reducing the norms (default max and mean).
        norm_fn: ``(outer, inner)`` or one function, as above.
        omit_names: weight name part(s) to leave out.
        axis: the axis the norms are taken along (the one kept); -1 is the last.
        verbose: print the latest numbers per layer.

    Returns:
        ``{layer name: [[[call 1, call 2, ...] per stat] per weight]}``, i.e.
        ``result[layer][weight_index][stat_index]`` lists one value per call.

    Example:
        >>> stats = None
        >>> for epoch in range(3):  # doctest: +SKIP
        ...     stats = weights_norm(model, ["lstm", "dense"], stats)
    """
    layers = model_layers(model)
    if isinstance(_id, str) and _id == "*":
        ids: list[Any] = [i for i, lay in enumerate(layers) if _has_weights(model, lay)]
    else:
        ids = list(_id) if isinstance(_id, list) else [_id]
    names = [pick_layers(model, i[0] if isinstance(i, tuple) else i)[0][0].name for i in ids]
    stats = deepcopy(_dict) if _dict else {n: [[]] for n in names}
    for n in names:
        stats.setdefault(n, [[]])
    for l_idx, lay in enumerate(layers):
        if lay.name not in names:
            continue
        key = ids[names.index(lay.name)]
        found = get_weights(model, key, omit_names, as_dict=True)
        slot = stats[lay.name]
        for w_idx, w in enumerate(found.values()):
            values = [fn(_norm(w, norm_fn, axis)) for fn in stat_fns]
            while len(slot) < w_idx + 1:
                slot.append([])
            while len(slot[w_idx]) < len(values):
                slot[w_idx].append([])
            for s_idx, v in enumerate(values):
                slot[w_idx][s_idx].append(v)
        if verbose:
            _print_norms(slot, l_idx, lay.name)
    return stats


# -- recurrent layers ------------------------------------------------------------------------------
def rnn_layer(model: Any, _id: Any, layer: Any = None) -> tuple[Any, Any]:
    """``(layer object, rnnscope ref)`` of the recurrent layer named by ``_id`` or ``layer``."""
    if layer is None:
        ids = parse_ids(_id)
        first = (ids.names or ids.idxs or [None])[0]
        if isinstance(first, tuple):
            first = first[0]
        lay = pick_layers(model, first)[0][0]
        obj, ref = lay.obj, lay.ref
    else:
        obj, ref = layer, None
    if ref is None:
        refs = [r for r in resolve(obj).refs if r.info.recurrent]
        if len(refs) != 1:
            name = getattr(obj, "name", type(obj).__name__)
            raise LayerError(
                f"layer '{name}' is not a recurrent layer rnnscope can read (LSTM, GRU, "
                f"SimpleRNN, their CuDNN forms, or Bidirectional of one); found "
                f"{', '.join(r.info.kind for r in resolve(obj).refs) or 'no weights'}"
            )
        ref = refs[0]
    if not ref.info.recurrent:
        raise LayerError(f"layer '{ref.info.name}' ({ref.info.kind}) is not a recurrent layer")
    return obj, ref


def record_of(ref: Any) -> RNNWeights:
    rec = ref.extract()
    assert isinstance(rec, RNNWeights)
    return rec


def canonical_data(rec: RNNWeights) -> list[np.ndarray]:
    """Per direction: kernel, recurrent kernel and (if any) bias, as Keras lays them out; two
    biases (torch, GRU reset-after, CuDNN) are stacked as rows of one ``(2, gates*units)``."""
    data: list[np.ndarray] = []
    for d in rec.directions:
        data += [rec.array("kernel", direction=d), rec.array("recurrent_kernel", direction=d)]
        if "recurrent_bias" in rec.parts:
            data.append(
                np.stack([rec.array("bias", direction=d), rec.array("recurrent_bias", direction=d)])
            )
        elif "bias" in rec.parts:
            data.append(rec.array("bias", direction=d))
    return data


def get_rnn_weights(
    model: Any,
    _id: Any,
    layer: Any = None,
    as_tensors: bool = False,
    concat_gates: bool = True,
) -> list[Any]:
    """A recurrent layer's weights as one flat list: forward kernel, recurrent kernel, bias, then
    the backward ones for a Bidirectional layer.

    Args:
        model: a Keras 3 / tf-keras model or a torch module.
        _id: the layer's name (or part) or index; ``layer=`` overrides it.
        layer: the layer object itself.
        as_tensors: the framework's own variables (Keras variables; torch parameters) instead
            of numpy arrays.
        concat_gates: True: whole matrices. False: each matrix as a list of per-gate blocks
            (in the canonical layout, so CuDNN and torch layers split the same way); a
            non-gated SimpleRNN keeps whole matrices, with a warning.

    Returns:
        Keras: the arrays exactly as the layer stores them. torch: the Keras layout (kernel
        ``(in, gates*units)``, recurrent kernel ``(units, gates*units)``, the two biases
        stacked as ``(2, gates*units)``), gates in Keras order.

    Example:
        >>> kernel, recurrent_kernel, bias = get_rnn_weights(model, "lstm")  # doctest: +SKIP
    """
    obj, ref = rnn_layer(model, _id, layer)
    if as_tensors and concat_gates:
        return list(ref.variables)
    rec = record_of(ref)
    if not concat_gates and rec.n_gates == 1:
        warnings.warn(
            f"layer '{rec.name}' ({rec.cell}) has no gates; returning whole matrices",
            stacklevel=2,
        )
        concat_gates = True
    if not concat_gates:
        return [
            [rec.array(p, g, d) for g in rec.gates]
            for d in rec.directions
            for p in rec.parts
            if p != "projection"
        ]
    if framework_of(model if layer is None else obj) in KERAS:
        return [to_value(v) for v in ref.variables]
    return canonical_data(rec)


def rnn_summary(layer: Any) -> None:
    """Print each weight of a recurrent layer with its shape, per direction.

    Args:
        layer: a Keras LSTM/GRU/SimpleRNN (or CuDNN, or Bidirectional of one) layer, or a torch
            recurrent module.

    Example:
        >>> rnn_summary(model.layers[1])  # doctest: +SKIP
        lstm/lstm_cell/kernel:0 -- shape=(3, 16)
    """
    _, ref = rnn_layer(None, None, layer)
    rec = record_of(ref)
    fw = framework_of(layer)
    if fw == "torch":
        names = _torch_names(layer)
        groups = [[(names.get(id(v), "?"), tuple(v.shape)) for v in ref.variables]]
    else:
        subs = [layer.forward_layer, layer.backward_layer] if rec.bidirectional else [layer]
        groups = []
        for sub in subs:
            src = sub if any("CuDNN" in k.__name__ for k in type(sub).__mro__) else sub.cell
            vs = [getattr(src, k, None) for k in ("kernel", "recurrent_kernel", "bias")]
            attr = "path" if fw == "keras" else "name"
            groups.append(
                [
                    (str(getattr(v, attr)), tuple(int(s) for s in v.shape))
                    for v in vs
                    if v is not None
                ]
            )
    for i, group in enumerate(groups):
        if len(groups) == 2:
            print("// FORWARD LAYER" if i == 0 else "// BACKWARD LAYER")
        for name, shape in group:
            print(name, f"-- shape={shape}")


def detect_nans(data: Any, include_inf: bool = True) -> str | None:
    """How much of ``data`` is NaN (and Inf), as text, or None when all values are finite.

    Shares of 0.1% and more are given in percent (``'12.5% NaN'``); smaller ones as a count
    (``'3 NaN'``); both kinds are joined by ``', '``.

    Example:
        >>> detect_nans([1.0, float("nan")])
        '50.0% NaN'
    """
    a = np.asarray(data)
    if a.size == 0 or not (np.issubdtype(a.dtype, np.floating) or np.iscomplexobj(a)):
        return None
    parts = []
    nan, inf = count_nonfinite(a)
    kinds = [("NaN", nan)] + ([("Inf", inf)] if include_inf else [])
    for label, n in kinds:
        perc = 100 * float(n) / a.size
        if perc == 0:
            continue
        parts.append(f"{n} {label}" if perc < 0.1 else f"{perc:.1f}% {label}")
    return ", ".join(parts) or None
