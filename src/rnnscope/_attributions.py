"""Per-timestep input attributions: which inputs, at which timesteps, drove an output.

``attributions`` turns a model, its input and a target into :class:`Attribution` records. The
methods are written once here in numpy over one primitive, "the target's value and its gradient
with respect to the inputs, for a batch of rows", which each framework provides through its own
autodiff (``_attributions_fw.py``). Integrated gradients follow Captum's conventions (its
quadrature rules and their names, its convergence delta), so torch results equal Captum's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ._attributions_fw import GradFn, prepare
from ._attributions_tokens import token_baseline
from ._enums import StrEnum
from ._errors import InputError

__all__ = ["Attribution", "Method", "attributions", "quadrature"]


class Method(StrEnum):
    """The attribution methods of :func:`attributions`."""

    SALIENCY = "saliency"
    GRADIENT_X_INPUT = "gradient_x_input"
    INTEGRATED_GRADIENTS = "integrated_gradients"
    SMOOTHGRAD = "smoothgrad"
    OCCLUSION = "occlusion"


RULES = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")


@dataclasses.dataclass(frozen=True, eq=False)
class Attribution:
    """Attributions of one input of a model, for a batch of sequences.

    Attributes:
        values: ``(batch, time, features)`` attributions of the target to each input value
            (token inputs: ``(batch, time, 1)``, summed over the embedding dimension).
        method: the method's name, e.g. ``"integrated_gradients"``.
        target: what was explained: ``"class"``/``"unit"`` with ``index`` per sample, a
            ``(timestep, unit)`` pair, ``"callable"`` or ``"loss"``, as a dict.
        baseline: the baseline the method compared against (integrated gradients, occlusion),
            shaped like the input, or None.
        delta: ``(batch,)`` convergence delta of integrated gradients: the sum of every input's
            attributions minus ``f(x) - f(baseline)``; None for other methods.
        input: the input's name (``"input"`` for a single-input model).
        settings: the method's settings (``n_steps``, ``rule``, ``window``...).
        mask: ``(batch, time)`` booleans, True at a real step, for a padded float input (the
            mask held fixed along the method's every pass); None without one. Masked steps'
            values are exactly 0, so the summaries leave them out.

    Example:
        >>> a = rnnscope.attributions(model, x)
        >>> a.values.shape, a.per_timestep.shape
        ((8, 5, 3), (8, 5))
    """

    values: np.ndarray
    method: str
    target: dict[str, Any]
    baseline: np.ndarray | None
    delta: np.ndarray | None
    input: str = "input"
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    mask: np.ndarray | None = None

    @property
    def per_timestep(self) -> np.ndarray:
        """``(batch, time)``: the signed sum over features at each timestep."""
        return np.asarray(self.values.sum(axis=2))

    @property
    def per_timestep_abs(self) -> np.ndarray:
        """``(batch, time)``: the sum of absolute values over features at each timestep."""
        return np.asarray(np.abs(self.values).sum(axis=2))

    @property
    def per_feature(self) -> np.ndarray:
        """``(batch, features)``: the signed sum over time of each feature."""
        return np.asarray(self.values.sum(axis=1))

    def __repr__(self) -> str:
        d = "" if self.delta is None else f", max |delta| {np.abs(self.delta).max():.3g}"
        return (
            f"Attribution({self.input!r}, {self.method}, values {self.values.shape}, "
            f"target {self.target.get('kind')}{d})"
        )


def quadrature(rule: str, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``(alphas, step sizes)`` of an integration rule on [0, 1], named as Captum names them.

    Example:
        >>> quadrature("riemann_trapezoid", 3)[1].tolist()
        [0.16666666666666666, 0.3333333333333333, 0.16666666666666666]
    """
    if not isinstance(n_steps, (int, np.integer)) or n_steps < 2:
        raise InputError(f"n_steps must be an integer >= 2; got {n_steps!r}", argument="n_steps")
    n = int(n_steps)
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)
        return 0.5 * (nodes + 1.0), 0.5 * weights
    if rule not in RULES:
        raise InputError(f"rule must be one of {', '.join(RULES)}; got {rule!r}", argument="rule")
    steps = np.full(n, 1.0 / n)
    kind = rule.split("_", 1)[1]
    if kind == "trapezoid":
        steps[0] /= 2
        steps[-1] /= 2
        alphas = np.linspace(0.0, 1.0, n)
    else:
        start = {"left": 0.0, "middle": 0.5 / n, "right": 1.0 / n}[kind]
        alphas = start + np.arange(n) / n
    return alphas, steps


