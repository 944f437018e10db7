"""The torch framework's layers, as :class:`LayerRef` records: ``nn.LSTM`` / ``nn.GRU`` /
``nn.RNN`` (stacked, bidirectional, projected), their single-step cells, and any module
containing them.

A stacked RNN with ``num_layers=L`` becomes ``L`` records named ``<path>.l0`` ... ``<path>.l{L-1}``
(``l0`` ... for a bare module). Every other module with parameters of its own becomes a generic
record.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from .._errors import UnsupportedError
from .._layouts import TORCH_ROLES, canonical_from_torch, torch_stacked_key
from .._model import LayerInfo, LayerWeights, RNNWeights, readonly
from .._refs import LayerRef, ValueFn

__all__ = ["TorchLayers"]

_MODES = {"LSTM": "LSTM", "GRU": "GRU", "RNN_TANH": "SimpleRNN", "RNN_RELU": "SimpleRNN"}
_CELL_CLASSES = {"LSTMCell": "LSTM", "GRUCell": "GRU", "RNNCell": "SimpleRNN"}


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class TorchLayers:
    """The layers of ``torch.nn.Module`` objects; ``to_numpy`` is the framework's conversion."""

    def __init__(self, to_numpy: ValueFn) -> None:
        self._to_numpy = to_numpy

    def _numpy(self, t: Any) -> np.ndarray:
        return readonly(self._to_numpy(t))

    def layer_refs(self, obj: Any) -> list[LayerRef]:
        refs: list[LayerRef] = []
        for path, module in obj.named_modules():
            kind = type(module).__name__
            mode = getattr(module, "mode", None)
            if mode in _MODES and hasattr(module, "num_layers"):
                refs.extend(self._stacked_refs(module, path, _MODES[mode]))
                continue
            cell = next(
                (
                    _CELL_CLASSES[k.__name__]
                    for k in type(module).__mro__
                    if k.__name__ in _CELL_CLASSES and k.__module__.startswith("torch")
                ),
                None,
            )
            if cell is not None:
                refs.append(self._cell_ref(module, path or "cell", cell))
                continue
            own = dict(module.named_parameters(recurse=False))
            if own:
                refs.append(self._generic_ref(path or kind, kind, own, module))
        return refs

    # -- records -------------------------------------------------------------------------------
    def _generic_ref(self, path: str, kind: str, params: dict[str, Any], module: Any) -> LayerRef:
        shapes = {k: tuple(v.shape) for k, v in params.items()}
        info = LayerInfo(path, kind, shapes, recurrent=False)

        def build(value: ValueFn) -> LayerWeights:
            return LayerWeights(path, kind, {k: value(v) for k, v in params.items()})

        return LayerRef(info, lambda: build(self._numpy), module, tuple(params.values()), build)

    def _stacked_refs(self, module: Any, path: str, cell: str) -> list[LayerRef]:
        directions = ("forward", "backward") if module.bidirectional else ("forward",)
        refs = []
        for k in range(module.num_layers):
            name = _join(path, f"l{k}")
            keys = [torch_stacked_key(w, k, d) for d in directions for w in TORCH_ROLES]
            params = {key: getattr(module, key) for key in keys if hasattr(module, key)}
            if torch_stacked_key("weight_ih", k, "forward") not in params:  # e.g. packed weights
                refs.append(self._unreadable(module, name))
                continue
            shapes = {key: tuple(p.shape) for key, p in params.items()}
            info = LayerInfo(name, type(module).__name__, shapes, recurrent=True)
            build = self._builder(module, name, cell, k, directions)
            variables = tuple(params.values())
            refs.append(LayerRef(info, partial(build, self._numpy), (module, k), variables, build))
        return refs

    def _unreadable(self, module: Any, name: str) -> LayerRef:
        kind = f"{type(module).__module__.rsplit('.', 1)[-1]}.{type(module).__name__}"

        def extract() -> RNNWeights:
            raise UnsupportedError(
                f"layer '{name}' ({kind}) keeps no weight_ih/weight_hh tensors (quantized or "
                "packed weights); rnnscope reads float torch RNN modules"
            )

        return LayerRef(LayerInfo(name, kind, {}, recurrent=False), extract)

    def _builder(
        self, module: Any, name: str, cell: str, k: int, directions: tuple[str, ...]
    ) -> Callable[[ValueFn], RNNWeights]:
        def build(value: ValueFn) -> RNNWeights:
            arrays: dict[tuple[str, str], np.ndarray] = {}
            for d in directions:

                def get(w: str, d: str = d) -> np.ndarray | None:
                    t = getattr(module, torch_stacked_key(w, k, d), None)
                    return None if t is None else value(t)

                w_ih, w_hh = get("weight_ih"), get("weight_hh")
                assert w_ih is not None and w_hh is not None
                parts = canonical_from_torch(
                    cell, w_ih, w_hh, get("bias_ih"), get("bias_hh"), get("weight_hr")
                )
                arrays.update({(p, d): a for p, a in parts.items()})
            return self._record(module, name, cell, arrays)

        return build

    def _cell_ref(self, module: Any, path: str, cell: str) -> LayerRef:
        params = dict(module.named_parameters(recurse=False))
        shapes = {key: tuple(v.shape) for key, v in params.items()}
        info = LayerInfo(path, type(module).__name__, shapes, recurrent=True)

        def build(value: ValueFn) -> RNNWeights:
            def get(w: str) -> np.ndarray | None:
                return value(params[w]) if w in params else None

            w_ih, w_hh = get("weight_ih"), get("weight_hh")
            assert w_ih is not None and w_hh is not None
            parts = canonical_from_torch(cell, w_ih, w_hh, get("bias_ih"), get("bias_hh"))
            return self._record(module, path, cell, {(p, "forward"): a for p, a in parts.items()})

        return LayerRef(info, partial(build, self._numpy), module, tuple(params.values()), build)

    def _record(
        self,
        module: Any,
        name: str,
        cell: str,
        arrays: dict[tuple[str, str], np.ndarray],
    ) -> RNNWeights:
        nonlinearity = getattr(module, "nonlinearity", "tanh")
        if getattr(module, "mode", "") == "RNN_RELU":
            nonlinearity = "relu"
        return RNNWeights.from_parts(
            name,
            cell,
            arrays,
            kind=type(module).__name__,
            activation=nonlinearity if cell == "SimpleRNN" else "tanh",
            recurrent_activation="sigmoid",
            reset_after=True,
            proj_size=(getattr(module, "proj_size", 0) or None),
            source="torch",
        )
