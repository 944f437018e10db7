"""The layers of ``flax.nnx`` modules, as :class:`LayerRef` records.

Recognised recurrent modules: ``nnx.RNN`` around an ``LSTMCell``, ``OptimizedLSTMCell``,
``GRUCell`` or ``SimpleCell``; ``nnx.Bidirectional`` of two such RNNs with the same kind of
cell; and those cells on their own. Each is one record named by its attribute path in the model
(``"encoder"``, ``"layers.0"``; ``"rnn"`` / ``"cell"`` for a bare module), its Linear layers
mapped to the canonical layout by :func:`canonical_from_flax`. Every other module with
parameters of its own becomes a generic record. Nothing here imports flax at module level.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from .._errors import UnsupportedError
from .._layouts import canonical_from_flax
from .._model import LayerInfo, LayerWeights, RNNWeights
from .._refs import LayerRef, ValueFn

__all__ = ["FlaxLayers", "cell_kind", "flax_path", "is_flax_class", "module_paths"]

CELLS = {
    "LSTMCell": "LSTM",
    "OptimizedLSTMCell": "LSTM",
    "GRUCell": "GRU",
    "SimpleCell": "SimpleRNN",
}
"""The ``flax.nnx`` cells rnnscope reads, and their canonical cell."""
_DENSE = {"LSTMCell": ("ii", "if_", "ig", "io", "hi", "hf", "hg", "ho")}
_FUSED = ("dense_i", "dense_h")
_JAX_ACTIVATIONS = (
    ("jax.nn", "sigmoid", "sigmoid"),
    ("jax.numpy", "tanh", "tanh"),
    ("jax.nn", "relu", "relu"),
    ("jax.nn", "relu6", "relu6"),
    ("jax.nn", "hard_sigmoid", "hard_sigmoid"),
    ("jax.nn", "hard_tanh", "hard_tanh"),
    ("jax.nn", "silu", "silu"),
    ("jax.nn", "softplus", "softplus"),
    ("jax.nn", "soft_sign", "softsign"),
    ("jax.nn", "elu", "elu"),
    ("jax.nn", "selu", "selu"),
)
"""jax functions whose numpy twin rnnscope has, under rnnscope's name (``jax.nn.gelu`` is not
among them: its default is the tanh approximation)."""


def is_flax_class(obj: Any, name: str) -> bool:
    """True if a class named ``name`` from ``flax.nnx`` is in ``type(obj)``'s MRO."""
    return any(
        k.__name__ == name and k.__module__.startswith("flax.nnx") for k in type(obj).__mro__
    )


def cell_kind(obj: Any) -> str | None:
    """The ``flax.nnx`` cell class ``obj`` is (or derives from), if rnnscope reads it."""
    return next((n for n in CELLS if is_flax_class(obj, n)), None)


def flax_path(path: tuple[Any, ...]) -> str:
    """A module's attribute path as a layer name: ``("layers", 0)`` is ``"layers.0"``."""
    return ".".join(str(p) for p in path)


def module_paths(model: Any) -> list[tuple[tuple[Any, ...], Any]]:
    """Every ``nnx.Module`` in ``model``'s graph with its path, parents before children, siblings
    in the order flax walks them."""
    nnx = importlib.import_module("flax.nnx")
    nodes = list(nnx.iter_graph(model))  # children before parents
    first: dict[tuple[Any, ...], int] = {}
    for k, (path, _) in enumerate(nodes):
        for n in range(1, len(path) + 1):
            first.setdefault(tuple(path[:n]), k)
    mods = [(tuple(p), m) for p, m in nodes if isinstance(m, nnx.Module)]
    return sorted(mods, key=lambda pm: tuple(first[pm[0][:n]] for n in range(1, len(pm[0]) + 1)))


def _activation(fn: Any) -> tuple[str, Callable[[np.ndarray], np.ndarray] | None]:
    """rnnscope's name for a jax activation, or a name and a numpy wrapper calling ``fn``."""
    for module, attr, name in _JAX_ACTIVATIONS:
        if fn is getattr(importlib.import_module(module), attr, None):
            return name, None
    jnp = importlib.import_module("jax.numpy")

    def wrapped(a: np.ndarray) -> np.ndarray:
        return np.asarray(fn(jnp.asarray(a)), dtype=a.dtype)

    return f"flax:{getattr(fn, '__name__', type(fn).__name__)}", wrapped


