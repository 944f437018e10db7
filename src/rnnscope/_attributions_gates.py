"""Gate attributions: integrated gradients with respect to one recurrent layer's gate activations.

The variables are the layer's gate activations ``G`` at every timestep, per direction, as the
trace records them. The layer's state and output are recomputed from ``G`` by the cell's state
equations, in the framework's own ops, and put in place of the layer's output; the rest of the
model runs on it. ``F(G)`` is the target's value; at the real gates it is the model's output.

- LSTM, variables input ``i``, forget ``f``, cell candidate ``g``, output ``o``:
  ``c_t = f_t c_{t-1} + i_t g_t``, ``h_t = o_t act(c_t)``.
- GRU, variables update ``z`` and reset ``r``; the candidate is recomputed from ``r``, with its
  input term held at its real value: ``n_t = act(x_t W_n + b_n + r_t (h_{t-1} U_n + b_hn))``
  (reset after, torch's and Keras 3's default) or ``act(x_t W_n + b_n + (r_t h_{t-1}) U_n)``
  (Keras ``reset_after=False``), then ``h_t = z_t h_{t-1} + (1 - z_t) n_t`` (Keras's and torch's
  convention: ``z`` keeps the old state).

Integrated gradients run from a baseline ``G0`` to ``G`` along the straight path, with the rules
of :func:`rnnscope.attributions`; completeness: the attributions sum to ``F(G) - F(G0)`` up to
``delta``. Gradients come from the framework's autodiff through ``_attributions_fw``'s grad
functions, with the layer's output injected for one pass (a torch forward hook, or the Keras
layer's ``call`` replaced), and nothing left on the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._attributions import _Rows, quadrature
from ._attributions_fw import _check_sequences, _keras_grad, _mask_check, _Target, _torch_grad
from ._attributions_gates_fw import GateFeed, KerasSite, TorchSite
from ._errors import InputError, UnsupportedError
from ._frameworks import find_framework, type_name

__all__ = ["GATE_VARIABLES", "GateAttribution", "gate_attributions"]

GATE_VARIABLES = {"LSTM": ("input", "forget", "cell", "output"), "GRU": ("update", "reset")}
"""The gate activations that are variables, per cell, in the order of the ``gate`` axis."""

_NEUTRAL = {"LSTM": (0.5, 0.5, 0.0, 0.5), "GRU": (0.5, 0.5)}
BASELINES = ("neutral", "input")


@dataclasses.dataclass(frozen=True, eq=False)
class GateAttribution:
    """Integrated gradients of a target with respect to one layer's gate activations.

    Attributes:
        values: per direction (``"forward"``, ``"backward"``), ``(batch, time, gate, units)``:
            the attribution of the target to each gate activation, time in input order.
        gates: the names along the ``gate`` axis (LSTM: input, forget, cell, output; GRU:
            update, reset).
        layer: the layer's name; cell: ``"LSTM"`` or ``"GRU"``.
        gate_values: per direction, the real gate activations ``G`` (same shape as ``values``).
        baseline: per direction, the baseline ``G0``; baseline_kind: ``"neutral"``, ``"input"``
            or ``"array"``.
        target: what was explained, as in :class:`rnnscope.Attribution`.
        delta: ``(batch,)`` the sum of all attributions minus ``F(G) - F(G0)``.
        output: ``(batch,)`` ``F(G)``, the target's value on the model's own output;
            baseline_output: ``(batch,)`` ``F(G0)``.
        method: ``"integrated_gradients"``; settings: ``n_steps``, ``rule``.

    Example:
        >>> a = rnnscope.gate_attributions(model, x, layer="lstm")
        >>> a.get("forget").shape  # (batch, time, units)
        (8, 5, 4)
    """

    values: Mapping[str, np.ndarray]
    gates: tuple[str, ...]
    layer: str
    cell: str
    gate_values: Mapping[str, np.ndarray]
    baseline: Mapping[str, np.ndarray]
    baseline_kind: str
    target: dict[str, Any]
    delta: np.ndarray
    output: np.ndarray
    baseline_output: np.ndarray
    method: str = "integrated_gradients"
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def directions(self) -> tuple[str, ...]:
        """``("forward",)`` or ``("forward", "backward")``."""
        return tuple(self.values)

    def get(self, gate: str, direction: str = "forward") -> np.ndarray:
        """``(batch, time, units)``: one gate's attributions in one direction."""
        if direction not in self.values:
            raise InputError(
                f"direction must be one of {', '.join(self.values)}; got {direction!r}",
                argument="direction",
            )
        if gate not in self.gates:
            raise InputError(
                f"gate must be one of {', '.join(self.gates)} ({self.cell}); got {gate!r}",
                argument="gate",
            )
        return np.asarray(self.values[direction][:, :, self.gates.index(gate)])

    def per_gate_timestep(self, direction: str | None = None) -> np.ndarray:
        """``(batch, time, gate)``: the sum over units (and over directions when None)."""
        dirs = self.directions if direction is None else (direction,)
        return np.asarray(sum(self.values[d].sum(axis=3) for d in dirs))

    @property
    def per_timestep(self) -> np.ndarray:
        """``(batch, time)``: the signed sum over directions, gates and units."""
        return np.asarray(self.per_gate_timestep().sum(axis=2))

    @property
    def per_gate(self) -> np.ndarray:
        """``(batch, gate)``: the signed sum over directions, time and units."""
        return np.asarray(self.per_gate_timestep().sum(axis=1))

    def __repr__(self) -> str:
        shape = next(iter(self.values.values())).shape
        return (
            f"GateAttribution({self.layer!r}, {self.cell}, {'+'.join(self.directions)}, values "
            f"{shape}, target {self.target.get('kind')}, max |delta| "
            f"{np.abs(self.delta).max():.3g})"
        )


