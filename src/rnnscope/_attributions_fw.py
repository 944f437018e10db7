"""The one primitive attributions need, per framework: a target's value and input gradients.

``prepare`` turns a live model, its input and a target into ``(input names, numpy inputs,
grad)``, where ``grad(rows, sample index) -> (value per row, gradient per input)``. Gradients
come from the framework's own autodiff: ``torch.autograd.grad``, ``tf.GradientTape``, and
``jax.value_and_grad`` over ``stateless_call`` for Keras 3 on JAX. Nothing stays on the model:
torch train/eval flags are restored in ``finally``, and Keras models are called with
``training=False`` and no state update.
"""

from __future__ import annotations

import importlib
import importlib.util
import weakref
from collections.abc import Callable
from contextlib import ExitStack, contextmanager, nullcontext
from typing import Any

import numpy as np

from ._attributions_masks import (
    check_torch_mask,
    fixed_masks,
    hold_mask,
    hold_mask_arg,
    keras_mask_check,
    mask_takers,
    maskings,
    resolve_mask,
    torch_call,
    torch_mask_mode,
)
from ._attributions_tokens import Injection, check_tokens, embeddings_for_inputs, vocabulary
from ._errors import InputError, UnsupportedError
from ._frameworks import find_framework, type_name
from ._trace import unpack_sequence

__all__ = ["GradFn", "prepare"]

GradFn = Callable[[list[np.ndarray], np.ndarray], tuple[np.ndarray, list[np.ndarray]]]
"""``(rows of each input, sample index of each row) -> (target value per row, gradients)``."""


def _check_sequences(xs: list[np.ndarray], names: list[str]) -> None:
    for x, name in zip(xs, names, strict=True):
        if x.ndim != 3:
            raise InputError(
                f"input '{name}': expected (batch, time, features); got shape {x.shape}",
                argument="x",
            )
        if x.dtype.kind != "f":
            raise InputError(
                f"input '{name}': expected a float sequence or integer token ids; got dtype "
                f"{x.dtype}",
                argument="x",
            )
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise InputError(
                f"input '{name}': expected at least one sample and one timestep; got shape "
                f"{x.shape}",
                argument="x",
            )
        bad = ~np.isfinite(x)
        if bad.any():
            b, t, f = (int(i[0]) for i in np.nonzero(bad))
            raise InputError(
                f"input '{name}': expected finite values; got {x[b, t, f]} at sample {b}, "
                f"timestep {t}, feature {f} ({int(bad.sum())} non-finite value(s))",
                argument="x",
            )


def _first(out: Any) -> Any:
    while isinstance(out, (list, tuple)):
        out = out[0]
    if isinstance(out, dict):
        out = next(iter(out.values()))
    return out


def _inputs(model: Any, x: Any, keras: bool) -> tuple[list[str], list[np.ndarray], Any]:
    """Names, float arrays and a function rebuilding the model's input structure."""
    if isinstance(x, dict):
        names = list(x)
        xs = [np.asarray(x[n]) for n in names]
        return names, xs, lambda vals: dict(zip(names, vals, strict=True))
    if isinstance(x, (list, tuple)):
        xs = [np.asarray(v) for v in x]
        given = [getattr(t, "name", None) for t in getattr(model, "inputs", None) or []]
        names = (
            [str(n) for n in given]
            if keras and len(given) == len(xs) and all(given)
            else [f"input_{k}" for k in range(len(xs))]
        )
        return names, xs, list
    return ["input"], [np.asarray(x)], lambda vals: vals[0]


