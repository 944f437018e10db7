"""Attributions of ``flax.nnx`` modules: the target's value and input gradients through jax.

The module itself is never run nor changed. Each call clones it (``nnx.clone``), puts the clone
in eval mode and splits it (``nnx.split``) into a graph definition and a state; a pure function
merges them, runs the copy and returns one target value per row. ``jax.value_and_grad`` of it is
compiled once per model, graph and target (kept while the model lives) and called with the
state as an argument, so later calls reuse it even after the weights change.

Integer token ids ``(batch, time)`` are attributed at an ``nnx.Embed``'s output: in the merged
copy that Embed returns the values being differentiated while the rest of the model runs on the
real tokens.
"""

from __future__ import annotations

import importlib
import weakref
from typing import Any

import numpy as np

from ._attributions_fw import (
    _JAX_CALL,
    GradFn,
    _bucket,
    _check_sequences,
    _Feed,
    _first,
    _inputs,
    _jax_call,
    _per_row,
    _Same,
    _structure,
)
from ._attributions_fw import _Target as Target
from ._attributions_tokens import Injection, check_tokens
from ._errors import InputError

__all__ = ["prepare_flax"]


class _Ops:
    """The few array operations ``_per_row`` needs, in ``jax.numpy``."""

    def __init__(self) -> None:
        self.jnp = importlib.import_module("jax.numpy")

    def reshape(self, a: Any, shape: tuple[int, ...]) -> Any:
        return self.jnp.reshape(a, shape)

    def sum(self, a: Any, axis: int) -> Any:
        return self.jnp.sum(a, axis=axis)

    def mean(self, a: Any, axis: int) -> Any:
        return self.jnp.mean(self.jnp.asarray(a, dtype=self.jnp.float32), axis=axis)

    def const(self, arr: Any, like: Any) -> Any:
        t = self.jnp.asarray(arr)
        return t.astype(like.dtype) if like is not None else t


class FlaxEmbedding(Injection):
    """An ``nnx.Embed`` of the model, found by its attribute path.

    Args:
        layer: the ``nnx.Embed`` module.
        path: its attribute path in the model (``("emb",)``).
    """

    def __init__(self, layer: Any, path: tuple[Any, ...]) -> None:
        super().__init__(layer, torch=False)
        self.path = path

    def embed(self, tokens: np.ndarray) -> np.ndarray:
        """The Embed's own output for ``tokens`` (calling it changes nothing)."""
        jnp = importlib.import_module("jax.numpy")
        return np.asarray(self.layer(jnp.asarray(np.ascontiguousarray(tokens))))


def _embeddings(model: Any) -> list[tuple[str, tuple[Any, ...], Any]]:
    from ._frameworks._flax_layers import flax_path, is_flax_class, module_paths

    return [
        (flax_path(p) or "model", p, m) for p, m in module_paths(model) if is_flax_class(m, "Embed")
    ]


def _find_embed(model: Any, name: str | None) -> tuple[str, FlaxEmbedding]:
    found = _embeddings(model)
    names = [n for n, _, _ in found]
    if name is not None:
        hit = [f for f in found if f[0] == name]
        if not hit:
            raise InputError(
                f"embedding: no nnx.Embed at {name!r}; the model has: {', '.join(names) or 'none'}",
                argument="embedding",
            )
        found = hit
    if not found:
        raise InputError(
            "x: integer token inputs are attributed at an nnx.Embed's output, and the model has "
            "no nnx.Embed; pass float inputs",
            argument="x",
        )
    if len(found) > 1:
        raise InputError(
            f"embedding: the model has {len(found)} nnx.Embed modules ({', '.join(names)}); name "
            "the one to attribute at with embedding=",
            argument="embedding",
        )
    n, path, layer = found[0]
    return n, FlaxEmbedding(layer, path)


