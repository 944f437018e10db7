"""Gate attributions, per framework: the layer's output recomputed from its gate activations.

:class:`TorchSite` (an ``nn.LSTM``/``nn.GRU``, one layer of a stack) and :class:`KerasSite` (a
Keras 3 ``LSTM``/``GRU`` or a ``Bidirectional`` of them) each capture the layer's own input and,
within ``replacing(gates)``, make the layer output what the gates give by the cell's equations,
in the framework's own ops: a torch forward hook, or the Keras layer's ``call`` replaced for the
pass (its weights read live, so a compiled JAX step stays right when they change). Both leave
the model as they found it.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import numpy as np

from ._attributions_fw import _Feed, _first, _torch_eval
from ._errors import UnsupportedError
from ._frameworks import type_name

__all__ = ["GateFeed", "KerasSite", "TorchSite"]


# -- the recomputation, in the framework's ops ---------------------------------------------------


class _Ops:
    """The few tensor ops the state equations need: torch's, Keras 3's ``keras.ops``, or
    TensorFlow's (tf-keras)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.o = importlib.import_module(
            {"keras": "keras.ops", "tf_keras": "tensorflow"}.get(kind, kind)
        )

    def stack(self, xs: list[Any], axis: int) -> Any:
        return self.o.stack(xs, axis)

    def cat(self, xs: list[Any], axis: int) -> Any:
        if self.kind == "torch":
            return self.o.cat(xs, axis)
        if self.kind == "tf_keras":
            return self.o.concat(xs, axis)
        return self.o.concatenate(xs, axis=axis)

    def matmul(self, a: Any, b: Any) -> Any:
        return self.o.matmul(a, b)

    def zeros_like(self, a: Any) -> Any:
        return self.o.zeros_like(a)

    def flip_time(self, a: Any) -> Any:
        if self.kind == "tf_keras":
            return self.o.reverse(a, [1])
        return self.o.flip(a, (1,)) if self.kind == "torch" else self.o.flip(a, axis=1)

    def numpy(self, a: Any) -> np.ndarray:
        if self.kind == "tf_keras":
            return np.asarray(a)
        return np.asarray(self.o.convert_to_numpy(a))


@dataclasses.dataclass
class _Direction:
    """One direction's cell: what the candidate's recomputation needs (GRU) and its order."""

    reverse: bool
    act: Any
    w_n: Any = None  # GRU: (input, units) input weights of the candidate
    b_n: Any = None  # GRU: the candidate's input bias (or None)
    u_n: Any = None  # GRU: (units, units) recurrent weights of the candidate
    b_hn: Any = None  # GRU reset-after: the candidate's recurrent bias (or None)


def _run(
    ops: _Ops, cell: str, g: Any, x: Any, d: _Direction, reset_after: bool
) -> tuple[list[Any], list[Any]]:
    """Recompute one direction: ``g`` is ``(rows, time, gate, units)`` in input order, ``x`` the
    layer's ``(rows, time, features)`` input. Returns ``h`` per step in input order and the
    final states (``[h, c]`` or ``[h]``)."""
    steps = g.shape[1]
    order = range(steps - 1, -1, -1) if d.reverse else range(steps)
    h = c = ops.zeros_like(g[:, 0, 0])
    hs: list[Any] = [None] * steps
    ax = None
    if cell == "GRU":
        ax = ops.matmul(x, d.w_n) + (0 if d.b_n is None else d.b_n)
    for t in order:
        if cell == "LSTM":
            c = g[:, t, 1] * c + g[:, t, 0] * g[:, t, 2]
            h = g[:, t, 3] * d.act(c)
        else:
            z, r = g[:, t, 0], g[:, t, 1]
            if reset_after:
                hr = ops.matmul(h, d.u_n) + (0 if d.b_hn is None else d.b_hn)
                n = d.act(ax[:, t] + r * hr)  # type: ignore[index]
            else:
                n = d.act(ax[:, t] + ops.matmul(r * h, d.u_n))  # type: ignore[index]
            h = z * h + (1 - z) * n
        hs[t] = h
    return hs, ([h, c] if cell == "LSTM" else [h])


# -- torch: the module's output replaced in a forward hook ---------------------------------------