# -- the public function -----------------------------------------------------------------------


def _site(model: Any, fw_name: str, layer: Any) -> tuple[Any, str, str]:
    """``(site, layer name, cell)`` of the chosen recurrent layer."""
    from ._api import resolve
    from ._select import select

    src = resolve(model)
    ref = select(src.refs, layer, src.name, recurrent=True, path=src.path)
    name, kind = ref.info.name, ref.info.kind
    w = ref.extract()
    cell = getattr(w, "cell", kind)
    if cell not in GATE_VARIABLES:
        raise UnsupportedError(
            f"gate attributions: layer '{name}' is a {kind}; expected an LSTM or GRU layer",
            layer=name,
        )
    if getattr(w, "proj_size", None):
        raise UnsupportedError(
            f"gate attributions: layer '{name}' has a projection (proj_size); not supported",
            layer=name,
        )
    if fw_name == "torch":
        module, k = ref.obj if isinstance(ref.obj, tuple) else (ref.obj, 0)
        if not hasattr(module, "num_layers"):
            raise UnsupportedError(
                f"gate attributions: layer '{name}' is a {type_name(module)}; expected an "
                "nn.LSTM or nn.GRU module (cells called in a loop are not supported)",
                layer=name,
            )
        return TorchSite(module, k, cell), name, cell
    return KerasSite(ref.obj, cell, fw_name), name, cell


