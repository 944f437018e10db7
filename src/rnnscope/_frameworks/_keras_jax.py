"""Gradients of Keras 3 models on the JAX backend, through ``stateless_call`` and ``jax.grad``.

The loss is a pure function of the trainable variables' values and of one zero probe per chosen
output (added to that output inside the patched ``call``). Its gradient with respect to a probe is
the gradient with respect to the output. The function is compiled with ``jax.jit`` once per model
and set of choices, and kept in a cache that holds the model weakly.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np

from .._refs import LayerRef
from ._base import results, unique_variables

__all__ = ["jax_gradients"]


class KerasCapture(Protocol):
    """What this module uses of ``_keras_capture.KerasCapture`` (named here, not imported)."""

    def patched(
        self, refs: Sequence[LayerRef], sink: dict[str, Any], probes: dict[str, Any] | None = None
    ) -> AbstractContextManager[None]: ...

    def require_compiled_loss(self, model: Any) -> None: ...

    def _missing(self, refs: Sequence[LayerRef], sink: dict[str, Any]) -> None: ...

    def _numpy(self, t: Any) -> np.ndarray: ...

    def _loss(
        self, model: Any, x: Any, y: Any, y_pred: Any, loss: Any, sw: Any, training: bool
    ) -> Any: ...

    def _masked_results(
        self,
        model: Any,
        x: Any,
        refs: Sequence[LayerRef],
        variables: Sequence[Any],
        arrays: list[Any],
        weights: bool,
    ) -> Iterator[tuple[str, Any]]: ...


_MAX_PER_MODEL = 8
_CACHE: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], Callable[..., Any]]] = (
    weakref.WeakKeyDictionary()
)


def _training(model: Any, training: bool) -> dict[str, bool]:
    """``training=`` for stateless_call, unless the model's ``call`` takes no such argument."""
    return {"training": training} if getattr(model, "_call_has_training_arg", True) else {}


def _loss_fn(
    cap: KerasCapture,
    model_ref: weakref.ref[Any],
    refs: Sequence[LayerRef],
    loss: Any,
    training: bool,
) -> Callable[..., Any]:
    def fn(
        tv: list[Any],
        probes: dict[str, Any],
        ntv: list[Any],
        mv: list[Any],
        x: Any,
        y: Any,
        sw: Any,
    ) -> Any:
        model = model_ref()
        assert model is not None, "the model was garbage-collected"
        sink: dict[str, Any] = {}
        with cap.patched(refs, sink, probes):
            y_pred, _ = model.stateless_call(tv, ntv, x, **_training(model, training))
        if loss is None:  # the compiled loss, checked present by jax_gradients
            value, _ = model.stateless_compute_loss(
                tv, ntv, mv, x=x, y=y, y_pred=y_pred, sample_weight=sw, training=training
            )
            return value
        return cap._loss(model, x, y, y_pred, loss, sw, training)

    return fn


def jax_gradients(
    cap: KerasCapture,
    model: Any,
    x: Any,
    y: Any,
    refs: Sequence[LayerRef],
    weights: bool,
    loss: Any,
    sw: Any,
    training: bool,
) -> Iterator[tuple[str, Any]]:
    import jax

    if loss is None:
        cap.require_compiled_loss(model)
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    mv = [v.value for v in model.metrics_variables]
    probes: dict[str, Any] = {}
    if not weights:  # shapes of the chosen outputs, from an abstract pass (no computation)
        sink: dict[str, Any] = {}

        def shapes(tv: list[Any]) -> Any:
            with cap.patched(refs, sink):
                return model.stateless_call(tv, ntv, x, **_training(model, training))

        jax.eval_shape(shapes, tv)
        cap._missing(refs, sink)
        probes = {n: jax.numpy.zeros(t.shape, t.dtype) for n, t in sink.items()}
    key = (tuple(r.info.name for r in refs), weights, training, id(loss), sw is None)
    per_model = _CACHE.setdefault(model, {})
    if key not in per_model:
        if len(per_model) >= _MAX_PER_MODEL:  # e.g. a new loss lambda on every call
            per_model.pop(next(iter(per_model)))
        fn = _loss_fn(cap, weakref.ref(model), refs, loss, training)
        per_model[key] = jax.jit(jax.grad(fn, argnums=(0, 1)))
    g_tv, g_probes = per_model[key](tv, probes, ntv, mv, x, y, sw)  # patches while it traces
    if weights:
        index = {id(v): k for k, v in enumerate(model.trainable_variables)}
        variables = unique_variables(refs)
        arrays = [  # non-trainable variables (batch-norm statistics) get zeros
            cap._numpy(g_tv[index[id(v)]] if id(v) in index else jax.numpy.zeros(v.shape))
            for v in variables
        ]
        yield from results(refs, variables, arrays, True)
    else:
        arrays = [cap._numpy(g_probes[r.info.name]) for r in refs]
        yield from cap._masked_results(model, x, refs, [], arrays, False)
