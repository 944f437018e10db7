"""Capture for Keras 3 (TensorFlow, JAX and torch backends) and tf-keras.

Outputs are captured by replacing the chosen layers' ``call`` on the instance for the duration of
one forward pass (the class method is untouched; the instance attribute is deleted afterwards).
TensorFlow and torch differentiate with respect to the captured tensors directly. JAX is
functional: there each chosen output gets a zero "probe" added, and ``jax.grad`` differentiates
with respect to the probes, which is the same derivative.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from .._errors import InputError, LayerError
from .._model import readonly
from .._refs import LayerRef, ValueFn
from ._base import MaskRule, results, unique_variables
from ._keras_layers import STACKED_KIND

__all__ = ["KerasCapture"]


def _first(out: Any) -> Any:
    return out[0] if isinstance(out, (list, tuple)) else out


def _class_names(obj: Any) -> list[str]:
    return [k.__name__ for k in type(obj).__mro__]


def _makes_mask(layer: Any) -> bool:
    """True for layers that start a mask: ``Masking``, ``Embedding(mask_zero=True)``, and
    layers of the user's own classes that define ``compute_mask``."""
    names = _class_names(layer)
    if "Masking" in names:
        return True
    if "Embedding" in names:
        return bool(getattr(layer, "mask_zero", False))
    return any(
        "compute_mask" in vars(k) and not k.__module__.startswith(("keras", "tf_keras"))
        for k in type(layer).__mro__
    )


def _call_passes_mask(model: Any) -> str:
    """Why a subclassed model's own ``call`` may give its layers a mask no static walk sees:
    a call in its body passes ``mask=`` something other than None. Empty when none does, or
    when the source cannot be read."""
    import ast
    import inspect
    import textwrap

    for klass in type(model).__mro__:
        if "call" not in vars(klass) or klass.__module__.startswith(("keras", "tf_keras")):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(vars(klass)["call"])))
        except (OSError, TypeError, SyntaxError):
            return ""
        for node in ast.walk(tree):
            given = [k.value for k in getattr(node, "keywords", ()) if k.arg == "mask"]
            if any(not (isinstance(v, ast.Constant) and v.value is None) for v in given):
                line = getattr(node, "lineno", 0)
                return f"{klass.__name__}.call passes mask= to a layer (line {line} of it)"
        return ""
    return ""


def _in_order(model: Any) -> Iterator[Any]:
    """Every layer inside ``model``, depth first, in the model's own order."""
    for layer in getattr(model, "layers", []) or []:
        yield layer
        if getattr(layer, "layers", None) and "Bidirectional" not in _class_names(layer):
            yield from _in_order(layer)


