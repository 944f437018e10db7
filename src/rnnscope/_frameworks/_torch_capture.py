"""Capture for torch modules: forward hooks for outputs, ``torch.autograd.grad`` for gradients.

Nothing is left on the model: hooks are removed and every submodule's train/eval flag restored in
``finally``; gradients come from ``torch.autograd.grad``, so parameters' ``.grad`` stay untouched.
A stacked RNN module shows hooks only its top layer's output, so ``<module>.l{L-1}`` has an output
and lower stacked layers do not (their weight gradients are available).

cuDNN's RNN backward only runs in training mode: for RNN modules on a GPU asked for gradients in
eval mode, those modules are switched to training mode with inter-layer dropout set to 0 for the
pass (so the numbers are eval-mode numbers), then restored.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import numpy as np

from .._errors import InputError, LayerError
from .._model import readonly
from .._refs import LayerRef, ValueFn
from ._base import results, unique_variables

__all__ = ["TorchCapture"]


def _is_rnn(module: Any) -> bool:
    return hasattr(module, "num_layers") and getattr(module, "mode", None) in (
        "LSTM",
        "GRU",
        "RNN_TANH",
        "RNN_RELU",
    )


def _hook_target(ref: LayerRef) -> Any:
    """The module whose output is this layer's output, or None (a lower stacked layer)."""
    if isinstance(ref.obj, tuple):
        module, k = ref.obj
        return module if k == module.num_layers - 1 else None
    return ref.obj


class TorchCapture:
    """Activations and gradients of torch modules."""

    def __init__(self, to_numpy: ValueFn) -> None:
        import torch

        self.torch = torch
        self._to_numpy = to_numpy

    @contextmanager
    def _mode(self, model: Any, training: bool, backward: bool) -> Iterator[None]:
        saved = [(m, m.training, m.dropout if _is_rnn(m) else None) for m in model.modules()]
        try:
            model.train(training)
            if backward and not training:
                for m in model.modules():
                    if _is_rnn(m) and any(p.is_cuda for p in m.parameters()):
                        m.train(True)  # cuDNN RNN backward needs training mode ...
                        m.dropout = 0.0  # ... without its dropout
            yield
        finally:
            for m, flag, dropout in saved:
                m.training = flag
                if dropout is not None:
                    m.dropout = dropout

    @contextmanager
    def _hooks(self, refs: Sequence[LayerRef], sink: dict[str, Any]) -> Iterator[None]:
        with ExitStack() as stack:
            for ref in refs:
                target = _hook_target(ref)
                if target is None:
                    continue

                def hook(module: Any, args: Any, out: Any, _name: str = ref.info.name) -> None:
                    sink[_name] = out[0] if isinstance(out, (tuple, list)) else out

                stack.callback(target.register_forward_hook(hook).remove)
            yield

    def _inputs(self, model: Any, data: Any) -> Any:
        torch = self.torch
        p = next(model.parameters(), None)
        device = p.device if p is not None else "cpu"

        def conv(a: Any) -> Any:
            if isinstance(a, torch.Tensor):
                return a.to(device)
            arr = np.asarray(a)
            t = torch.from_numpy(np.ascontiguousarray(arr)).to(device)
            return t.to(p.dtype) if p is not None and arr.dtype.kind == "f" else t

        if isinstance(data, dict):
            return {k: conv(v) for k, v in data.items()}
        if isinstance(data, (list, tuple)):
            return type(data)(conv(v) for v in data)
        return conv(data)

    def _forward(self, model: Any, x: Any) -> Any:
        x = self._inputs(model, x)
        if isinstance(x, dict):
            return model(**x)
        if isinstance(x, tuple):
            return model(*x)
        return model(x)

    def _check(self, refs: Sequence[LayerRef], sink: dict[str, Any]) -> None:
        for r in refs:
            if r.info.name in sink:
                continue
            if _hook_target(r) is None:
                module, _ = r.obj
                raise LayerError(
                    f"layer '{r.info.name}' is a lower layer of a stacked {type(module).__name__} "
                    f"(num_layers={module.num_layers}); torch only exposes the top layer's output "
                    f"(l{module.num_layers - 1}). Use wrt='weights', or rnnscope.trace for this "
                    "layer's gates"
                )
            raise LayerError(f"layer '{r.info.name}' was not called in the forward pass")

    def has_output(self, ref: LayerRef) -> bool:
        """False for lower layers of a stacked RNN module."""
        return _hook_target(ref) is not None

    def _numpy(self, t: Any) -> np.ndarray:
        return readonly(self._to_numpy(t))

    def activations(
        self, model: Any, x: Any, refs: Sequence[LayerRef], training: bool
    ) -> Iterator[tuple[str, np.ndarray]]:
        sink: dict[str, Any] = {}
        with self._mode(model, training, False), self._hooks(refs, sink), self.torch.no_grad():
            self._forward(model, x)
        self._check(refs, sink)
        for r in refs:
            yield r.info.name, self._numpy(sink[r.info.name])

    def _loss(self, loss: Any, pred: Any, y: Any, sw: Any) -> Any:
        if loss is None:
            raise InputError(
                "gradients of a torch model need loss=: a callable (prediction, target) such as "
                "torch.nn.MSELoss()"
            )
        if isinstance(pred, (tuple, list)):  # (output, state) and the like: the loss sees output
            pred = pred[0]
        if sw is None:
            return loss(pred, y)
        w = sw.reshape(-1).to(pred.dtype)
        reduction = getattr(loss, "reduction", None)
        if reduction is not None:
            loss.reduction = "none"
            try:
                per = loss(pred, y)
            finally:
                loss.reduction = reduction
        else:
            per = loss(pred, y)
        if per.dim() == 0:
            raise InputError(
                "sample_weight needs a per-sample loss: the loss returned a scalar; pass a torch "
                "loss module (its reduction is set to 'none' for the call) or a callable that "
                "returns one value per sample"
            )
        per = per.reshape(per.shape[0], -1).mean(dim=1)
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
        torch = self.torch
        sink: dict[str, Any] = {}
        y, sw = self._inputs(model, y), None if sw is None else self._inputs(model, sw)
        with self._mode(model, training, True), self._hooks(refs, sink), torch.enable_grad():
            value = self._loss(loss, self._forward(model, x), y, sw)
        if not weights:
            self._check(refs, sink)
            targets = [sink[r.info.name] for r in refs]
        else:
            targets = unique_variables(refs)
        raw = torch.autograd.grad(value, targets, allow_unused=True)
        arrays = [
            self._numpy(torch.zeros_like(t) if g is None else g)
            for g, t in zip(raw, targets, strict=True)
        ]
        yield from results(refs, targets, arrays, weights)