class FlaxLayers:
    """The layers of ``flax.nnx`` modules; ``to_numpy`` is the framework's conversion."""

    def __init__(self, to_numpy: ValueFn) -> None:
        self._to_numpy = to_numpy

    def _numpy(self, v: Any) -> np.ndarray:
        a = self._to_numpy(v)
        a.setflags(write=False)
        return a

    def layer_refs(self, obj: Any) -> list[LayerRef]:
        nnx = importlib.import_module("flax.nnx")
        refs: list[LayerRef] = []
        claimed: list[tuple[Any, ...]] = []
        for path, module in module_paths(obj):
            if any(path[: len(c)] == c for c in claimed):
                continue
            ref = self._recurrent_ref(module, path)
            if ref is not None:
                refs.append(ref)
                claimed.append(path)
                continue
            own = {k: v for k, v in vars(module).items() if isinstance(v, nnx.Param)}
            if own:
                refs.append(self._generic_ref(module, path, own))
        return refs

    # -- records -------------------------------------------------------------------------------
    def _generic_ref(self, module: Any, path: tuple[Any, ...], params: dict[str, Any]) -> LayerRef:
        kind = type(module).__name__
        name = flax_path(path) or kind
        shapes = {k: tuple(v.shape) for k, v in params.items()}
        info = LayerInfo(name, kind, shapes, recurrent=False)

        def build(value: ValueFn) -> LayerWeights:
            return LayerWeights(name, kind, {k: value(v) for k, v in params.items()})

        return LayerRef(info, partial(build, self._numpy), module, tuple(params.values()), build)

    def _recurrent_ref(self, module: Any, path: tuple[Any, ...]) -> LayerRef | None:
        """The record of a recognised RNN, Bidirectional or cell; None for anything else."""
        if is_flax_class(module, "Bidirectional"):
            rnns = {"forward": module.forward_rnn, "backward": module.backward_rnn}
            if not all(is_flax_class(r, "RNN") and cell_kind(r.cell) for r in rnns.values()):
                return None
            cells = {d: r.cell for d, r in rnns.items()}
            default = flax_path(path) or "bidirectional"
        elif is_flax_class(module, "RNN") and cell_kind(module.cell):
            cells, default = {"forward": module.cell}, flax_path(path) or "rnn"
        elif cell_kind(module):
            cells, default = {"forward": module}, flax_path(path) or "cell"
        else:
            return None
        name = default
        kinds = {d: cell_kind(c) for d, c in cells.items()}
        params = {
            (d, dense, w): getattr(getattr(c, dense), w)
            for d, c in cells.items()
            for dense in _DENSE.get(str(kinds[d]), _FUSED)
            for w in ("kernel", "bias")
            if getattr(getattr(c, dense), w, None) is not None
        }
        shapes = {
            "/".join(k) if len(cells) > 1 else "/".join(k[1:]): tuple(v.shape)
            for k, v in params.items()
        }
        problem = self._problem(module, cells, kinds)
        info = LayerInfo(name, type(module).__name__, shapes, recurrent=True)
        if problem is not None:

            def refuse() -> RNNWeights:
                raise UnsupportedError(
                    f"layer '{name}' ({type(module).__name__}): {problem}", layer=name
                )

            return LayerRef(info, refuse, module)
        build = partial(self._build, module, name, cells, kinds, params)
        return LayerRef(info, partial(build, self._numpy), module, tuple(params.values()), build)

    @staticmethod
    def _problem(module: Any, cells: dict[str, Any], kinds: dict[str, str | None]) -> str | None:
        """Why the module cannot be read as one canonical record, or None."""
        if len(set(kinds.values())) > 1:
            return (
                "its forward and backward RNNs have different cells "
                f"({kinds['forward']}, {kinds['backward']}); rnnscope reads a Bidirectional of "
                "two RNNs with the same kind of cell"
            )
        for d, c in cells.items():
            if getattr(c, "residual", False):
                return (
                    f"the {d} SimpleCell has residual=True (h' = act(x W_i + b + h W_h + h)); "
                    "rnnscope's SimpleRNN has no residual term, so it does not read this cell"
                )
        gates = {(getattr(c, "gate_fn", None), c.activation_fn) for c in cells.values()}
        if len(gates) > 1:
            return "its forward and backward cells use different activation functions"
        return None

    def _build(
        self,
        module: Any,
        name: str,
        cells: dict[str, Any],
        kinds: dict[str, str | None],
        params: dict[tuple[str, str, str], Any],
        value: ValueFn,
    ) -> RNNWeights:
        arrays: dict[tuple[str, str], np.ndarray] = {}
        for d in cells:
            dense: dict[str, dict[str, np.ndarray]] = {}
            for (dd, layer, w), v in params.items():
                if dd == d:
                    dense.setdefault(layer, {})[w] = value(v)
            kind = str(kinds[d])
            parts = canonical_from_flax(CELLS[kind], kind, dense)
            arrays.update({(p, d): a for p, a in parts.items()})
        first = cells["forward"]
        act, act_fn = _activation(first.activation_fn)
        gate_fn = getattr(first, "gate_fn", None)
        ract, ract_fn = _activation(gate_fn) if gate_fn is not None else ("sigmoid", None)
        fns = {n: f for n, f in ((act, act_fn), (ract, ract_fn)) if f is not None}
        settings: dict[str, Any] = {}
        if is_flax_class(module, "Bidirectional"):
            concat = importlib.import_module("flax.nnx.nn.recurrent")._concatenate
            settings["merge_mode"] = "concat" if module.merge_fn is concat else None
        elif is_flax_class(module, "RNN"):
            settings["go_backwards"] = bool(module.reverse)
        return RNNWeights.from_parts(
            name,
            CELLS[str(kinds["forward"])],
            arrays,
            kind=type(module).__name__,
            activation=act,
            recurrent_activation=ract,
            reset_after=True,
            source="flax",
            activation_fns=fns,
            **settings,
        )