class KerasCapture:
    """Activations and gradients of Keras 3 or tf-keras models."""

    def __init__(self, framework: str, to_numpy: ValueFn) -> None:
        self.framework = framework
        self._to_numpy = to_numpy
        self.k = importlib.import_module(framework)
        self.backend = self.k.backend.backend() if framework == "keras" else "tensorflow"

    # -- plumbing ------------------------------------------------------------------------------
    def mask_rule(self, model: Any, ref: LayerRef) -> MaskRule:
        """What the layer outputs at masked steps, and the layers before it in ``model`` that
        start a mask (a mask passed inside a subclassed model's own ``call`` is not visible)."""
        layer = ref.obj
        inner = getattr(layer, "forward_layer", layer)
        zeros = bool(getattr(inner, "zero_output_for_mask", False))
        producers: list[str] = []
        if model is not layer:
            for sub in _in_order(model):
                if sub is layer:
                    break
                if _makes_mask(sub):
                    producers.append(f"'{sub.name}' ({type(sub).__name__})")
            else:
                producers = []  # not found in the walk: nothing known about its inputs
        name = f"{type(model).__name__} '{getattr(model, 'name', '?')}'"
        # Keras's JAX loop (not unrolled) outputs the carried state at a masked step, its
        # TensorFlow and torch loops the previous output (zeros before the first real step).
        scan = self.backend == "jax" and not getattr(inner, "unroll", False)
        carry = "state" if scan else "carry"
        hidden = "" if producers or model is layer else _call_passes_mask(model)
        return MaskRule("zeros" if zeros else carry, tuple(producers), name, hidden)

    @contextmanager
    def patched(
        self,
        refs: Sequence[LayerRef],
        sink: dict[str, Any],
        probes: dict[str, Any] | None = None,
        masks: dict[str, Any] | None = None,
    ) -> Iterator[None]:
        """Record each chosen layer's (first) output in ``sink``, and the ``mask`` it receives
        in ``masks``; add ``probes`` where given."""
        done: list[Any] = []
        try:
            for ref in refs:
                layer, name = ref.obj, ref.info.name
                original = layer.call

                def call(*args: Any, _orig: Any = original, _name: str = name, **kw: Any) -> Any:
                    if masks is not None:
                        masks[_name] = kw.get("mask")
                    out = _orig(*args, **kw)
                    first = _first(out)
                    if probes is not None and _name in probes:
                        first = first + probes[_name]
                        out = (
                            type(out)([first, *out[1:]])
                            if isinstance(out, (list, tuple))
                            else first
                        )
                    sink[_name] = first
                    return out

                object.__setattr__(layer, "call", call)  # past Keras's attribute tracking
                done.append(layer)
            yield
        finally:
            for layer in done:
                layer.__dict__.pop("call", None)

    def has_output(self, ref: LayerRef) -> bool:
        """Every Keras layer with weights has an output, except a cell of ``StackedRNNCells``
        (its outputs stay inside the RNN's loop)."""
        return ref.info.kind != STACKED_KIND

    def _need_outputs(self, refs: Sequence[LayerRef]) -> None:
        for r in refs:
            if not self.has_output(r):
                raise LayerError(
                    f"layer '{r.info.name}' is one cell of a StackedRNNCells: its output never "
                    "leaves the RNN's loop, so it cannot be captured; trace it with "
                    "rnnscope.trace (its input is the cell below's output), or take its weight "
                    "gradients (wrt='weights')",
                    layer=r.info.name,
                    argument="layers",
                )

    def _numpy(self, t: Any) -> np.ndarray:
        return readonly(self._to_numpy(t))

    def _tensors(self, data: Any) -> Any:
        if data is None:
            return None
        if self.framework == "keras":
            return self.k.tree.map_structure(self.k.ops.convert_to_tensor, data)
        tf = importlib.import_module("tensorflow")
        return tf.nest.map_structure(tf.convert_to_tensor, data)

    def _missing(self, refs: Sequence[LayerRef], sink: dict[str, Any]) -> None:
        lost = [r.info.name for r in refs if r.info.name not in sink]
        if lost:
            raise LayerError(
                f"layers {', '.join(lost)} were not called in the forward pass, so they have no "
                "output (layers used inside a loop or a custom call may not be reachable)"
            )

    # -- loss ----------------------------------------------------------------------------------
    def require_compiled_loss(self, model: Any) -> None:
        """Raise InputError when ``model`` has no compiled loss to fall back on."""
        if getattr(model, "loss", None) is None:
            raise InputError(
                f"model '{model.name}' has no compiled loss: compile it with a loss, or pass "
                "loss= (a loss name, a keras Loss or a callable (y_true, y_pred))"
            )

    def _loss(
        self, model: Any, x: Any, y: Any, y_pred: Any, loss: Any, sw: Any, training: bool
    ) -> Any:
        if loss is None:
            self.require_compiled_loss(model)
            kwargs = {"x": x, "y": y, "y_pred": y_pred, "sample_weight": sw}
            if self.framework == "keras":
                kwargs["training"] = training
            return model.compute_loss(**kwargs)
        fn = self.k.losses.get(loss) if isinstance(loss, str) else loss
        if isinstance(fn, self.k.losses.Loss):
            return fn(y, y_pred, sample_weight=sw)
        per = fn(y, y_pred)
        ops = self.k.ops if self.framework == "keras" else importlib.import_module("tensorflow")
        mean = ops.mean if self.framework == "keras" else ops.reduce_mean
        if sw is None:
            return mean(per)
        per = mean(ops.reshape(per, (ops.shape(per)[0], -1)), axis=1)
        return mean(per * ops.cast(ops.reshape(sw, (-1,)), per.dtype))

    # -- public work ---------------------------------------------------------------------------
    def activations(
        self, model: Any, x: Any, refs: Sequence[LayerRef], training: bool
    ) -> Iterator[tuple[str, np.ndarray]]:
        self._need_outputs(refs)
        sink: dict[str, Any] = {}
        masks: dict[str, Any] = {}
        with self.patched(refs, sink, masks=masks):
            model(x, training=training)
        self._missing(refs, sink)
        for r in refs:
            yield r.info.name, self._masked(self._numpy(sink[r.info.name]), masks.get(r.info.name))

    def masks(
        self, model: Any, x: Any, refs: Sequence[LayerRef]
    ) -> Iterator[tuple[str, np.ndarray | None]]:
        """``(layer name, mask it receives)`` of each ref, from one forward pass."""
        sink: dict[str, Any] = {}
        masks: dict[str, Any] = {}
        with self.patched(refs, sink, masks=masks):
            model(x, training=False)
        self._missing(refs, sink)
        for r in refs:
            m = masks.get(r.info.name)
            yield r.info.name, None if m is None else self._numpy(m).astype(bool)

    def _masked(self, a: np.ndarray, mask: Any) -> np.ndarray:
        """``a`` as a masked array over the mask's masked steps, when it has their time axis."""
        if mask is None:
            return a
        m = self._numpy(mask).astype(bool)
        if a.ndim < 2 or m.ndim != 2 or a.shape[:2] != m.shape:
            return a  # no time axis (return_sequences=False): nothing to mask
        full = np.broadcast_to(~m.reshape(m.shape + (1,) * (a.ndim - 2)), a.shape)
        return np.ma.MaskedArray(a, mask=full)

    def gradients(
        self,
        model: Any,
        x: Any,
        y: Any,
        refs: Sequence[LayerRef],
        weights: bool,
        loss: Any,
        sw: Any,
        training: bool,
    ) -> Iterator[tuple[str, Any]]:
        if not weights:
            self._need_outputs(refs)
        y, sw = self._tensors(y), self._tensors(sw)
        if self.backend == "jax":
            from ._keras_jax import jax_gradients

            yield from jax_gradients(self, model, x, y, refs, weights, loss, sw, training)
            return
        sink: dict[str, Any] = {}
        variables = unique_variables(refs)
        if self.backend == "tensorflow":
            tf = importlib.import_module("tensorflow")
            with tf.GradientTape() as tape:
                with self.patched(refs, sink):
                    y_pred = model(x, training=training)
                value = self._loss(model, x, y, y_pred, loss, sw, training)
            self._missing(refs, sink)
            targets = (
                [getattr(v, "value", v) if self.framework == "keras" else v for v in variables]
                if weights
                else [sink[r.info.name] for r in refs]
            )
            grads = tape.gradient(
                value, targets, unconnected_gradients=tf.UnconnectedGradients.ZERO
            )
        else:  # Keras 3 on torch
            torch = importlib.import_module("torch")
            with torch.enable_grad(), self.patched(refs, sink):
                y_pred = model(x, training=training)
                value = self._loss(model, x, y, y_pred, loss, sw, training)
            self._missing(refs, sink)
            targets = [v.value for v in variables] if weights else [sink[r.info.name] for r in refs]
            raw = torch.autograd.grad(value, targets, allow_unused=True)
            grads = [
                torch.zeros_like(t) if g is None else g for g, t in zip(raw, targets, strict=True)
            ]
        arrays = [self._numpy(g) for g in grads]
        yield from self._masked_results(model, x, refs, variables, arrays, weights)

    def _masked_results(
        self,
        model: Any,
        x: Any,
        refs: Sequence[LayerRef],
        variables: Sequence[Any],
        arrays: list[Any],
        weights: bool,
    ) -> Iterator[tuple[str, Any]]:
        """:func:`results`, output gradients masked where their layer receives a mask (found
        by a second, plain forward pass, only for models with a mask-making layer)."""
        if not weights and any(_makes_mask(s) for s in _in_order(model)):
            masks = dict(self.masks(model, x, refs))
            arrays = [
                self._masked(a, masks[r.info.name]) for r, a in zip(refs, arrays, strict=True)
            ]
        yield from results(refs, variables, arrays, weights)