def _gates(
    model: Any, x: np.ndarray, site: Any, name: str, cell: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(batch, direction, time, gate, units)``: the trace's gates for model input ``x``, and
    the model's output on ``x``."""
    from ._api import trace

    inp, out = site.capture(model, x)
    t = trace(model, inp, layer=name)
    per_dir = [np.stack([t.get(g, d) for g in GATE_VARIABLES[cell]], axis=2) for d in t.directions]
    return np.stack(per_dir, axis=1), out


def _integrate(
    rows: _Rows, gates: np.ndarray, base: np.ndarray, n_steps: int, rule: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(attributions, F(G), F(G0))``: integrated gradients, the end points in the same pass."""
    alphas, steps = quadrature(rule, n_steps)
    b = len(gates)
    path = [(base + a * (gates - base)).astype(gates.dtype) for a in alphas]
    vals, (grads,) = rows(
        [np.concatenate([*path, gates, base])], np.tile(np.arange(b), len(alphas) + 2)
    )
    n = len(alphas) * b
    total = np.tensordot(steps, grads[:n].reshape(len(alphas), *gates.shape), axes=1)
    return total * (gates.astype(np.float64) - base), vals[n : n + b], vals[n + b :]


def _baseline(
    baseline: Any,
    gates: np.ndarray,
    cell: str,
    model: Any,
    x: np.ndarray,
    site: Any,
    name: str,
    input_baseline: Any,
) -> tuple[np.ndarray, str]:
    if isinstance(baseline, str):
        if baseline == "neutral":
            values = np.asarray(_NEUTRAL[cell], dtype=gates.dtype).reshape(-1, 1)
            return np.ascontiguousarray(np.broadcast_to(values, gates.shape)), "neutral"
        if baseline == "input":
            ref = np.zeros_like(x) if input_baseline is None else input_baseline
            ref = np.asarray(ref, dtype=x.dtype)
            try:
                ref = np.ascontiguousarray(np.broadcast_to(ref, x.shape))
            except ValueError as err:
                raise InputError(
                    f"input_baseline: expected an array broadcastable to x's {x.shape}; got "
                    f"shape {ref.shape}",
                    argument="input_baseline",
                ) from err
            return _gates(model, ref, site, name, cell)[0], "input"
        raise InputError(
            f"baseline must be one of {', '.join(BASELINES)} or an array of gates; got "
            f"{baseline!r}",
            argument="baseline",
        )
    if isinstance(baseline, Mapping):
        arr = np.stack(
            [np.asarray(baseline[d]) for d in ("forward", "backward")[: gates.shape[1]]], 1
        )
    else:
        arr = np.asarray(baseline)
        if arr.ndim == 4 and gates.shape[1] == 1:
            arr = arr[:, None]
    try:
        out = np.ascontiguousarray(np.broadcast_to(arr, gates.shape), dtype=gates.dtype)
    except ValueError as err:
        raise InputError(
            f"baseline: expected gates broadcastable to (batch, time, gate, units) = "
            f"{(gates.shape[0], *gates.shape[2:])} per direction; got shape {arr.shape}",
            argument="baseline",
        ) from err
    if not np.isfinite(out).all():
        raise InputError(
            f"baseline: expected finite gate values; got {int((~np.isfinite(out)).sum())} NaN "
            "or infinite value(s)",
            argument="baseline",
        )
    return out, "array"


def _model_input(model: Any, x: Any, fw: Any) -> np.ndarray:
    if isinstance(x, (list, tuple, dict)):
        raise InputError(
            "x: gate attributions take one (batch, time, features) float input; multi-input "
            "models are not supported",
            argument="x",
        )
    arr = np.asarray(x)
    if arr.ndim != 3 or arr.dtype.kind != "f":
        raise InputError(
            f"x: expected a (batch, time, features) float array; got shape {arr.shape}, dtype "
            f"{arr.dtype}",
            argument="x",
        )
    _check_sequences([arr], ["x"])
    if fw.name == "torch":
        p = next(model.parameters(), None)
        if p is not None:
            return np.ascontiguousarray(arr, dtype=str(p.dtype).rsplit(".", 1)[-1])
    return np.ascontiguousarray(arr, dtype=np.float32)


def gate_attributions(
    model: Any,
    x: Any,
    layer: str | int | None = None,
    target: Any = None,
    *,
    baseline: Any = "neutral",
    input_baseline: Any = None,
    n_steps: int = 50,
    rule: str = "gausslegendre",
    internal_batch_size: int | None = None,
    y: Any = None,
    loss: Any = None,
) -> GateAttribution:
    """Integrated gradients of a target with respect to a recurrent layer's gate activations.

    The gates of ``layer`` at every timestep are the variables; the layer's states and output
    are recomputed from them by the cell's equations and the rest of the model runs on that
    (see the README section "Gate attributions" for the exact definition).

    Args:
        model: a torch model (the layer an ``nn.LSTM``/``nn.GRU``; of a stacked module, one
            layer ``<path>.l<k>``) or a Keras 3 model (``LSTM``, ``GRU``, or ``Bidirectional``
            of them) on TensorFlow, JAX or torch, or a tf-keras model of the same layers.
        x: the model's ``(batch, time, features)`` float input.
        layer: the recurrent layer, as in :func:`rnnscope.trace` (name, substring or index);
            None when the model has one.
        target: as in :func:`rnnscope.attributions` (None: the predicted class; an int or one
            per sample; ``(timestep, unit)``; a callable; ``"loss"`` with ``y``).
        baseline: ``"neutral"`` (sigmoid gates at 0.5, their value at pre-activation 0, the
            LSTM's cell candidate at 0), ``"input"`` (the gates the trace gives for the model
            input ``input_baseline``, zeros by default), or an array of gates broadcastable to
            ``(batch, time, gate, units)`` (a dict per direction for a bidirectional layer).
        input_baseline: for ``baseline="input"``: the model input whose gates are the baseline.
        n_steps: the number of points of the rule.
        rule: as in :func:`rnnscope.attributions` (``"gausslegendre"``, ``"riemann_*"``).
        internal_batch_size: rows per forward/backward pass (None: all at once).
        y: targets for ``target="loss"``.
        loss: the loss for ``target="loss"``, as in :func:`rnnscope.attributions`.

    Returns:
        A :class:`GateAttribution`.

    Raises:
        InputError: an argument of the wrong kind or shape; the message names it.
        UnsupportedError: a layer that is not an LSTM/GRU, a mask, a packed sequence, an
            initial state, or another framework.

    Example:
        >>> a = rnnscope.gate_attributions(model, x, layer="lstm", target=0)
        >>> a.per_gate.shape  # (batch, gate): input, forget, cell, output
        (8, 4)
    """
    fw = find_framework(model)
    if fw is None or fw.name not in ("torch", "keras", "tf_keras"):
        raise UnsupportedError(
            "gate attributions need a live torch, Keras 3 or tf-keras model; got "
            f"{type_name(model)}"
        )
    xa = _model_input(model, x, fw)
    if fw.name != "torch":
        _mask_check(model)
    site, name, cell = _site(model, fw.name, layer)
    gates, real = _gates(model, xa, site, name, cell)
    base, kind = _baseline(baseline, gates, cell, model, xa, site, name, input_baseline)
    tgt = _Target(target, real, y, loss)
    feed = GateFeed(xa, site)
    if fw.name == "torch":
        grad = _torch_grad(model, lambda v: v[0], tgt, feed)
    else:
        backend = fw.capture.backend  # type: ignore[attr-defined]
        grad = _keras_grad(fw.name, backend, model, lambda v: v[0], tgt, ["input"], feed)
    values, ends, starts = _integrate(_Rows(grad, internal_batch_size), gates, base, n_steps, rule)
    delta = values.reshape(len(xa), -1).sum(axis=1) - (ends - starts)
    dirs = ("forward", "backward")[: gates.shape[1]]
    meta = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in tgt.meta.items()}
    return GateAttribution(
        values={d: values[:, k] for k, d in enumerate(dirs)},
        gates=GATE_VARIABLES[cell],
        layer=name,
        cell=cell,
        gate_values={d: gates[:, k] for k, d in enumerate(dirs)},
        baseline={d: base[:, k] for k, d in enumerate(dirs)},
        baseline_kind=kind,
        target=meta,
        delta=delta,
        output=ends,
        baseline_output=starts,
        settings={"n_steps": int(n_steps), "rule": rule},
    )