# -- the primitive ------------------------------------------------------------------------------


class _Rows:
    """Evaluates the target and its input gradients over many rows, ``batch_size`` at a time."""

    def __init__(self, grad: GradFn, batch_size: int | None) -> None:
        if batch_size is not None and (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1
        ):
            raise InputError(
                f"internal_batch_size must be None or an integer >= 1; got {batch_size!r}",
                argument="internal_batch_size",
            )
        self.grad = grad
        self.batch_size = batch_size

    def __call__(
        self, xs: list[np.ndarray], idx: np.ndarray
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        n = len(idx)
        size = n if not self.batch_size else int(self.batch_size)
        vals: list[np.ndarray] = []
        grads: list[list[np.ndarray]] = [[] for _ in xs]
        for lo in range(0, n, size):
            v, g = self.grad([x[lo : lo + size] for x in xs], idx[lo : lo + size])
            vals.append(np.asarray(v, dtype=np.float64).reshape(-1))
            for k, gk in enumerate(g):
                grads[k].append(np.asarray(gk, dtype=np.float64))
        return np.concatenate(vals), [np.concatenate(g) for g in grads]


def _saliency(rows: _Rows, xs: list[np.ndarray], absolute: bool) -> list[np.ndarray]:
    _, grads = rows(xs, np.arange(len(xs[0])))
    return [np.abs(g) if absolute else g for g in grads]


def _integrated(
    rows: _Rows,
    xs: list[np.ndarray],
    bases: list[np.ndarray],
    n_steps: int,
    rule: str,
) -> tuple[list[np.ndarray], np.ndarray]:
    alphas, steps = quadrature(rule, n_steps)
    b = len(xs[0])
    scaled = [
        np.concatenate([base + a * (x - base) for a in alphas]).astype(x.dtype)
        for x, base in zip(xs, bases, strict=True)
    ]
    # the end points ride along in the same passes (one eager call costs as much as many rows)
    ends_rows = [np.concatenate([s, x, base]) for s, x, base in zip(scaled, xs, bases, strict=True)]
    idx = np.tile(np.arange(b), len(alphas) + 2)
    vals, grads = rows(ends_rows, idx)
    n = len(alphas) * b
    ends, starts = vals[n : n + b], vals[n + b :]
    attrs = []
    for x, base, g in zip(xs, bases, grads, strict=True):
        total = np.tensordot(steps, g[:n].reshape(len(alphas), b, *g.shape[1:]), axes=1)
        attrs.append(total * (x.astype(np.float64) - base.astype(np.float64)))
    summed = sum(a.reshape(b, -1).sum(axis=1) for a in attrs)
    return attrs, np.asarray(summed - (ends - starts))


def _smooth(
    rows: _Rows, xs: list[np.ndarray], noise: list[np.ndarray], absolute: bool
) -> list[np.ndarray]:
    s, b = noise[0].shape[0], len(xs[0])
    noisy = [
        (np.concatenate([x] * s) + nz.reshape(s * b, *x.shape[1:])).astype(x.dtype)
        for x, nz in zip(xs, noise, strict=True)
    ]
    _, grads = rows(noisy, np.tile(np.arange(b), s))
    out = []
    for g in grads:
        g = np.abs(g) if absolute else g
        out.append(g.reshape(s, b, *g.shape[1:]).mean(axis=0))
    return out


def _windows(t: int, window: int, stride: int) -> list[int]:
    if not isinstance(window, (int, np.integer)) or not 1 <= window <= t:
        raise InputError(
            f"window must be an integer from 1 to the {t} timesteps; got {window!r}",
            argument="window",
        )
    if not isinstance(stride, (int, np.integer)) or stride < 1:
        raise InputError(f"stride must be an integer >= 1; got {stride!r}", argument="stride")
    # as Captum: enough windows to reach the end, the last one cut at the last timestep
    return [k * stride for k in range(-(-(t - window) // stride) + 1)]


def _occlusion(
    rows: _Rows,
    xs: list[np.ndarray],
    bases: list[np.ndarray],
    window: int,
    stride: int,
    mask: np.ndarray | None = None,
) -> list[np.ndarray]:
    b = len(xs[0])
    idx = np.arange(b)
    full, _ = rows(xs, idx)
    if mask is not None:
        return [_occlusion_masked(rows, xs[0], bases[0], window, stride, mask, full)]
    out = []
    for k, (x, base) in enumerate(zip(xs, bases, strict=True)):
        starts = _windows(x.shape[1], window, stride)
        ablated = []
        for s in starts:
            xa = x.copy()
            xa[:, s : s + window] = base[:, s : s + window]
            ablated.append(xa)
        others = [np.concatenate([o] * len(starts)) for o in xs]
        others[k] = np.concatenate(ablated)
        vals, _ = rows(others, np.tile(idx, len(starts)))
        diffs = full[None, :] - vals.reshape(len(starts), b)
        total = np.zeros(x.shape, dtype=np.float64)
        count = np.zeros(x.shape[1], dtype=np.float64)
        for s, d in zip(starts, diffs, strict=True):
            total[:, s : s + window] += d.reshape(b, *([1] * (x.ndim - 1)))
            count[s : s + window] += 1
        out.append(total / count.reshape(1, -1, *([1] * (x.ndim - 2))))
    return out


def _occlusion_masked(
    rows: _Rows,
    x: np.ndarray,
    base: np.ndarray,
    window: int,
    stride: int,
    mask: np.ndarray,
    full: np.ndarray,
) -> np.ndarray:
    """Occlusion of a padded single input: each sample's windows run over its own real steps
    (as if alone, unpadded), so a window never fills padding; a sample shorter than the window
    gets one window over all its real steps."""
    _windows(x.shape[1], window, stride)  # the argument checks
    ablated, owner, spans = [], [], []
    for i in range(len(x)):
        pos = np.flatnonzero(mask[i])
        w = min(int(window), len(pos))
        for s in _windows(len(pos), w, stride) if len(pos) else []:
            xa = x[i].copy()
            xa[pos[s : s + w]] = base[i, pos[s : s + w]]
            ablated.append(xa)
            owner.append(i)
            spans.append(pos[s : s + w])
    total = np.zeros(x.shape, dtype=np.float64)
    count = np.zeros(x.shape[:2], dtype=np.float64)
    if ablated:
        vals, _ = rows([np.stack(ablated)], np.asarray(owner))
        for i, span, v in zip(owner, spans, vals, strict=True):
            total[i, span] += full[i] - v
            count[i, span] += 1
    return total / np.maximum(count, 1)[:, :, None]


# -- the public function ------------------------------------------------------------------------
def _prepare(model: Any) -> Any:
    """The framework's ``prepare``: flax modules have their own (``_attributions_flax.py``)."""
    from ._frameworks import find_framework

    fw = find_framework(model)
    if fw is not None and fw.name == "flax":
        from ._attributions_flax import prepare_flax

        return prepare_flax
    return prepare


def _method(value: Any) -> Method:
    try:
        return Method(value)
    except ValueError as err:
        raise InputError(
            f"method must be one of {', '.join(m.value for m in Method)}; got {value!r}",
            argument="method",
        ) from err


def _baselines(baseline: Any, xs: list[np.ndarray], names: list[str]) -> list[np.ndarray]:
    if baseline is None:
        return [np.zeros_like(x) for x in xs]
    given = baseline if isinstance(baseline, (list, tuple)) else [baseline]
    if isinstance(baseline, dict):
        given = [baseline[n] for n in names]
    if len(given) != len(xs):
        raise InputError(
            f"baseline: expected one per input ({len(xs)}); got {len(given)}", argument="baseline"
        )
    out = []
    for x, g, name in zip(xs, given, names, strict=True):
        arr = np.asarray(g, dtype=x.dtype)
        try:
            out.append(np.ascontiguousarray(np.broadcast_to(arr, x.shape)))
        except ValueError as err:
            raise InputError(
                f"baseline of input '{name}': expected a scalar or an array broadcastable to "
                f"{x.shape}; got shape {arr.shape}",
                argument="baseline",
            ) from err
        if not np.isfinite(out[-1]).all():
            raise InputError(
                f"baseline of input '{name}': expected finite values; got "
                f"{int((~np.isfinite(out[-1])).sum())} NaN or infinite value(s)",
                argument="baseline",
            )
    return out


def _noise(
    noise: Any, xs: list[np.ndarray], n_samples: int, stdev: float, seed: int | None
) -> list[np.ndarray]:
    if noise is not None:
        given = list(noise) if isinstance(noise, (list, tuple)) else [noise]
        out = [np.asarray(n, dtype=np.float64) for n in given]
        for x, n in zip(xs, out, strict=True):
            if n.ndim != x.ndim + 1 or n.shape[1:] != x.shape:
                raise InputError(
                    f"noise: expected (n_samples, *{x.shape}); got {n.shape}", argument="noise"
                )
        return out
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise InputError(
            f"n_samples must be an integer >= 1; got {n_samples!r}", argument="n_samples"
        )
    if (
        isinstance(stdev, bool)
        or not isinstance(stdev, (int, float, np.number))
        or not (np.isfinite(stdev) and stdev > 0)
    ):
        raise InputError(f"stdev must be a finite number > 0; got {stdev!r}", argument="stdev")
    rng = np.random.default_rng(seed)
    return [rng.normal(0.0, stdev, (n_samples, *x.shape)) for x in xs]


def attributions(
    model: Any,
    x: Any,
    target: Any = None,
    method: str = "integrated_gradients",
    *,
    baseline: Any = None,
    n_steps: int = 50,
    rule: str = "gausslegendre",
    internal_batch_size: int | None = None,
    absolute: bool = True,
    n_samples: int = 5,
    stdev: float = 1.0,
    seed: int | None = 0,
    noise: Any = None,
    window: int = 1,
    stride: int = 1,
    y: Any = None,
    loss: Any = None,
    embedding: Any = None,
    mask: Any = None,
    lengths: Any = None,
) -> Attribution | list[Attribution]:
    """Attributions of a model's output to each input value at each timestep.

    Args:
        model: a Keras 3 (TensorFlow, JAX or torch backend), tf-keras, torch or ``flax.nnx``
            model.
        x: ``(batch, time, features)`` float input; a list or dict of arrays for several inputs;
            or ``(batch, time)`` integer token ids of a single-input model with an embedding
            layer, attributed at the embedding's output (see ``embedding``).
        target: what to explain, per sample: None (the predicted class: argmax of the last
            axis; for a sequence output, at the last timestep), an int (class or output unit), a
            sequence of ints (one per sample), ``(timestep, unit)`` for a sequence output (either
            may be a per-sample sequence), ``"loss"`` (the per-sample loss, given ``y``), or a
            callable taking the model's output tensor and returning one value per sample.
        method: ``"saliency"``, ``"gradient_x_input"``, ``"integrated_gradients"``,
            ``"smoothgrad"`` or ``"occlusion"``.
        baseline: integrated gradients and occlusion: the reference input (scalar, array
            broadcastable to the input, or one per input); zeros by default. Token inputs: zeros
            in embedding space by default, integer token ids (e.g. ``0``, a pad token: their
            embedding) or floats broadcastable to ``(batch, time, embedding dim)``.
        n_steps: integrated gradients: the number of points of the rule.
        rule: integrated gradients: ``"gausslegendre"``, ``"riemann_left"``,
            ``"riemann_right"``, ``"riemann_middle"`` or ``"riemann_trapezoid"``.
        internal_batch_size: rows per forward/backward pass (None: all at once).
        absolute: saliency and smoothgrad: absolute gradients (as Captum's ``abs=True``).
        n_samples: smoothgrad: noisy copies per sample.
        stdev: smoothgrad: the noise's standard deviation.
        seed: smoothgrad: the seed of the noise.
        noise: smoothgrad: the noise itself, ``(n_samples, *x.shape)`` per input, instead of a draw.
        window: occlusion: timesteps replaced by the baseline at once (all features).
        stride: occlusion: timesteps between windows.
        y: targets for ``target="loss"``, structured like the model's output.
        loss: for ``target="loss"``: Keras: a loss name, ``keras.losses.Loss`` or callable
            ``(y_true, y_pred)`` (default: the compiled loss); torch: a callable ``(prediction,
            target)`` such as ``torch.nn.CrossEntropyLoss()``.
        embedding: token inputs: the name of the embedding layer to attribute at (Keras layer
            name, torch module path or flax attribute path), needed only when the model has
            several and it cannot be told which one receives each input; several token inputs: a
            list (one name or None per input) or a dict (input name -> layer name).
        mask: a padded float input: ``(batch, time)`` booleans, True at a real step, held fixed
            for every pass (default: Keras ``Masking`` layers' mask of the real input; a torch
            ``PackedSequence`` as ``x`` brings its lengths). Keras: needs a ``Masking`` layer,
            which is given this mask; torch: see the README for how the model receives it.
        lengths: a padded float input: real steps per sample (right padding), instead of mask.

    Returns:
        An :class:`Attribution`; a list of them (one per input, in input order) for a model
        given a list or dict of inputs.

    Raises:
        InputError: an argument of the wrong kind or shape; the message names it.
        UnsupportedError: a Keras mask attributions cannot hold fixed (a ``Masking`` layer in
            a multi-input model, a mask passed inside a subclassed model's ``call``).

    Example:
        >>> a = rnnscope.attributions(model, x, target=0, method="integrated_gradients")
        >>> bool(abs(a.delta).max() < 1e-3)
        True
    """
    m = _method(method)
    names, xs, grad, meta, feed, _ = _prepare(model)(
        model, x, target, y, loss, embedding, mask=mask, lengths=lengths
    )
    rows = _Rows(grad, internal_batch_size)
    bases = delta = None
    settings: dict[str, Any] = {}
    if m in (Method.INTEGRATED_GRADIENTS, Method.OCCLUSION):
        if feed.all_tokens:
            baseline = _token_baselines(baseline, xs, names, feed)
        bases = _baselines(baseline, xs, names)
    if m == Method.SALIENCY:
        values = _saliency(rows, xs, absolute)
        settings = {"absolute": absolute}
    elif m == Method.GRADIENT_X_INPUT:
        values = [g * x for g, x in zip(_saliency(rows, xs, False), xs, strict=True)]
    elif m == Method.INTEGRATED_GRADIENTS:
        assert bases is not None
        values, delta = _integrated(rows, xs, bases, n_steps, rule)
        settings = {"n_steps": int(n_steps), "rule": rule}
    elif m == Method.SMOOTHGRAD:
        drawn = _noise(noise, xs, n_samples, stdev, seed)
        values = _smooth(rows, xs, drawn, absolute)
        settings = {"n_samples": len(drawn[0]), "stdev": stdev, "seed": seed, "absolute": absolute}
    else:
        assert bases is not None
        values = _occlusion(rows, xs, bases, window, stride, feed.mask)
        settings = {"window": int(window), "stride": int(stride)}
    if feed.mask is not None:  # masked steps: exactly 0, out of every sum
        values[0] = np.where(feed.mask[:, :, None], values[0], 0.0)
    records = []
    for k, v in enumerate(values):
        own = settings
        emb = feed.emb_names[k] if feed.emb_names else None
        if emb is not None:
            # token inputs: one value per token, summed over the embedding dimension
            # (occlusion gives every dimension the same drop: one of them)
            v = v[..., :1] if m == Method.OCCLUSION else v.sum(axis=2, keepdims=True)
            own = {**settings, "embedding": emb}
        records.append(
            Attribution(
                values=v,
                method=m.value,
                target=meta,
                baseline=None if bases is None else bases[k],
                delta=delta,
                input=names[k],
                settings=own,
                mask=feed.mask if k == 0 else None,
            )
        )
    several = isinstance(x, (list, tuple, dict)) and not hasattr(x, "batch_sizes")
    return records if several else records[0]  # (a PackedSequence is a tuple: one input)


def _token_baselines(baseline: Any, xs: list[np.ndarray], names: list[str], feed: Any) -> Any:
    """Baselines in embedding space for token inputs; float inputs' as given."""
    if len(xs) == 1:
        return token_baseline(baseline, xs[0], feed.injs[0], feed.all_tokens[0])
    given = baseline if isinstance(baseline, (list, tuple, dict)) else [baseline] * len(xs)
    if isinstance(given, dict):
        given = [given.get(n) for n in names]
    if len(given) != len(xs):
        raise InputError(
            f"baseline: expected one per input ({len(xs)}); got {len(given)}", argument="baseline"
        )
    out = []
    for x, b, inj, tok in zip(xs, given, feed.injs, feed.all_tokens, strict=True):
        if inj is not None:
            out.append(token_baseline(b, x, inj, tok))
        else:
            out.append(np.zeros_like(x) if b is None else b)
    return out