class TorchSite:
    """The chosen layer ``k`` of a torch ``nn.LSTM``/``nn.GRU``: rebuilds the module's output
    from the gates, running the layers below and above ``k`` with torch's own kernels."""

    def __init__(self, module: Any, k: int, cell: str) -> None:
        self.torch = importlib.import_module("torch")
        self.module, self.k, self.cell = module, k, cell
        self.dirs = 2 if module.bidirectional else 1
        self.layer = SimpleNamespace(weight=next(module.parameters()))  # the dtype of a pass
        if getattr(module, "proj_size", 0):
            raise UnsupportedError(
                "gate attributions: an nn.LSTM with proj_size is not supported", argument="layer"
            )

    def _weights(self, lo: int, hi: int) -> list[Any]:
        per = len(self.module._flat_weights) // self.module.num_layers
        return list(self.module._flat_weights[lo * per : hi * per])

    def _kernel(self, x: Any, lo: int, hi: int) -> tuple[Any, Any]:
        """Layers ``lo..hi-1`` run by torch's own kernel on batch-first ``x``: (out, states)."""
        m, vf = self.module, importlib.import_module("torch._VF")
        h0 = x.new_zeros(((hi - lo) * self.dirs, x.shape[0], m.hidden_size))
        args = (m.bias, hi - lo, 0.0, False, m.bidirectional, True)
        if self.cell == "LSTM":
            out, h, c = vf.lstm(x, (h0, h0), self._weights(lo, hi), *args)
            return out, [h, c]
        out, h = vf.gru(x, h0, self._weights(lo, hi), *args)
        return out, [h]

    def _direction(self, d: int) -> _Direction:
        m, u, sfx = self.module, self.module.hidden_size, f"_l{self.k}" + ("_reverse" * d)
        out = _Direction(reverse=d == 1, act=self.torch.tanh)
        if self.cell == "GRU":  # torch's gate order: reset, update, new
            out.w_n = getattr(m, f"weight_ih{sfx}")[2 * u :].T
            out.u_n = getattr(m, f"weight_hh{sfx}")[2 * u :].T
            if m.bias:
                out.b_n = getattr(m, f"bias_ih{sfx}")[2 * u :]
                out.b_hn = getattr(m, f"bias_hh{sfx}")[2 * u :]
        return out

    def output(self, gates: Any, inp: Any, real: Any) -> Any:
        """The module's output with layer ``k`` recomputed from ``gates`` ``(rows, dir, time,
        gate, units)``; the real output ``real`` gives the lower layers' final states."""
        m, ops = self.module, _Ops("torch")
        x = inp if m.batch_first else inp.transpose(0, 1)
        if self.k:
            x, _ = self._kernel(x, 0, self.k)
        seqs, finals = [], []
        for d in range(self.dirs):
            hs, fin = _run(ops, self.cell, gates[:, d], x, self._direction(d), True)
            seqs.append(ops.stack(hs, 1))
            finals.append(fin)
        out = ops.cat(seqs, 2)
        states = [ops.stack([f[j] for f in finals], 0) for j in range(len(finals[0]))]
        if self.k + 1 < m.num_layers:
            out, upper = self._kernel(out, self.k + 1, m.num_layers)
            states = [ops.cat([s, up], 0) for s, up in zip(states, upper, strict=True)]
        real_states = list(real[1]) if self.cell == "LSTM" else [real[1]]
        lower = self.k * self.dirs
        states = [ops.cat([r[:lower], s], 0) for r, s in zip(real_states, states, strict=True)]
        out = out if m.batch_first else out.transpose(0, 1)
        return (out, tuple(states)) if self.cell == "LSTM" else (out, states[0])

    @contextmanager
    def replacing(self, gates: Any) -> Iterator[None]:
        """Within the block, the module outputs what ``gates`` give."""

        def hook(_m: Any, args: Any, real: Any) -> Any:
            inp = args[0] if args else None
            if inp is None or not self.torch.is_tensor(inp) or inp.dim() != 3:
                raise UnsupportedError(
                    f"gate attributions: the recurrent module received {type_name(inp)}; "
                    "expected a batched (3-D) tensor (packed sequences are not supported)",
                    argument="layer",
                )
            if len(args) > 1 and args[1] is not None:
                raise UnsupportedError(
                    "gate attributions: the recurrent module was given an initial state; only "
                    "zero initial states are supported",
                    argument="layer",
                )
            return self.output(gates, inp, real)

        handle = self.module.register_forward_hook(hook)
        try:
            yield
        finally:
            handle.remove()

    def capture(self, model: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The module's own input (batch first) on model input ``x``, and the model's output."""
        seen: list[Any] = []
        handle = self.module.register_forward_pre_hook(lambda _m, a: seen.append(a[0]))
        try:
            with _torch_eval(model), self.torch.no_grad():
                out = model(self.torch.from_numpy(np.array(x)).to(self.layer.weight.device))
        finally:
            handle.remove()
        if not seen or not self.torch.is_tensor(seen[0]) or seen[0].dim() != 3:
            got = "no call" if not seen else type_name(seen[0])
            raise UnsupportedError(
                f"gate attributions: the recurrent module got {got}; expected a batched "
                "(3-D) tensor (packed sequences are not supported)",
                argument="layer",
            )
        t = seen[0] if self.module.batch_first else seen[0].transpose(0, 1)
        if self.k:  # the input of layer k: the output of the layers below, by torch's kernel
            with self.torch.no_grad():
                t, _ = self._kernel(t, 0, self.k)
        real = _first(out).detach().cpu().numpy()
        return np.asarray(t.detach().cpu().numpy()), np.asarray(real)


# -- Keras 3: the layer's call replaced ------------------------------------------------------------


class KerasSite:
    """A Keras 3 ``LSTM``/``GRU`` or a ``Bidirectional`` of them: its ``call`` replaced by the
    output recomputed from the gates (weights read live, so compiled JAX steps stay right)."""

    def __init__(self, layer: Any, cell: str, framework: str = "keras") -> None:
        self.layer, self.cell, self.framework = layer, cell, framework
        self.bidirectional = hasattr(layer, "forward_layer")
        self.parts = [layer.forward_layer, layer.backward_layer] if self.bidirectional else [layer]
        self.reset_after = bool(getattr(self.parts[0].cell, "reset_after", True))

    def _direction(self, part: Any) -> _Direction:
        cell = part.cell
        out = _Direction(reverse=bool(part.go_backwards), act=cell.activation)
        if self.cell == "GRU":  # Keras's gate order: update, reset, candidate
            u = cell.units
            out.w_n = cell.kernel[:, 2 * u :]
            out.u_n = cell.recurrent_kernel[:, 2 * u :]
            if cell.use_bias:
                bias = cell.bias
                if self.reset_after:
                    out.b_n, out.b_hn = bias[0, 2 * u :], bias[1, 2 * u :]
                else:
                    out.b_n = bias[2 * u :]
        return out

    def output(self, gates: Any, x: Any) -> Any:
        ops = _Ops(self.framework)
        outs, states = [], []
        for d, part in enumerate(self.parts):
            hs, fin = _run(ops, self.cell, gates[:, d], x, self._direction(part), self.reset_after)
            if part.return_sequences:
                seq = ops.stack(hs, 1)  # input order; a go_backwards layer outputs it reversed
                outs.append(
                    ops.flip_time(seq) if part.go_backwards and not self.bidirectional else seq
                )
            else:
                outs.append(fin[0])
            states.extend(fin)
        if self.bidirectional:
            mode = self.layer.merge_mode
            a, b = outs
            merged = _merge(ops, mode, a, b)
            head = merged if isinstance(merged, list) else [merged]
            return head + states if self.layer.return_state else merged
        return [outs[0], *states] if self.layer.return_state else outs[0]

    @contextmanager
    def replacing(self, gates: Any) -> Iterator[None]:
        """Within the block, the layer outputs what ``gates`` give."""

        def call(*args: Any, **kwargs: Any) -> Any:
            x = args[0] if args else kwargs.get("sequences", kwargs.get("inputs"))
            if kwargs.get("initial_state") is not None or len(args) > 1:
                raise UnsupportedError(
                    f"gate attributions: layer '{self.layer.name}' was given an initial state; "
                    "only zero initial states are supported",
                    layer=self.layer.name,
                )
            return self.output(gates, x)

        with _calls(self.layer, call):
            yield

    def capture(self, model: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The layer's own input on model input ``x``, and the model's output."""
        seen: list[Any] = []
        original = self.layer.call

        def call(*args: Any, **kwargs: Any) -> Any:
            seen.append(args[0] if args else kwargs.get("sequences", kwargs.get("inputs")))
            return original(*args, **kwargs)

        with _calls(self.layer, call):
            out = model(x, training=False)
        ops = _Ops(self.framework)
        return ops.numpy(seen[0]), ops.numpy(_first(out))


def _merge(ops: _Ops, mode: str | None, a: Any, b: Any) -> Any:
    """Two directions joined as a Keras ``Bidirectional`` joins them."""
    if mode == "concat":
        return ops.cat([a, b], -1)
    if mode == "sum":
        return a + b
    if mode == "mul":
        return a * b
    if mode == "ave":
        return (a + b) / 2
    return [a, b]


@contextmanager
def _calls(layer: Any, fn: Any) -> Iterator[None]:
    had, saved = "call" in vars(layer), vars(layer).get("call")
    object.__setattr__(layer, "call", fn)
    try:
        yield
    finally:
        if had:
            object.__setattr__(layer, "call", saved)
        else:
            object.__delattr__(layer, "call")


class GateFeed(_Feed):
    """Every pass gets the model's real input; the layer's output comes from the rows (gates)."""

    def __init__(self, x: np.ndarray, site: Any) -> None:
        super().__init__([x], [site])  # _Feed's context puts the rows in place at the site
