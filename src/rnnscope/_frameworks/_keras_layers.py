"""The layers of Keras 3 (every backend) and tf-keras (legacy Keras 2) models, as refs.

Both frameworks keep the canonical layout already (kernel ``(in, n*units)``, gates i,f,c,o and
z,r,h); this module only names things, splits the GRU's two-row bias and converts tf-keras's
CuDNN layers. Layer kinds are recognised by class names in the MRO, so subclasses work and the
walk imports nothing beyond the framework module already loaded.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from .._activations import ACTIVATIONS, canonical_name
from .._layouts import (
    CONVLSTM_KINDS,
    canonical_from_cudnn,
    canonical_from_keras,
    convlstm_gate_blocks,
)
from .._model import LayerInfo, LayerWeights, RNNWeights, readonly
from .._refs import LayerRef, ValueFn

__all__ = ["STACKED_KIND", "KerasLayers"]

_CELLS = {"LSTMCell": "LSTM", "GRUCell": "GRU", "SimpleRNNCell": "SimpleRNN"}
_CUDNN = {"CuDNNLSTM": "LSTM", "CuDNNGRU": "GRU"}


def _class_names(obj: Any) -> list[str]:
    return [k.__name__ for k in type(obj).__mro__]


def _cell_kind(cell: Any) -> str | None:
    for n in _class_names(cell):
        if n in _CELLS:
            return _CELLS[n]
    return None


STACKED_KIND = "StackedRNNCells"
"""The kind of each cell of a ``keras.layers.RNN`` over ``StackedRNNCells``, one layer per cell."""


def _stacked_cells(layer: Any) -> list[Any] | None:
    """The cells of an RNN over ``StackedRNNCells`` when rnnscope reads each one, else None."""
    cell = getattr(layer, "cell", None)
    if cell is None or "StackedRNNCells" not in _class_names(cell):
        return None
    cells = list(getattr(cell, "cells", []))
    return cells if cells and all(_cell_kind(c) is not None for c in cells) else None


class _OneCell:
    """A cell of a stack seen as a one-cell layer: what :meth:`KerasLayers._rnn_ref` reads."""

    def __init__(self, cell: Any) -> None:
        self.cell = cell
        self.weights = cell.weights
        self.trainable_weights = cell.trainable_weights


def _same_directions(layer: Any) -> bool:
    """True when a Bidirectional's two directions are the same kind of cell, same settings."""
    f, b = layer.forward_layer, layer.backward_layer
    # tf-keras's CuDNN layers make a new cell class per instance: compare the layers instead.
    cudnn = any(n in _CUDNN for n in _class_names(f))
    fc, bc = (f, b) if cudnn else (getattr(f, "cell", f), getattr(b, "cell", b))
    if type(fc) is not type(bc):
        return False
    keys = ("units", "activation", "recurrent_activation", "use_bias", "reset_after")
    return all(getattr(fc, k, None) == getattr(bc, k, None) for k in keys)


def _short(v: Any) -> str:
    """A variable's own name: ``kernel`` from tf-keras's ``lstm/lstm_cell/kernel:0``."""
    return str(v.name).rsplit("/", 1)[-1].split(":", 1)[0]


