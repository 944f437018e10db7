"""Capture for torch modules: forward hooks for outputs, ``torch.autograd.grad`` for gradients.

Nothing is left on the model: hooks are removed and every submodule's train/eval flag restored in
``finally``; gradients come from ``torch.autograd.grad``, so parameters' ``.grad`` stay untouched.
A stacked RNN module shows hooks only its top layer's output. When a lower layer
(``<module>.l0`` ...) is chosen, the module's ``forward`` is replaced on the instance, for the
one pass, by a layer-by-layer run: each layer is a one-layer module of the same kind called with
``torch.func.functional_call`` on the stacked module's own parameters (so autograd reaches them),
with the module's inter-layer dropout between layers. ``PackedSequence`` outputs come back
padded, as ``numpy.ma.MaskedArray`` with the padding masked.

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
from ._base import MaskRule, results, unique_variables

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


def _is_packed(x: Any) -> bool:
    return type(x).__name__ == "PackedSequence" and hasattr(x, "batch_sizes")


def _first(out: Any) -> Any:
    if _is_packed(out):
        return out
    return out[0] if isinstance(out, (tuple, list)) else out


def _twin(module: Any, k: int) -> Any:
    """A one-layer module of ``module``'s kind and settings, shaped like its layer ``k``."""
    import torch

    directions = 2 if module.bidirectional else 1
    size = module.input_size if k == 0 else directions * (module.proj_size or module.hidden_size)
    kw: dict[str, Any] = {
        "num_layers": 1,
        "bias": module.bias,
        "batch_first": module.batch_first,
        "bidirectional": module.bidirectional,
    }
    if module.mode == "LSTM":
        kw["proj_size"] = module.proj_size
    if module.mode in ("RNN_TANH", "RNN_RELU"):
        kw["nonlinearity"] = "tanh" if module.mode == "RNN_TANH" else "relu"
    p = module.weight_ih_l0
    kind = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}.get(module.mode, torch.nn.RNN)
    with torch.device("meta"):
        twin = kind(size, module.hidden_size, **kw)
    return twin.to_empty(device=p.device).to(p.dtype)


