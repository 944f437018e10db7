"""See RNN's data getters: ``get_outputs``, ``get_gradients`` (and the answer's
``get_rnn_gradients``), on rnnscope's capture of activations and gradients."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..._errors import InputError, LayerError
from ..._frameworks import TORCH, KerasFramework, find_framework, framework_for
from ..._model import LayerInfo, LayerWeights
from ..._refs import LayerRef
from ._ids import Layer, is_input, model_layers, parse_ids, pick_layers
from ._weights import variables

__all__ = [
    "get_gradients",
    "get_outputs",
    "get_rnn_gradients",
    "get_weight_penalties",
    "weight_loss",
]


def _chosen(model: Any, _id: Any, layer: Any, wanted: str) -> tuple[list[Layer], bool]:
    """Layers from ``'*'`` (all but inputs; for weights, those with trainable weights), from
    ``layer=`` (one or a list of layer objects) or from ``_id``."""
    if isinstance(_id, str) and _id == "*":
        every = [lay for lay in model_layers(model) if not is_input(lay.obj)]
        if wanted == "weights":
            every = [lay for lay in every if variables(model, lay, trainable=True)]
        return every, len(every) == 1
    if layer is not None:
        parse_ids(_id, layer)  # warns that layer= wins
        objs = layer if isinstance(layer, list) else [layer]
        known = {id(lay.obj): lay for lay in model_layers(model)}
        out = []
        for o in objs:
            if id(o) not in known:
                raise LayerError(f"layer= {getattr(o, 'name', o)!r} is not a layer of the model")
            out.append(known[id(o)])
        return out, len(out) == 1
    return pick_layers(model, _id)


def _ref(model: Any, lay: Layer, trainable: bool = True) -> LayerRef:
    """A capture ref for any layer (with or without weights); its record is the layer's
    weights (or their gradients) keyed by full weight name."""
    named = variables(model, lay, trainable=trainable)
    kind = type(lay.obj).__name__

    def build(value: Any) -> LayerWeights:
        return LayerWeights(lay.name, kind, {n: value(v) for n, v in named})

    if lay.ref is not None:  # torch: keep rnnscope's hook target
        return dataclasses.replace(lay.ref, build=build)
    info = LayerInfo(lay.name, kind, {}, recurrent=False)
    return LayerRef(info, lambda: build(lambda v: v), lay.obj, tuple(v for _, v in named), build)


def _one(values: list[Any], one: bool) -> Any:
    return values[0] if one and len(values) == 1 else values


def get_outputs(
    model: Any,
    _id: Any,
    input_data: Any,
    layer: Any = None,
    learning_phase: int | bool = 0,
    as_dict: bool = False,
) -> Any:
    """Outputs of layers for ``input_data``, any layer (with weights or not: ``Concatenate``,
    ``Activation``, ...).

    Args:
        model: a Keras 3 / tf-keras model or a torch module.
        _id: layer name/part, index, a list of them, or ``'*'`` for every layer but inputs.
        input_data: the model's input (a list of arrays for several inputs).
        layer: a layer object (or a list of them) instead of ``_id``.
        learning_phase: 1 runs the model in training mode (dropout on), 0 in inference mode.
        as_dict: return ``{layer name: output}``.

    Returns:
        numpy arrays: one when one layer was asked for, else a list in the order found. A layer
        returning several tensors gives its first.

    Example:
        >>> outs = get_outputs(model, 1, x)
    """
    layers, one = _chosen(model, _id, layer, "outputs")
    fw = framework_for(model)
    backend = fw.capture
    refs = [_ref(model, lay) for lay in layers]
    if fw is TORCH:
        bad = [r.info.name for r in refs if not backend.has_output(r)]
        if bad:
            raise LayerError(
                f"layers {', '.join(bad)} are inner layers of a stacked torch RNN, whose "
                "outputs torch does not expose; ask for the last layer of the stack"
            )
    out = dict(backend.activations(model, input_data, refs, bool(learning_phase)))
    values = [np.array(out[r.info.name], copy=True) for r in refs]
    if as_dict:
        return {r.info.name: v for r, v in zip(refs, values, strict=True)}
    return _one(values, one)


def _params_layers(model: Any, params: Any) -> tuple[list[Layer], list[Any], str]:
    """The layers behind ``params`` (variables -> ``'weights'``, layer outputs -> ``'outputs'``)."""
    items = params if isinstance(params, list) else [params]
    layers = model_layers(model)
    by_var = {id(v): lay for lay in layers for _, v in variables(model, lay)}
    if all(id(p) in by_var for p in items):
        return [by_var[id(p)] for p in items], items, "weights"
    owners = []
    for p in items:
        hist = getattr(p, "_keras_history", None)
        owner = getattr(hist, "operation", None) or getattr(hist, "layer", None)
        if owner is None and isinstance(hist, tuple):
            owner = hist[0]
        match = [lay for lay in layers if lay.obj is owner]
        if not match:
            raise InputError(
                f"params: {p!r} is neither a weight of the model nor the output of one of its "
                "layers; give weights (layer.weights) or outputs (layer.output)"
            )
        owners.append(match[0])
    return owners, items, "outputs"


def get_gradients(
    model: Any,
    _id: Any,
    input_data: Any,
    labels: Any,
    sample_weight: Any = None,
    learning_phase: int | bool = 0,
    layer: Any = None,
    mode: str = "outputs",
    params: Any = None,
    as_dict: bool = False,
    loss: Any = None,
) -> Any:
    """Gradients of the loss w.r.t. layer outputs or layer weights.

    Args:
        model: a Keras 3 / tf-keras model (the compiled loss is used, regularisation included)
            or a torch module (give ``loss=``).
        _id: layer name/part, index, list, or ``'*'`` (every layer but inputs; with
            ``mode='weights'``, every layer with trainable weights).
        input_data: the model's input; labels: its targets.
        sample_weight: per-sample loss weights, ``(batch,)``.
        learning_phase: 1 for training mode (dropout on), 0 for inference.
        layer: layer object(s) instead of ``_id``.
        mode: ``'outputs'`` (shaped like each layer's output) or ``'weights'`` (one array per
            trainable weight, flat, in the layers' own order).
        params: the model's own variables (e.g. ``layer.trainable_weights``) or layer outputs
            (``layer.output``) instead of ``_id``/``layer``/``mode``.
        as_dict: return ``{layer name: grads}`` (outputs) or ``{weight name: grads}`` (weights).
        loss: rnnscope's addition, needed for torch: a callable ``(prediction, target)``;
            on Keras, a loss that replaces the compiled one.

    Returns:
        numpy arrays: one when one was asked for, else a list.

    Example:
        >>> grads = get_gradients(model, "lstm", x, y, mode="weights")
    """
    if mode not in ("outputs", "weights"):
        raise InputError(f"get_gradients: mode must be 'outputs' or 'weights'; got {mode!r}")
    if params is not None:
        layers, items, mode = _params_layers(model, params)
        one = len(items) == 1
    else:
        layers, one = _chosen(model, _id, layer, mode)
        items = None
    backend = framework_for(model).capture
    training = bool(learning_phase)
    if mode == "outputs":
        refs = list({lay.name: _ref(model, lay) for lay in layers}.values())
        out = dict(
            backend.gradients(model, input_data, labels, refs, False, loss, sample_weight, training)
        )
        names = [lay.name for lay in layers]
        values = [np.array(out[n], copy=True) for n in names]
        if as_dict:
            return dict(zip(names, values, strict=True))
        return _one(values, one)
    refs = list({lay.name: _ref(model, lay) for lay in layers}.values())
    out = dict(
        backend.gradients(model, input_data, labels, refs, True, loss, sample_weight, training)
    )
    grads: dict[str, np.ndarray] = {}
    for r in refs:
        grads.update({n: np.array(a, copy=True) for n, a in out[r.info.name].items()})
    if items is not None:
        by_id = {id(v): n for lay in layers for n, v in variables(model, lay)}
        grads = {by_id[id(p)]: grads[by_id[id(p)]] for p in items}
    if as_dict:
        return grads
    values = list(grads.values())
    return _one(values, one)


def get_rnn_gradients(
    model: Any,
    input_data: Any,
    labels: Any,
    layer_idx: int | None = None,
    layer_name: str | None = None,
    sample_weights: Any = None,
    loss: Any = None,
) -> Any:
    """Gradients of the loss w.r.t. one layer's outputs (the answer that preceded See RNN).

    Args:
        layer_idx / layer_name: the layer, by index into ``model.layers`` or by name (one).
        sample_weights: per-sample loss weights.
        loss: for torch, a callable ``(prediction, target)``.

    Example:
        >>> grads = get_rnn_gradients(model, x, y, layer_idx=1)
    """
    if (layer_idx is None) == (layer_name is None):
        raise InputError("get_rnn_gradients: give exactly one of layer_idx and layer_name")
    _id = layer_idx if layer_idx is not None else layer_name
    return get_gradients(model, _id, input_data, labels, sample_weight=sample_weights, loss=loss)


_REGULARISED = (
    ("kernel_regularizer", "kernel"),
    ("recurrent_regularizer", "recurrent_kernel"),
    ("bias_regularizer", "bias"),
)


def _regularised(model: Any) -> list[tuple[str, Any, tuple[float, float]]]:
    """``(weight name, variable, (l1, l2))`` of every regularised weight, as See RNN finds them:
    the model's own layers (not nested models), an RNN's cell, both directions of a
    Bidirectional, the wrapped layer of other wrappers; weights whose factors are all zero are
    left out."""
    fw = find_framework(model)
    if not isinstance(fw, KerasFramework):
        raise InputError(
            "get_weight_penalties: expected a Keras 3 or tf-keras model, "
            f"got {type(model).__name__}"
        )
    out = []
    for layer in model.layers:
        if hasattr(layer, "backward_layer"):
            owners = [layer.forward_layer.cell, layer.backward_layer.cell]
        elif hasattr(layer, "cell"):
            owners = [layer.cell]
        elif hasattr(layer, "layer"):
            inner = layer.layer
            owners = [inner.cell if hasattr(inner, "cell") else inner]
        else:
            owners = [layer]
        for owner in owners:
            for reg_attr, weight_attr in _REGULARISED:
                reg, var = getattr(owner, reg_attr, None), getattr(owner, weight_attr, None)
                if reg is None or var is None:
                    continue
                factors = (
                    float(getattr(reg, "l1", 0.0) or 0.0),
                    float(getattr(reg, "l2", 0.0) or 0.0),
                )
                if any(factors):
                    out.append((fw.weight_name(var), var, factors))
    return out


def get_weight_penalties(model: Any) -> dict[str, tuple[float, float]]:
    """The L1 and L2 factors of every regularised weight, as See RNN returns them.

    Looks at the model's layers, and for recurrent layers at their cells (both directions of a
    Bidirectional): each weight with a ``kernel_regularizer``, ``recurrent_regularizer`` or
    ``bias_regularizer`` whose factors are not all zero. Keys are the weights' full names
    (Keras 3: the variable's path, ``'lstm/lstm_cell/kernel'``; tf-keras: its name,
    ``'lstm/lstm_cell/kernel:0'``), values ``(l1, l2)``.

    Example:
        >>> get_weight_penalties(model)
        {'lstm/lstm_cell/kernel': (0.0, 0.01)}
    """
    return {name: factors for name, _, factors in _regularised(model)}


def weight_loss(model: Any) -> float:
    """The total weight penalty, ``sum(l1 * |w| + l2 * w**2)`` over the weights that
    :func:`get_weight_penalties` lists (what the regularisers add to the training loss).

    Example:
        >>> weight_loss(model) > 0  # the LSTM kernel's L2 penalty
        True
    """
    loss = 0.0
    for _, var, (l1, l2) in _regularised(model):
        w = framework_for(model).to_numpy(var).astype(np.float64)
        loss += l1 * float(np.abs(w).sum()) + l2 * float(np.square(w).sum())
    return loss
