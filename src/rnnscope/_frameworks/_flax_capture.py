"""Capture for ``flax.nnx`` modules: outputs from one forward pass, gradients by ``nnx.grad``.

The model itself is never run nor changed: each pass runs on ``nnx.clone(model)``, put in eval
(or train) mode, whose chosen modules get, on the clone only, a subclass whose ``__call__``
records the output and adds a zero ``delta`` to it. The gradient with respect to that delta is
the gradient with respect to the output. Weight gradients are ``nnx.grad`` of the loss with
respect to the clone's ``nnx.Param`` state, matched to the model's parameters by path. The
model's random streams are not advanced (the clone's are).

An ``nnx.RNN`` or ``Bidirectional`` called with ``seq_lengths=`` marks the steps past each
length as masked: its output comes back as a ``numpy.ma.MaskedArray``, and :meth:`masks`
returns the mask.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .._errors import InputError, LayerError
from .._refs import LayerRef, ValueFn
from ._base import MaskRule, results, unique_variables
from ._flax_layers import cell_kind, is_flax_class, module_paths

__all__ = ["FlaxCapture"]

_SEQUENCE_MODULES = ("RNN", "Bidirectional")


def _sequence_module(module: Any) -> bool:
    return any(is_flax_class(module, n) for n in _SEQUENCE_MODULES)


class FlaxCapture:
    """Activations and gradients of ``flax.nnx`` models, on a clone of the model."""

    def __init__(self, to_numpy: ValueFn) -> None:
        self._to_numpy = to_numpy

    @property
    def nnx(self) -> Any:
        return importlib.import_module("flax.nnx")

    def _numpy(self, t: Any) -> np.ndarray:
        a = self._to_numpy(t)
        a.setflags(write=False)
        return a

    # -- the pass ------------------------------------------------------------------------------
    def _clone(self, model: Any, training: bool) -> Any:
        clone = self.nnx.clone(model)
        if training:
            clone.train()
        else:
            clone.eval()
        return clone

    @staticmethod
    def _patch(
        model: Any, clone: Any, refs: Sequence[LayerRef], sink: dict[str, Any], deltas: Any
    ) -> list[tuple[Any, type]]:
        """Give each chosen module of ``clone`` (found by its path in ``model``) a recording
        subclass; returns what to undo."""
        paths = {id(m): path for path, m in module_paths(model)}
        in_clone = dict(module_paths(clone))
        undo = []
        for ref in refs:
            target = in_clone.get(paths.get(id(ref.obj), ("?",)))
            if target is None:
                raise LayerError(
                    f"layer '{ref.info.name}' was not found in the model", layer=ref.info.name
                )
            klass = type(target)
            target.__class__ = _recording(klass, ref.info.name, sink, deltas)
            undo.append((target, klass))
        return undo

    def _forward(self, clone: Any, x: Any) -> Any:
        jnp = importlib.import_module("jax.numpy")

        def conv(a: Any) -> Any:
            return a if hasattr(a, "shape") and not isinstance(a, np.ndarray) else jnp.asarray(a)

        if isinstance(x, dict):
            return clone(**{k: conv(v) for k, v in x.items()})
        if isinstance(x, tuple):
            return clone(*(conv(v) for v in x))
        return clone(conv(x))

    def _run(self, model: Any, x: Any, refs: Sequence[LayerRef], training: bool) -> dict[str, Any]:
        sink: dict[str, Any] = {}
        clone = self._clone(model, training)
        self._patch(model, clone, refs, sink, None)
        self._forward(clone, x)
        self._check(refs, sink)
        return sink

    @staticmethod
    def _check(refs: Sequence[LayerRef], sink: dict[str, Any]) -> None:
        for r in refs:
            calls = sink.get(r.info.name, {}).get("calls", 0)
            if calls == 0:
                raise LayerError(
                    f"layer '{r.info.name}' was not called in the forward pass", layer=r.info.name
                )
            if calls > 1:
                raise LayerError(
                    f"layer '{r.info.name}' was called {calls} times in one forward pass; "
                    "rnnscope captures a module called once (a cell stepped by hand: wrap it "
                    "in nnx.RNN)",
                    layer=r.info.name,
                )

    def _output(self, rec: dict[str, Any], y: Any) -> np.ndarray:
        a = self._numpy(y)
        lengths = rec.get("seq_lengths")
        if lengths is None:
            return a
        n = np.asarray(lengths).reshape(-1)
        time_axis = 0 if rec["time_major"] else a.ndim - 2
        steps = a.shape[time_axis]
        m = np.arange(steps)[None, :] < n[:, None]  # (batch, time)
        if rec["time_major"]:
            m = m.T
        full = np.broadcast_to(~m[..., None], a.shape)
        return np.ma.MaskedArray(a, mask=full)

    # -- the Capture protocol ------------------------------------------------------------------
    def has_output(self, ref: LayerRef) -> bool:
        """Every module but a bare cell, whose output is one step per call: left out by default,
        refused with the reason when asked for by name."""
        return ref.obj is not None and cell_kind(ref.obj) is None

    def mask_rule(self, model: Any, ref: LayerRef) -> MaskRule:
        """Flax runs the cell over padded steps too; on a masked step rnnscope's ``h`` holds the
        carried state, which is what ``return_carry`` gives at the end."""
        return MaskRule("state", (), f"flax module {type(model).__name__}")

    def masks(
        self, model: Any, x: Any, refs: Sequence[LayerRef]
    ) -> Iterator[tuple[str, np.ndarray | None]]:
        """The mask of an RNN or Bidirectional called with ``seq_lengths=``; else None (a bare
        cell, stepped by hand, receives none)."""
        called = [r for r in refs if self.has_output(r)]
        sink = self._run(model, x, called, False) if called else {}
        for r in refs:
            if r not in called:
                yield r.info.name, None
                continue
            out = self._output(sink[r.info.name], sink[r.info.name]["y"])
            if not np.ma.isMaskedArray(out):
                yield r.info.name, None
                continue
            m = np.asarray(~np.ma.getmaskarray(out).all(axis=-1))
            yield r.info.name, (m.T if sink[r.info.name]["time_major"] else m)

    def activations(
        self, model: Any, x: Any, refs: Sequence[LayerRef], training: bool
    ) -> Iterator[tuple[str, np.ndarray]]:
        self._refuse_cells(refs)
        if not refs:
            return
        sink = self._run(model, x, refs, training)
        for r in refs:
            yield r.info.name, self._output(sink[r.info.name], sink[r.info.name]["y"])

    @staticmethod
    def _refuse_cells(refs: Sequence[LayerRef]) -> None:
        for r in refs:
            if cell_kind(r.obj) is not None:
                raise LayerError(
                    f"layer '{r.info.name}' is a bare {type(r.obj).__name__}: its output is one "
                    "step per call; rnnscope captures outputs and output gradients of nnx.RNN "
                    "and nnx.Bidirectional (and any other module called once). Trace the cell "
                    "with rnnscope.trace, or wrap it in nnx.RNN",
                    layer=r.info.name,
                )

    def _loss(self, loss: Any, pred: Any, y: Any, sw: Any) -> Any:
        jnp = importlib.import_module("jax.numpy")
        if loss is None or not callable(loss):
            raise InputError(
                "gradients of a flax model need loss=: a callable (prediction, target) of jax "
                f"arrays, such as lambda p, t: ((p - t) ** 2).mean(); got {loss!r}",
                argument="loss",
            )
        value = loss(pred, y)
        if sw is None:
            if jnp.ndim(value) != 0:
                raise InputError(
                    f"loss= returned an array of shape {jnp.shape(value)}; expected a scalar "
                    "(or one value per sample, with sample_weight=)",
                    argument="loss",
                )
            return value
        if jnp.ndim(value) == 0:
            raise InputError(
                "sample_weight needs a per-sample loss: the loss returned a scalar; pass a "
                "callable that returns one value per sample",
                argument="sample_weight",
            )
        per = jnp.reshape(value, (value.shape[0], -1)).mean(axis=1)
        w = jnp.reshape(jnp.asarray(sw, per.dtype), (-1,))
        return (per * w).sum() / per.shape[0]

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
        jax = importlib.import_module("jax")
        nnx = self.nnx
        if loss is None or not callable(loss):
            self._loss(loss, None, None, None)  # the message
        if not weights:
            self._refuse_cells(refs)
            if not refs:
                return
        clone = self._clone(model, training)
        y = y if hasattr(y, "shape") and not isinstance(y, np.ndarray) else jax.numpy.asarray(y)
        targets = [] if weights else list(refs)
        shapes: dict[str, Any] = {}
        probe: dict[str, Any] = {}
        if targets:  # the outputs' shapes, from a pass that computes nothing

            def shape_of(m: Any) -> None:
                self._patch(model, m, targets, probe, None)
                self._forward(m, x)

            nnx.eval_shape(shape_of, clone)
            self._check(targets, probe)
            shapes = {n: (rec["y"].shape, rec["y"].dtype) for n, rec in probe.items()}

        def objective(m: Any, deltas: dict[str, Any]) -> Any:
            sink: dict[str, Any] = {}
            undo = self._patch(model, m, targets, sink, deltas)
            try:
                value = self._loss(loss, self._forward(m, x), y, sw)
            finally:
                for obj, klass in undo:
                    obj.__class__ = klass
            return value, {n: rec.get("seq_lengths") for n, rec in sink.items()}

        zeros = {n: jax.numpy.zeros(s, d) for n, (s, d) in shapes.items()}
        step = nnx.jit(nnx.grad(objective, argnums=(0, 1), has_aux=True))
        (g_params, g_out), lengths = step(clone, zeros)
        sink = {
            n: {"seq_lengths": lengths[n], "time_major": probe[n]["time_major"]}
            for n in lengths
            if "time_major" in probe[n]
        }
        if not weights:
            arrays = [self._output(sink.get(r.info.name, {}), g_out[r.info.name]) for r in refs]
            yield from results(refs, refs, arrays, False)
            return
        flat = {tuple(p): v for p, v in nnx.to_flat_state(g_params)}
        variables = unique_variables(refs)
        paths = {id(v): tuple(p) for p, v in nnx.iter_graph(model) if isinstance(v, nnx.Variable)}
        arrays = []
        for v in variables:
            g = flat.get(paths.get(id(v), ()))
            arrays.append(np.zeros(v.shape, np.float32) if g is None else self._numpy(g))
        yield from results(refs, variables, arrays, True)


def _recording(klass: type, name: str, sink: dict[str, Any], deltas: Any) -> type:
    """A subclass of ``klass`` whose calls record their output (and add ``deltas[name]``)."""

    def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
        out = klass.__call__(self, *args, **kwargs)
        rec = sink.setdefault(name, {"calls": 0})
        rec["calls"] += 1
        carry = None
        if _sequence_module(self):
            rc = kwargs.get("return_carry")
            if rc if rc is not None else self.return_carry:
                carry, out = out
            rec["seq_lengths"] = kwargs.get("seq_lengths")
            tm = kwargs.get("time_major")
            rec["time_major"] = bool(self.time_major if tm is None else tm)
        if deltas is not None and name in deltas:
            out = out + deltas[name]
        rec["y"] = out
        return out if carry is None else (carry, out)

    return type(klass.__name__, (klass,), {"__call__": __call__, "__module__": klass.__module__})