class _Target:
    """Turns a framework output tensor into one value per row, with the given ops."""

    def __init__(
        self, spec: Any, out: np.ndarray, y: Any, loss: Any, batch: int | None = None
    ) -> None:
        b = out.shape[0]
        self.kind = "index"
        self.fn: Any = None
        self.y = None if y is None else np.asarray(y)
        if callable(spec) and not isinstance(spec, str):
            self.kind, self.fn = "callable", spec
            self.meta: dict[str, Any] = {"kind": "callable", "name": getattr(spec, "__name__", "")}
            return
        if batch is not None and b != batch:
            raise InputError(
                f"target: the model's output has shape {out.shape}, whose first axis is not the "
                f"{batch} samples of x; attributions give the model (batch, time, features) "
                "inputs (wrap a time-major model so that it takes them)",
                argument="target",
            )
        if isinstance(spec, str):
            if spec != "loss":
                raise InputError(
                    f"target: expected None, an int, (timestep, unit), 'loss' or a callable; "
                    f"got {spec!r}",
                    argument="target",
                )
            if y is None:
                raise InputError("target='loss' needs y= (the true targets)", argument="y")
            if self.y is not None and len(self.y) != b:
                raise InputError(f"y: expected {b} samples like x; got {len(self.y)}", argument="y")
            self.kind, self.fn = "loss", loss
            self.meta = {"kind": "loss"}
            return
        if out.ndim not in (2, 3):
            raise InputError(
                f"target: the model's output has shape {out.shape}; an index target needs "
                "(batch, units) or (batch, time, units): pass a callable",
                argument="target",
            )
        units = out.shape[-1]
        if out.ndim == 3:
            t, unit = self._sequence(spec, out)
            pos = t * units + unit
            self.meta = {"kind": "timestep", "timestep": t, "unit": unit}
        else:
            if isinstance(spec, tuple):
                raise InputError(
                    f"target: (timestep, unit) needs a sequence output; the output has shape "
                    f"{out.shape}",
                    argument="target",
                )
            unit = self._per_sample(spec, out[:, :], units, "class")
            pos = unit
            self.meta = {"kind": "class" if spec is None else "unit", "index": unit}
        self.onehot = np.zeros((b, out[0].size), dtype=out.dtype)
        self.onehot[np.arange(b), pos] = 1

    def rows(self, idx: np.ndarray) -> np.ndarray:
        """What the value of each row needs: one-hot rows, or the rows of ``y``."""
        if self.kind == "index":
            return self.onehot[idx]
        return self.y[idx] if self.y is not None else idx

    @staticmethod
    def _per_sample(spec: Any, scores: np.ndarray, size: int, what: str) -> np.ndarray:
        b = scores.shape[0]
        if spec is None:
            return np.asarray(scores.argmax(axis=-1))
        arr = np.asarray(spec)
        if arr.dtype.kind not in "iu" or arr.ndim > 1 or (arr.ndim == 1 and len(arr) != b):
            raise InputError(
                f"target: expected an int or {b} ints (one per sample); got {spec!r}",
                argument="target",
            )
        arr = np.broadcast_to(arr, (b,)).astype(np.int64)
        if ((arr < -size) | (arr >= size)).any():
            raise InputError(
                f"target: {what} index out of range for an output of {size}; got {spec!r}",
                argument="target",
            )
        return arr % size

    def _sequence(self, spec: Any, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        steps = out.shape[1]
        if spec is None:
            t, unit = np.full(out.shape[0], steps - 1), None
        elif isinstance(spec, tuple) and len(spec) == 2:
            t = self._per_sample(spec[0], out[:, :, 0], steps, "timestep")
            unit = spec[1]
        else:
            raise InputError(
                f"target: the output is a sequence {out.shape}; expected (timestep, unit); "
                f"got {spec!r}",
                argument="target",
            )
        at = out[np.arange(out.shape[0]), t]
        return t, self._per_sample(unit, at, out.shape[2], "unit")


@contextmanager
def _torch_eval(model: Any) -> Any:
    saved = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        yield
    finally:
        for m, flag in saved:
            m.training = flag


class _Feed:
    """What a forward pass is given besides the rows: for token inputs the rows' own tokens
    (the rows, embedding-space values, are put in place of each embedding's output), and for a
    padded float input its fixed mask (Keras: held in each ``Masking`` layer; torch: given to
    the model as its ``forward`` takes it)."""

    def __init__(
        self,
        tokens: list[np.ndarray | None] | None = None,
        injs: list[Injection | None] | None = None,
        mask: np.ndarray | None = None,
        masking: list[Any] | None = None,
        torch_mode: str | None = None,
    ) -> None:
        self.all_tokens = tokens or []
        self.injs = injs or []
        self.mask = mask
        self.masking = masking or []
        self.takers: list[Any] = []  # Keras layers taking a mask, given the held one
        self.torch_mode = torch_mode
        self.emb_names: list[str | None] = [None] * len(self.injs)

    @property
    def tokens(self) -> np.ndarray | None:
        """The first token input's ids (None without token inputs)."""
        return next((t for t in self.all_tokens if t is not None), None)

    @property
    def inj(self) -> Injection | None:
        """The first token input's embedding (None without token inputs)."""
        return next((i for i in self.injs if i is not None), None)

    def key(self) -> tuple[Any, ...]:
        """What a compiled step depends on beyond the model and target."""
        return (
            tuple(None if i is None else _Same(i.layer) for i in self.injs),
            tuple(_Same(layer) for layer in self.masking),
        )

    def extras(self, idx: np.ndarray) -> list[np.ndarray]:
        """The rows' tokens (one array per token input), then their mask per Masking layer."""
        toks = [t[idx] for t in self.all_tokens if t is not None]
        return toks + [self.mask[idx] for _ in self.masking]  # type: ignore[index]

    def inputs(self, ts: list[Any], extras: list[Any]) -> list[Any]:
        if not self.all_tokens:
            return ts
        it = iter(extras)
        return [t if tok is None else next(it) for t, tok in zip(ts, self.all_tokens, strict=True)]

    def context(self, ts: list[Any], extras: list[Any]) -> Any:
        if not self.injs and not self.masking:
            return nullcontext()
        stack = ExitStack()
        for t, inj in zip(ts, self.injs or [None] * len(ts), strict=True):
            if inj is not None:
                stack.enter_context(inj.replacing(t))
        held = extras[len(extras) - len(self.masking) :]
        for layer, m in zip(self.masking, held, strict=True):
            stack.enter_context(hold_mask(layer, m))
        for layer in self.takers:
            stack.enter_context(hold_mask_arg(layer, held[0]))
        return stack

    def call_torch(self, model: Any, build: Any, fed: list[Any], idx: np.ndarray) -> Any:
        """The torch model on the fed tensors, with the rows' mask if there is one."""
        if self.torch_mode is not None:
            assert self.mask is not None
            return torch_call(model, fed[0], self.mask[idx], self.torch_mode)
        inp = build(fed)
        return model(**inp) if isinstance(inp, dict) else model(*fed)


def _mask_check(model: Any, allowed: Any = ()) -> None:
    layers = getattr(model, "_flatten_layers", None)
    for layer in layers() if layers else []:
        kind = type(layer).__name__
        if any(layer is a for a in allowed):
            continue  # the mask comes from the real tokens, or is held fixed (Masking)
        if kind == "Masking" or (kind == "Embedding" and getattr(layer, "mask_zero", False)):
            raise UnsupportedError(
                f"model '{model.name}' has a mask (layer '{layer.name}', {kind}) that does not "
                "come from its integer token inputs: attributions honour an Embedding's mask "
                "only for the tokens it embeds, and a Masking layer only for a single float "
                "input",
                layer=layer.name,
            )


def _per_row(
    target: _Target, ops: Any, out: Any, sel: Any, n: int, loss: Callable[..., Any]
) -> Any:
    if target.kind == "index":
        flat = ops.reshape(out, (n, -1))
        return ops.sum(flat * ops.const(sel, out), 1)
    if target.kind == "loss":
        value = loss(ops.const(sel, None), out)
    else:
        value = target.fn(out)
    if len(value.shape) == 0 or value.shape[0] != n:
        raise InputError(
            f"target: the {target.kind} must give one value per sample ({n}); got shape "
            f"{tuple(value.shape)}",
            argument="target",
        )
    return ops.mean(ops.reshape(value, (n, -1)), 1)


class _TorchOps:
    def __init__(self) -> None:
        self.t = importlib.import_module("torch")

    def reshape(self, a: Any, shape: tuple[int, ...]) -> Any:
        return a.reshape(shape)

    def sum(self, a: Any, axis: int) -> Any:
        return a.sum(dim=axis)

    def mean(self, a: Any, axis: int) -> Any:
        return a.float().mean(dim=axis) if not a.is_floating_point() else a.mean(dim=axis)

    def const(self, arr: np.ndarray, like: Any) -> Any:
        t = self.t.from_numpy(np.ascontiguousarray(arr))
        return t.to(like.dtype) if like is not None else t


class _KerasOps:
    def __init__(self, framework: str) -> None:
        if framework == "keras":
            self.o = importlib.import_module("keras").ops
            self._sum, self._mean, self._conv = self.o.sum, self.o.mean, self.o.convert_to_tensor
        else:
            self.o = importlib.import_module("tensorflow")
            self._sum, self._mean = self.o.reduce_sum, self.o.reduce_mean
            self._conv = self.o.convert_to_tensor

    def reshape(self, a: Any, shape: tuple[int, ...]) -> Any:
        return self.o.reshape(a, shape)

    def sum(self, a: Any, axis: int) -> Any:
        return self._sum(a, axis=axis)

    def mean(self, a: Any, axis: int) -> Any:
        return self._mean(self.o.cast(a, "float32") if "int" in str(a.dtype) else a, axis=axis)

    def const(self, arr: np.ndarray, like: Any) -> Any:
        t = self._conv(arr)
        return self.o.cast(t, like.dtype) if like is not None else t


def _torch_loss(loss: Any) -> Callable[..., Any]:
    def fn(y: Any, pred: Any) -> Any:
        if loss is None:
            raise InputError(
                "target='loss' on a torch model needs loss=: a callable (prediction, target) "
                "such as torch.nn.CrossEntropyLoss()",
                argument="loss",
            )
        reduction = getattr(loss, "reduction", None)
        if reduction is None:
            return loss(pred, y)
        loss.reduction = "none"
        try:
            return loss(pred, y)
        finally:
            loss.reduction = reduction

    return fn


def _keras_loss(framework: str, model: Any, loss: Any) -> Callable[..., Any]:
    k = importlib.import_module(framework)
    chosen = loss if loss is not None else getattr(model, "loss", None)

    def fn(y: Any, pred: Any) -> Any:
        if chosen is None:
            raise InputError(
                f"target='loss': model '{model.name}' has no compiled loss; pass loss=",
                argument="loss",
            )
        f = k.losses.get(chosen) if isinstance(chosen, str) else chosen
        if isinstance(f, k.losses.Loss):
            return f.call(y, pred)  # unreduced: one value per sample
        return f(y, pred)

    return fn


def _torch_grad(model: Any, build: Any, target: _Target, feed: _Feed) -> GradFn:
    torch = importlib.import_module("torch")
    ops = _TorchOps()
    p = next(model.parameters(), None)
    loss = _torch_loss(target.fn) if target.kind == "loss" else _torch_loss(None)

    def grad(rows: list[np.ndarray], idx: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        ts = [torch.from_numpy(np.array(r)) for r in rows]
        ts = [(t.to(p.dtype) if p is not None else t) for t in ts]
        ts = [  # token inputs: the embedding's own dtype
            t if inj is None else t.to(inj.layer.weight.dtype)
            for t, inj in zip(ts, feed.injs or [None] * len(ts), strict=True)
        ]
        ts = [t.requires_grad_() for t in ts]
        if p is not None:
            ts = [t.to(p.device) for t in ts]
        ext = [torch.from_numpy(a).to(ts[0].device) for a in feed.extras(idx)]
        fed = feed.inputs(ts, ext)
        with _torch_eval(model), torch.enable_grad(), feed.context(ts, ext):
            out = feed.call_torch(model, build, fed, idx)
            vals = _per_row(target, ops, _first(out), target.rows(idx), len(idx), loss)
            grads = torch.autograd.grad(vals.sum(), ts, allow_unused=True)
        gs = [
            np.zeros(r.shape) if g is None else g.detach().cpu().double().numpy()
            for g, r in zip(grads, rows, strict=True)
        ]
        return vals.detach().cpu().double().numpy(), gs

    return grad


def _keras_grad(
    framework: str,
    backend: str,
    model: Any,
    build: Any,
    target: _Target,
    names: list[str],
    feed: _Feed,
) -> GradFn:
    ops = _KerasOps(framework)
    loss = _keras_loss(framework, model, target.fn if target.kind == "loss" else None)

    def fwd(inp: Any) -> Any:
        return _first(model(inp, training=False))

    if backend == "tensorflow":
        tf = importlib.import_module("tensorflow")

        def grad(rows: list[np.ndarray], idx: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
            ts = [tf.convert_to_tensor(r) for r in rows]
            ext = [tf.convert_to_tensor(a) for a in feed.extras(idx)]
            with tf.GradientTape() as tape:
                for t in ts:
                    tape.watch(t)
                with feed.context(ts, ext):
                    out = fwd(build(feed.inputs(ts, ext)))
                vals = _per_row(target, ops, out, target.rows(idx), len(idx), loss)
                total = tf.reduce_sum(vals)
            gs = tape.gradient(total, ts, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return np.asarray(vals, np.float64), [np.asarray(g, np.float64) for g in gs]

        return grad
    if backend == "torch":
        torch = importlib.import_module("torch")

        def tgrad(rows: list[np.ndarray], idx: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
            ts = [ops.const(r, None).detach().requires_grad_() for r in rows]
            ext = [ops.const(a, None) for a in feed.extras(idx)]
            with torch.enable_grad(), feed.context(ts, ext):
                out = fwd(build(feed.inputs(ts, ext)))
                vals = _per_row(target, ops, out, target.rows(idx), len(idx), loss)
                gs = torch.autograd.grad(vals.sum(), ts, allow_unused=True)
            out = [
                np.zeros(r.shape) if g is None else g.detach().cpu().double().numpy()
                for g, r in zip(gs, rows, strict=True)
            ]
            return vals.detach().cpu().double().numpy(), out

        return tgrad
    return _jax_grad(model, build, target, ops, loss, names, feed)


def _bucket(n: int) -> int:
    """Rows a JAX call is padded to, so few shapes get compiled: a power of two from 16 up to
    64, then a multiple of 64 (at most 1/13 more rows beyond that)."""
    return max(16, 1 << (n - 1).bit_length()) if n <= 64 else -(-n // 64) * 64


def _jax_forward(model: Any, build: Any, xs: list[np.ndarray], names: list[str]) -> Any:
    """The model's output through a compiled ``stateless_call`` (an eager call recompiles)."""
    import jax

    per_model = _JAX_STEPS.setdefault(model, {})
    key = ("forward", tuple(names), _structure(build, len(xs)))
    if key not in per_model:
        ref = weakref.ref(model)

        def fwd(tv: list[Any], ntv: list[Any], ts: list[Any]) -> Any:
            live = ref()
            assert live is not None, "the model was garbage-collected"
            rebuild = _JAX_CALL[-1]["build"]
            return _first(live.stateless_call(tv, ntv, rebuild(ts), training=False)[0])

        per_model[key] = jax.jit(fwd)
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    n = len(xs[0])
    pad = np.concatenate([np.arange(n), np.zeros(_bucket(n) - n, dtype=np.int64)])
    with _jax_call(build=build):
        return np.asarray(per_model[key](tv, ntv, [jax.numpy.asarray(a[pad]) for a in xs]))[:n]


class _Same:
    """A cache key part equal only to itself's object (compared with ``is``); it keeps the
    object alive, so the object's ``id`` cannot be reused by another while the key exists."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj


def _structure(build: Any, n: int) -> str:
    """What ``build`` makes of ``n`` inputs: ``"dict"``, ``"list"`` or ``"single"``."""
    made = build(list(range(n)))
    return "dict" if isinstance(made, dict) else "list" if isinstance(made, list) else "single"


_JAX_CALL: list[dict[str, Any]] = []
"""The current call's objects (input structure, target, loss, feed), read by a compiled JAX step
only while jax traces it: a cached step holds no call's inputs, labels or tokens, and a retrace
(a new row count or sequence length) sees the call that caused it, never the first one."""


@contextmanager
def _jax_call(**objects: Any) -> Any:
    _JAX_CALL.append(objects)
    try:
        yield
    finally:
        _JAX_CALL.pop()


_JAX_STEPS: weakref.WeakKeyDictionary[Any, dict[Any, Any]] = weakref.WeakKeyDictionary()


def _jax_grad(
    model: Any, build: Any, target: _Target, ops: Any, loss: Any, names: Any, feed: _Feed
) -> GradFn:
    """``jax.value_and_grad`` of the target over ``stateless_call``, compiled once per model and
    what the trace depends on (the target's kind and function, the loss, the inputs' names and
    structure, the embedding), kept while the model lives; the call's own objects reach the
    trace through :data:`_JAX_CALL`. Rows are padded to few sizes so that few shapes compile."""
    import jax

    key = (
        target.kind,
        _Same(target.fn),
        _Same(getattr(model, "loss", None)),
        tuple(names),
        _structure(build, len(names)),
        feed.key(),
    )
    per_model = _JAX_STEPS.setdefault(model, {})
    if key not in per_model:
        ref = weakref.ref(model)

        def total(tv: list[Any], ntv: list[Any], ts: list[Any], sel: Any, ext: Any) -> Any:
            live = ref()
            assert live is not None, "the model was garbage-collected"
            c = _JAX_CALL[-1]
            with c["feed"].context(ts, ext):
                inp = c["build"](c["feed"].inputs(ts, ext))
                out, _ = live.stateless_call(tv, ntv, inp, training=False)
            vals = _per_row(c["target"], ops, _first(out), sel, sel.shape[0], c["loss"])
            return vals.sum(), vals

        if len(per_model) >= 8:
            per_model.pop(next(iter(per_model)))
        per_model[key] = jax.jit(jax.value_and_grad(total, argnums=2, has_aux=True))
    step = per_model[key]
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]

    def grad(rows: list[np.ndarray], idx: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        n = len(idx)
        pad = np.concatenate([np.arange(n), np.zeros(_bucket(n) - n, dtype=np.int64)])
        sel = jax.numpy.asarray(target.rows(idx[pad]))
        ext = [jax.numpy.asarray(a) for a in feed.extras(idx[pad])]
        with _jax_call(build=build, target=target, loss=loss, feed=feed):
            (_, vals), gs = step(tv, ntv, [jax.numpy.asarray(r[pad]) for r in rows], sel, ext)
        return np.asarray(vals, np.float64)[:n], [np.asarray(g, np.float64)[:n] for g in gs]

    return grad


def _token_feed(
    model: Any,
    torch: bool,
    xs: list[np.ndarray],
    names: list[str],
    embedding: Any,
    run: Callable[[], Any],
) -> _Feed:
    """The feed of the integer token inputs: each one's tokens and embedding layer."""
    found = embeddings_for_inputs(model, torch, xs, names, embedding, run)
    tokens: list[np.ndarray | None] = [None] * len(xs)
    injs: list[Injection | None] = [None] * len(xs)
    feed = _Feed(tokens, injs)
    feed.emb_names = [None] * len(xs)
    for k, (name, layer) in found.items():
        check_tokens(xs[k], name, vocabulary(layer, torch))
        tokens[k], injs[k] = xs[k].astype(np.int64), Injection(layer, torch)
        feed.emb_names[k] = name
    return feed


def _packed(x: Any) -> bool:
    return type(x).__name__ == "PackedSequence" and hasattr(x, "batch_sizes")


def _keras_masks(model: Any, run: Callable[[], Any], xs: list[np.ndarray], feed: _Feed) -> None:
    """Keras ``Masking`` layers: the mask, computed once from the real input (or given), held
    in ``feed`` for every pass; refused for several inputs or token inputs."""
    found = maskings(model)
    if not found:
        if feed.mask is not None:
            raise UnsupportedError(
                f"mask=/lengths=: Keras model '{model.name}' has no Masking layer to hold the "
                "mask; add keras.layers.Masking after its input, or pass unpadded sequences",
                argument="mask",
            )
        return
    if len(xs) != 1 or feed.tokens is not None:
        return  # _mask_check refuses the Masking layer with its name
    masks = fixed_masks(model, run, feed.mask)
    keras_mask_check(model, masks, xs[0].shape[:2])
    first = next(iter(masks.values()))
    if any(not np.array_equal(m, first) for m in masks.values()):
        raise UnsupportedError(
            f"model '{model.name}' has Masking layers that mask different steps "
            f"({', '.join(la.name for la in masks)}); attributions hold one mask of the input",
        )
    feed.mask, feed.masking, feed.takers = first, list(masks), mask_takers(model)


def prepare(
    model: Any,
    x: Any,
    spec: Any,
    y: Any,
    loss: Any,
    embedding: Any = None,
    mask: Any = None,
    lengths: Any = None,
) -> tuple[list[str], list[np.ndarray], GradFn, dict[str, Any], _Feed, str | None]:
    """``(input names, inputs, grad, target description, feed, embedding name)`` for
    ``attributions``; for integer token inputs the inputs are their embeddings, and the feed
    holds the tokens and the layers (``feed.emb_names``: per input) and the name is the first
    token input's embedding (None without one); ``feed.mask`` is the fixed mask of a padded
    float input."""
    fw = find_framework(model)
    if fw is None:
        raise UnsupportedError(
            "attributions need a live Keras 3, tf-keras, torch or flax.nnx model; got "
            f"{type_name(model)}"
        )
    keras = fw.name != "torch"
    if not keras and _packed(x):
        if mask is not None or lengths is not None:
            raise InputError(
                "x is a PackedSequence, which carries its own lengths; do not pass mask= or "
                "lengths= as well",
                argument="mask",
            )
        x, lengths = unpack_sequence(x)
    names, xs, build = _inputs(model, x, keras)
    floats = [(a, n) for a, n in zip(xs, names, strict=True) if a.dtype.kind not in "iu"]
    _check_sequences([a for a, _ in floats], [n for _, n in floats])
    if len({len(a) for a in xs}) != 1:
        raise InputError(
            f"x: every input needs the same batch size; got {[len(a) for a in xs]}", argument="x"
        )
    fixed = None
    if mask is not None or lengths is not None:
        if len(xs) != 1 or xs[0].dtype.kind in "iu":
            raise InputError(
                "mask=/lengths= are for a single float input (token inputs take their mask "
                f"from the tokens); got {len(xs)} input(s) of dtype "
                f"{', '.join(str(a.dtype) for a in xs)}",
                argument="mask",
            )
        fixed = resolve_mask(mask, lengths, xs[0].shape[0], xs[0].shape[1])
    if keras:
        backend = fw.capture.backend  # type: ignore[attr-defined]
        keras3 = fw.name == "keras"

        def run() -> Any:
            return model(build(xs), training=False)

        feed = _Feed(mask=fixed)
        if any(a.dtype.kind in "iu" for a in xs):
            feed = _token_feed(model, False, xs, names, embedding, run)
        _keras_masks(model, run, xs, feed)
        handled = [i.layer for i in feed.injs if i is not None] + feed.masking
        _mask_check(model, handled)
        if feed.masking:  # an eager pass with the mask held
            lib = importlib.import_module("keras").ops if keras3 else None
            conv = (lib or importlib.import_module("tensorflow")).convert_to_tensor
            ext = [conv(a) for a in feed.extras(np.arange(len(xs[0])))]
            with feed.context(xs, ext):
                out = fw.to_numpy(_first(model(build(xs), training=False)))
        elif backend == "jax":
            out = _jax_forward(model, build, xs, names)
        else:
            out = fw.to_numpy(_first(run()))
        target = _Target(spec, out, y, loss, len(xs[0]))
        grad = _keras_grad(fw.name, backend, model, build, target, names, feed)
    else:
        torch = importlib.import_module("torch")
        p = next(model.parameters(), None)
        dtype = p.dtype if p is not None else torch.float32
        ts = [torch.from_numpy(np.ascontiguousarray(a)) for a in xs]
        ts = [t if a.dtype.kind in "iu" else t.to(dtype) for t, a in zip(ts, xs, strict=True)]
        if p is not None:
            ts = [t.to(p.device) for t in ts]

        def trun() -> Any:
            with _torch_eval(model), torch.no_grad():
                inp = build(ts)
                return model(**inp) if isinstance(inp, dict) else model(*ts)

        feed = _Feed(mask=fixed)
        if any(a.dtype.kind in "iu" for a in xs):
            feed = _token_feed(model, True, xs, names, embedding, trun)
        if fixed is not None:
            feed.torch_mode = torch_mask_mode(model)
            check_torch_mask(model, fixed, feed.torch_mode)
        with _torch_eval(model), torch.no_grad():
            out = feed.call_torch(model, build, ts, np.arange(len(xs[0])))
        target = _Target(spec, fw.to_numpy(_first(out)), y, loss, len(xs[0]))
        grad = _torch_grad(model, build, target, feed)
    meta = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in target.meta.items()}
    xs = [a if i is None else i.embed(t) for a, i, t in _with_tokens(xs, feed)]
    return names, xs, grad, meta, feed, next((n for n in feed.emb_names if n), None)


def _with_tokens(xs: list[np.ndarray], feed: _Feed) -> list[tuple[Any, Any, Any]]:
    if not feed.all_tokens:
        return [(a, None, None) for a in xs]
    return list(zip(xs, feed.injs, feed.all_tokens, strict=True))


def load_keras_model(path: str) -> Any:
    """A whole Keras model from a ``.keras`` or ``.h5`` file, for the command line: Keras 3's
    loader in safe mode (no code from the file runs), uncompiled."""
    from pathlib import Path

    from ._errors import MissingDependencyError

    p = Path(path)
    if p.suffix.lower() not in (".keras", ".h5") or p.name.lower().endswith(".weights.h5"):
        raise InputError(
            f"MODEL '{path}': expected a whole model saved as .keras or .h5 (weights-only "
            "files have no model to run)",
            path=path,
        )
    if not p.is_file():
        raise InputError(f"MODEL '{path}': no such file", path=path)
    if importlib.util.find_spec("keras") is None:
        raise MissingDependencyError(
            "attributions of a model file need Keras 3: pip install 'rnnscope[keras]'"
        )
    keras = importlib.import_module("keras")
    try:
        return keras.saving.load_model(p, compile=False, safe_mode=True)
    except (ValueError, TypeError, OSError, KeyError, AttributeError) as err:
        raise InputError(f"MODEL '{path}': Keras could not load it: {err}", path=path) from err