def _layer_params(module: Any, k: int) -> dict[str, Any]:
    """Layer ``k``'s parameters of ``module`` under a one-layer module's names."""
    out = {}
    for name in module._flat_weights_names:
        if name.split("_l", 1)[1].split("_", 1)[0] == str(k):
            out[name.replace(f"_l{k}", "_l0", 1)] = getattr(module, name)
    return out


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
    def _hooks(
        self, refs: Sequence[LayerRef], sink: dict[str, Any], inputs: dict[str, Any] | None = None
    ) -> Iterator[None]:
        """Record each ref's output in ``sink`` (and its first input in ``inputs``); lower
        layers of a stacked module through a layer-by-layer ``forward`` for the pass."""
        with ExitStack() as stack:
            lower: dict[int, tuple[Any, dict[int, str]]] = {}
            for ref in refs:
                target = _hook_target(ref)
                if target is None:
                    module, k = ref.obj
                    lower.setdefault(id(module), (module, {}))[1][k] = ref.info.name
                    continue

                def hook(module: Any, args: Any, out: Any, _name: str = ref.info.name) -> None:
                    sink[_name] = _first(out)
                    if inputs is not None:
                        inputs[_name] = args[0] if args else None

                stack.callback(target.register_forward_hook(hook).remove)
            for module, names in lower.values():
                object.__setattr__(module, "forward", self._layered(module, names, sink, inputs))
                stack.callback(module.__dict__.pop, "forward", None)
            yield

    def _layered(
        self, module: Any, names: dict[int, str], sink: dict[str, Any], inputs: Any
    ) -> Any:
        """A ``forward`` for ``module`` that runs its layers one by one and records the
        outputs of those in ``names``; same arguments and results as the module's own."""
        torch = self.torch
        from torch.func import functional_call
        from torch.nn.utils.rnn import PackedSequence

        twins = [_twin(module, 0), _twin(module, 1)] if module.num_layers > 1 else []
        directions = 2 if module.bidirectional else 1

        def forward(x: Any, hx: Any = None) -> Any:
            lstm = module.mode == "LSTM"
            out, finals = x, []
            for k in range(module.num_layers):
                sl = slice(k * directions, (k + 1) * directions)
                h_k = None if hx is None else ((hx[0][sl], hx[1][sl]) if lstm else hx[sl])
                if k in names and inputs is not None:
                    inputs[names[k]] = out
                twin = twins[min(k, 1)]
                out, state = functional_call(twin, _layer_params(module, k), (out, h_k))
                if k in names:
                    sink[names[k]] = out
                finals.append(state)
                if k < module.num_layers - 1 and module.dropout and module.training:
                    if isinstance(out, PackedSequence):
                        data = torch.nn.functional.dropout(out.data, module.dropout, True)
                        out = out._replace(data=data)
                    else:
                        out = torch.nn.functional.dropout(out, module.dropout, True)
            if lstm:
                h = torch.cat([f[0] for f in finals], dim=0)
                c = torch.cat([f[1] for f in finals], dim=0)
                return out, (h, c)
            return out, torch.cat(finals, dim=0)

        return forward

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

        if _is_packed(data):
            return data.to(device)
        if isinstance(data, dict):
            return {k: conv(v) for k, v in data.items()}
        if isinstance(data, (list, tuple)):
            return type(data)(conv(v) for v in data)
        return conv(data)

    def _forward(self, model: Any, x: Any) -> Any:
        x = self._inputs(model, x)
        if _is_packed(x):
            return model(x)
        if isinstance(x, dict):
            return model(**x)
        if isinstance(x, tuple):
            return model(*x)
        return model(x)

    def _check(self, refs: Sequence[LayerRef], sink: dict[str, Any]) -> None:
        for r in refs:
            if r.info.name not in sink:
                raise LayerError(
                    f"layer '{r.info.name}' was not called in the forward pass",
                    layer=r.info.name,
                )

    def has_output(self, ref: LayerRef) -> bool:
        """Every layer, lower stacked layers included (through a layer-by-layer pass)."""
        return True

    def mask_rule(self, model: Any, ref: LayerRef) -> MaskRule:
        """torch pads packed outputs with zeros and has no masks of its own to find."""
        return MaskRule("zeros", (), f"torch module {type(model).__name__}")

    def masks(
        self, model: Any, x: Any, refs: Sequence[LayerRef]
    ) -> Iterator[tuple[str, np.ndarray | None]]:
        """The padding mask of each ref's input when it is a ``PackedSequence``; else None."""
        sink: dict[str, Any] = {}
        inputs: dict[str, Any] = {}
        with self._mode(model, False, False), self._hooks(refs, sink, inputs):
            with self.torch.no_grad():
                self._forward(model, x)
        self._check(refs, sink)
        for r in refs:
            given = inputs.get(r.info.name)
            yield r.info.name, self._lengths_mask(given) if _is_packed(given) else None

    def _lengths_mask(self, packed: Any) -> np.ndarray:
        from torch.nn.utils.rnn import pad_packed_sequence

        _, lengths = pad_packed_sequence(packed, batch_first=True)
        n = lengths.numpy()
        return readonly(np.arange(int(n.max(initial=0)))[None, :] < n[:, None])

    def _numpy(self, t: Any) -> np.ndarray:
        return readonly(self._to_numpy(t))

    def _padded(self, packed: Any, data: Any) -> np.ndarray:
        """``data`` (rows of ``packed.data``) padded batch-first in the caller's sample order,
        the padding masked."""
        from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

        seq = PackedSequence(
            data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices
        )
        padded, lengths = pad_packed_sequence(seq, batch_first=True)
        a = self._numpy(padded)
        n = lengths.numpy()
        m = np.arange(a.shape[1])[None, :] < n[:, None]
        return np.ma.MaskedArray(a, mask=np.broadcast_to(~m[:, :, None], a.shape))

    def _output(self, out: Any) -> np.ndarray:
        return self._padded(out, out.data) if _is_packed(out) else self._numpy(out)

    def activations(
        self, model: Any, x: Any, refs: Sequence[LayerRef], training: bool
    ) -> Iterator[tuple[str, np.ndarray]]:
        sink: dict[str, Any] = {}
        with self._mode(model, training, False), self._hooks(refs, sink), self.torch.no_grad():
            self._forward(model, x)
        self._check(refs, sink)
        for r in refs:
            yield r.info.name, self._output(sink[r.info.name])

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
            outs = [sink[r.info.name] for r in refs]
            targets = [o.data if _is_packed(o) else o for o in outs]
        else:
            targets = unique_variables(refs)
        raw = torch.autograd.grad(value, targets, allow_unused=True)
        grads = [torch.zeros_like(t) if g is None else g for g, t in zip(raw, targets, strict=True)]
        if weights:
            arrays = [self._numpy(g) for g in grads]
        else:
            arrays = [
                self._padded(o, g) if _is_packed(o) else self._numpy(g)
                for o, g in zip(outs, grads, strict=True)
            ]
        yield from results(refs, targets, arrays, weights)