def _at(module: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        module = module[p] if isinstance(p, int) else getattr(module, str(p))
    return module


def _returning(module: Any, value: Any) -> None:
    """Makes ``module`` (in a merged copy) return ``value`` when called."""
    klass = type(module)

    def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
        return value

    module.__class__ = type(
        klass.__name__, (klass,), {"__call__": __call__, "__module__": klass.__module__}
    )


def _loss(loss: Any) -> Any:
    def fn(y: Any, pred: Any) -> Any:
        if loss is None:
            raise InputError(
                "target='loss' on a flax module needs loss=: a callable (prediction, target) "
                "of jax arrays returning one value per sample",
                argument="loss",
            )
        return loss(pred, y)

    return fn


class _Call:
    """What one ``attributions`` call brings to the compiled steps, read only while jax traces
    them (through ``_jax_call``): the cache keeps no call's inputs, target or labels alive."""

    def __init__(self, graphdef: Any, build: Any, emb: FlaxEmbedding | None) -> None:
        self.graphdef = graphdef
        self.build = build
        self.emb = emb
        self.target: Any = None
        self.loss: Any = None

    def aim(self, target: Target) -> None:
        """Sets the target (known once the model's output is)."""
        self.target = target
        self.loss = _loss(target.fn if target.kind == "loss" else None)


_STEPS: weakref.WeakKeyDictionary[Any, dict[Any, Any]] = weakref.WeakKeyDictionary()


def _total(state: Any, ts: list[Any], sel: Any, tok: Any) -> Any:
    nnx = importlib.import_module("flax.nnx")
    c = _JAX_CALL[-1]["flax"]
    m = nnx.merge(c.graphdef, state)
    if c.emb is not None:
        _returning(_at(m, c.emb.path), ts[0])
    out = _run(m, c, ts if tok is None else [tok])
    vals = _per_row(c.target, _Ops(), out, sel, sel.shape[0], c.loss)
    return vals.sum(), vals


def _run(m: Any, c: _Call, args: list[Any]) -> Any:
    inp = c.build(args)
    return _first(m(**inp) if isinstance(inp, dict) else m(*args))


def _predict(model: Any, call: _Call, state: Any, args: list[np.ndarray], names: Any) -> Any:
    """The module's output for ``args`` (token ids or inputs), compiled once per model, graph
    and input structure; rows padded to few sizes."""
    jax = importlib.import_module("jax")
    nnx = importlib.import_module("flax.nnx")
    key = ("forward", call.graphdef, tuple(names), _structure(call.build, len(args)))
    per_model = _STEPS.setdefault(model, {})
    if key not in per_model:

        def forward(st: Any, ts: list[Any]) -> Any:
            c = _JAX_CALL[-1]["flax"]
            return _run(nnx.merge(c.graphdef, st), c, ts)

        per_model[key] = jax.jit(forward)
    n = len(args[0])
    pad = np.concatenate([np.arange(n), np.zeros(_bucket(n) - n, dtype=np.int64)])
    with _jax_call(flax=call):
        out = per_model[key](state, [jax.numpy.asarray(a[pad]) for a in args])
    return np.asarray(out)[:n]


def _step(model: Any, call: _Call, names: list[str]) -> Any:
    jax = importlib.import_module("jax")
    t = call.target
    key = (
        call.graphdef,
        t.kind,
        _Same(t.fn),
        tuple(names),
        _structure(call.build, len(names)),
        None if call.emb is None else call.emb.path,
    )
    per_model = _STEPS.setdefault(model, {})
    if key not in per_model:
        if len(per_model) >= 8:
            per_model.pop(next(iter(per_model)))

        def total(state: Any, ts: list[Any], sel: Any, tok: Any) -> Any:
            # a new function per key: jax keeps a jitted function's traces per function object
            return _total(state, ts, sel, tok)

        # the inner jit: flax merges the module (and its random streams, which an RNN's
        # carry initialiser advances) at the trace level where it runs
        per_model[key] = jax.jit(jax.value_and_grad(jax.jit(total), argnums=1, has_aux=True))
    return per_model[key]


def _grad(model: Any, state: Any, call: _Call, names: list[str], tokens: Any) -> GradFn:
    jnp = importlib.import_module("jax.numpy")
    step = _step(model, call, names)

    def grad(rows: list[np.ndarray], idx: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        n = len(idx)
        pad = np.concatenate([np.arange(n), np.zeros(_bucket(n) - n, dtype=np.int64)])
        sel = jnp.asarray(call.target.rows(idx[pad]))
        tok = None if tokens is None else jnp.asarray(tokens[idx[pad]])
        with _jax_call(flax=call):
            (_, vals), gs = step(state, [jnp.asarray(r[pad]) for r in rows], sel, tok)
        return np.asarray(vals, np.float64)[:n], [np.asarray(g, np.float64)[:n] for g in gs]

    return grad


def prepare_flax(
    model: Any,
    x: Any,
    spec: Any,
    y: Any,
    loss: Any,
    embedding: str | None,
    mask: Any = None,
    lengths: Any = None,
) -> tuple[list[str], list[np.ndarray], GradFn, dict[str, Any], Any, str | None]:
    """``prepare`` for an ``nnx.Module``: ``(input names, inputs, grad, target description,
    feed, embedding name)``, as :func:`rnnscope._attributions_fw.prepare` returns them."""
    if mask is not None or lengths is not None:
        raise InputError(
            "mask=/lengths=: flax.nnx modules are attributed on unpadded sequences only; got "
            f"{'mask' if mask is not None else 'lengths'}= (attribute each sample alone)",
            argument="mask" if mask is not None else "lengths",
        )
    nnx = importlib.import_module("flax.nnx")
    names, xs, build = _inputs(model, x, keras=False)
    feed, emb_name, emb = _Feed(), None, None
    if any(a.dtype.kind in "iu" for a in xs):
        if len(xs) > 1:
            raise InputError(
                f"x: integer token inputs are attributed for single-input models only; got "
                f"{len(xs)} inputs ({', '.join(names)})",
                argument="x",
            )
        emb_name, emb = _find_embed(model, embedding)
        check_tokens(xs[0], emb_name, int(emb.layer.num_embeddings))
        feed = _Feed([xs[0].astype(np.int64)], [emb])
        feed.emb_names = [emb_name]
    else:
        _check_sequences(xs, names)
    if len({len(a) for a in xs}) != 1:
        raise InputError(
            f"x: every input needs the same batch size; got {[len(a) for a in xs]}", argument="x"
        )
    clone = nnx.clone(model)
    clone.eval()
    graphdef, state = nnx.split(clone)
    call = _Call(graphdef, build, emb)
    fed = [feed.tokens] if feed.tokens is not None else xs
    target = Target(spec, _predict(model, call, state, fed, names), y, loss)
    call.aim(target)
    grad = _grad(model, state, call, names, feed.tokens)
    meta = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in target.meta.items()}
    if emb is not None:
        xs = [emb.embed(feed.tokens)]  # type: ignore[arg-type]
    return names, xs, grad, meta, feed, emb_name