class KerasLayers:
    """The layers of ``keras`` (Keras 3) or ``tf_keras`` objects; ``to_numpy`` is the
    framework's conversion."""

    def __init__(self, framework: str, to_numpy: ValueFn) -> None:
        self.framework = framework
        self._mod = importlib.import_module(framework)
        self._to_numpy = to_numpy

    def layer_refs(self, obj: Any) -> list[LayerRef]:
        refs: list[LayerRef] = []
        self._walk(obj, "", refs, top=True)
        return refs

    # -- walking -------------------------------------------------------------------------------
    def _sublayers(self, layer: Any) -> list[Any]:
        flatten = getattr(layer, "_flatten_layers", None)
        if flatten is None:
            return []
        return [s for s in flatten(include_self=False, recursive=False)]

    def _own_variables(self, layer: Any) -> list[Any]:
        if self.framework == "keras":
            return list(layer._trainable_variables) + list(layer._non_trainable_variables)
        return list(layer._trainable_weights) + list(layer._non_trainable_weights)

    def _walk(self, layer: Any, prefix: str, refs: list[LayerRef], top: bool = False) -> None:
        names = _class_names(layer)
        path = f"{prefix}{layer.name}"
        if "Bidirectional" in names and not _same_directions(layer):
            kind = "Bidirectional (directions differ)"
            refs.append(self._generic_ref(layer, path, list(layer.weights), kind))
            return
        if "Bidirectional" in names and _stacked_cells(layer.forward_layer) is not None:
            kind = "Bidirectional (stacked cells: not split into gates)"
            refs.append(self._generic_ref(layer, path, list(layer.weights), kind))
            return
        conv = next((n for n in names if n in CONVLSTM_KINDS), None)
        if conv is not None:
            if layer.weights:
                refs.append(self._convlstm_ref(layer, path, conv))
            return
        cells = _stacked_cells(layer) if "RNN" in names else None
        if cells is not None:
            if layer.weights:
                for k, c in enumerate(cells):
                    # cells after the first read the cell below's outputs in processing order
                    back = bool(getattr(layer, "go_backwards", False)) and k == 0
                    refs.append(self._rnn_ref(layer, f"{path}/cell_{k}", _OneCell(c), back))
            return
        if (
            "Bidirectional" in names
            or any(n in _CUDNN for n in names)
            or ("RNN" in names and _cell_kind(getattr(layer, "cell", None)) is not None)
        ):
            if layer.weights:
                refs.append(self._rnn_ref(layer, path))
            return
        subs = self._sublayers(layer)
        own = self._own_variables(layer) if subs else list(layer.weights)
        if own:
            refs.append(self._generic_ref(layer, path, own))
        # The object the user passed is walked without its own name as a prefix.
        sub_prefix = "" if top else f"{path}/"
        for s in subs:
            self._walk(s, sub_prefix, refs)

    # -- records -------------------------------------------------------------------------------
    def _numpy(self, v: Any) -> np.ndarray:
        return readonly(self._to_numpy(v))

    def _generic_ref(self, layer: Any, path: str, variables: list[Any], kind: str = "") -> LayerRef:
        keys: list[str] = []
        for v in variables:
            k, n = _short(v), 1
            while k in keys:
                n += 1
                k = f"{_short(v)}_{n}"
            keys.append(k)
        shapes = {k: tuple(int(d) for d in v.shape) for k, v in zip(keys, variables, strict=True)}
        kind = kind or type(layer).__name__
        if not kind.startswith("Bidirectional") and "RNN" in _class_names(layer):
            kind = f"{kind}({type(getattr(layer, 'cell', None)).__name__})"
        info = LayerInfo(path, kind, shapes, recurrent=False)

        def build(value: ValueFn) -> LayerWeights:
            return LayerWeights(
                path, kind, {k: value(v) for k, v in zip(keys, variables, strict=True)}
            )

        return LayerRef(info, lambda: build(self._numpy), layer, tuple(variables), build)

    def _convlstm_ref(self, layer: Any, path: str, kind: str) -> LayerRef:
        """A ConvLSTM layer: its weights as named per-gate blocks (``kernel/forget``, ...)."""
        cell = layer.cell
        roles = [("kernel", cell.kernel), ("recurrent_kernel", cell.recurrent_kernel)]
        if getattr(cell, "bias", None) is not None:
            roles.append(("bias", cell.bias))
        shapes = {r: tuple(int(d) for d in v.shape) for r, v in roles}
        info = LayerInfo(path, kind, shapes, recurrent=False)
        variables = tuple(v for _, v in roles)

        def build(value: ValueFn) -> LayerWeights:
            parts = {r: value(v) for r, v in roles}
            return LayerWeights(path, kind, convlstm_gate_blocks(parts, name=path))

        return LayerRef(info, lambda: build(self._numpy), layer, variables, build)

    def _rnn_ref(
        self, layer: Any, path: str, one: _OneCell | None = None, go_backwards: bool = False
    ) -> LayerRef:
        """The ref of a recurrent layer, or of one cell ``one`` of a stack in ``layer``."""
        names = _class_names(layer)
        if one is not None:
            pairs: list[tuple[str, Any]] = [("forward", one)]
        elif "Bidirectional" in names:
            pairs = [("forward", layer.forward_layer), ("backward", layer.backward_layer)]
        else:
            pairs = [("forward", layer)]
        shapes: dict[str, tuple[int, ...]] = {}
        for d, sub in pairs:
            for v in sub.weights:
                key = f"{d}/{_short(v)}" if len(pairs) == 2 else _short(v)
                shapes[key] = tuple(int(s) for s in v.shape)
        kind = STACKED_KIND if one is not None else type(layer).__name__
        info = LayerInfo(path, kind, shapes, recurrent=True)
        variables = tuple(v for _, sub in pairs for v in sub.trainable_weights)
        back = go_backwards if one is not None else None

        def build(value: ValueFn) -> RNNWeights:
            return self._rnn_weights(layer, path, pairs, value, back)

        return LayerRef(info, lambda: build(self._numpy), layer, variables, build)

    def _rnn_weights(
        self,
        layer: Any,
        path: str,
        pairs: list[tuple[str, Any]],
        value: ValueFn,
        stacked_backwards: bool | None = None,
    ) -> RNNWeights:
        """The record of ``layer``; ``stacked_backwards`` is set (a bool) for a stacked cell."""
        first = pairs[0][1]
        cudnn = next((_CUDNN[n] for n in _class_names(first) if n in _CUDNN), None)
        cell_obj = first if cudnn else first.cell
        cell = cudnn or _cell_kind(cell_obj)
        assert cell is not None
        arrays: dict[tuple[str, str], np.ndarray] = {}
        for d, sub in pairs:
            src = sub if cudnn else sub.cell
            kernel, rec = value(src.kernel), value(src.recurrent_kernel)
            bias = value(src.bias) if getattr(src, "bias", None) is not None else None
            if cudnn:
                assert bias is not None
                parts = canonical_from_cudnn(cell, kernel, rec, bias, name=path)
            else:
                parts = canonical_from_keras(cell, kernel, rec, bias, name=path)
            arrays.update({(p, d): a for p, a in parts.items()})
        fns: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
        if cudnn:
            act, ract = "tanh", ("sigmoid" if cell != "SimpleRNN" else None)
        else:
            act = self._activation(cell_obj.activation, fns)
            ract = (
                self._activation(cell_obj.recurrent_activation, fns)
                if cell != "SimpleRNN"
                else None
            )
        reset_after = True if cudnn else getattr(cell_obj, "reset_after", None)
        go_backwards = bool(getattr(layer, "go_backwards", False)) if len(pairs) == 1 else False
        return RNNWeights.from_parts(
            path,
            cell,
            arrays,
            kind=type(layer).__name__ if stacked_backwards is None else STACKED_KIND,
            activation=act,
            recurrent_activation=ract,
            reset_after=reset_after,
            merge_mode=getattr(layer, "merge_mode", None) if len(pairs) == 2 else None,
            go_backwards=go_backwards if stacked_backwards is None else stacked_backwards,
            source=self.framework,
            activation_fns=fns,
        )

    def _activation(self, fn: Any, fns: dict[str, Callable[[np.ndarray], np.ndarray]]) -> str:
        """The data-model name of a Keras activation; custom ones are wrapped for numpy."""
        if fn is None:
            return "linear"
        name = getattr(fn, "__name__", type(fn).__name__)
        try:
            builtin = self._mod.activations.get(name) is fn
        except (ValueError, TypeError):
            builtin = False
        if builtin:
            if self.framework == "tf_keras" and name == "hard_sigmoid":
                return "hard_sigmoid_keras2"
            key = canonical_name(name)
            if key in ACTIVATIONS:
                return key
        else:
            name = f"custom:{getattr(fn, '__qualname__', name)}"
        fns[name] = self._wrap(fn)
        return name

    def _wrap(self, fn: Any) -> Callable[[np.ndarray], np.ndarray]:
        if self.framework == "keras":
            ops = self._mod.ops

            def call(a: np.ndarray) -> np.ndarray:
                return self._to_numpy(fn(ops.convert_to_tensor(a)))

            return call
        tf = importlib.import_module("tensorflow")

        def call_tf(a: np.ndarray) -> np.ndarray:
            return self._to_numpy(fn(tf.constant(a)))

        return call_tf
