"""Health flags: one line per finding, each with a severity, a short explanation and what to
look at next.

Each rule is one small function over a typed row (:class:`BlockRow` for one model's statistics,
:class:`ChangeRow` for a comparison): row in, flags out. Rules listed in :data:`RULES` with
``once=True`` fire for the first row of a (layer, direction) they apply to only. Before the rules,
each layer is checked against the standard initialisations (:mod:`rnnscope._inits`): a layer
that still holds its initial values gets one note ("untrained (matches ...)") instead of its
flags, and a model whose every layer does gets one note in all. Flags come out most serious
first (error, warning, note), in row order within a severity.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

from ._enums import Direction, Severity
from ._format import as_float
from ._inits import LayerInit, layer_init

__all__ = [
    "FLAG_COLUMNS",
    "RULES",
    "SLOPES",
    "BlockRow",
    "ChangeRow",
    "Flag",
    "Thresholds",
    "by_severity",
    "change_flags",
    "flags_for",
    "gate_reference",
    "gate_weighted",
    "recurrent_bound",
    "recurrent_reference",
]

_MIN_MOVING = 8  # blocks smaller than this are not flagged for moving fast
_GATED = ("LSTM", "GRU")


@dataclass(frozen=True)
class Thresholds:
    """When a statistic becomes a flag (defaults suit float32 models of ordinary scale).

    The recurrent kernel is judged against the largest singular value the standard
    initialisations give a random ``m x n`` recurrent kernel (``m`` inputs from the state,
    ``n = gates * units``): ``sigma_ref = max(1, s_g (sqrt(m) + sqrt(n)), s_t (sqrt(m) +
    sqrt(n)))`` with the element standard deviations of Glorot-uniform, ``s_g = sqrt(2 / (m +
    n))``, and of torch's uniform(-1/sqrt(units), 1/sqrt(units)), ``s_t = 1 / sqrt(3 units)``
    (a random matrix's largest singular value is close to ``s (sqrt(m) + sqrt(n))``; 1 is the
    orthogonal initialiser's). A SimpleRNN gets a warning above ``recurrent_high *
    sigma_ref``. A gated cell (LSTM, GRU) gets a note there; its warning looks at the
    gate-weighted bound ``J = sum_g slope_g * sigma_g`` (each gate block's largest singular
    value times the largest slope of its nonlinearity: 1/4 for a sigmoid gate, 1 for the tanh
    candidate), which bounds how much one step of the state update through the recurrent
    kernel can stretch a gradient, and warns above ``gated_high`` times the ``J`` a standard
    initialisation gives (:func:`gate_reference`).

    Attributes:
        near_zero_fraction: a weight matrix (a bias: a note) whose share of ``|w| < tol``
            exceeds this is flagged.
        abs_max: flag weights larger than this in magnitude.
        recurrent_high: the factor over ``sigma_ref`` above which a recurrent kernel is flagged
            (a SimpleRNN's a warning, a gated cell's a note).
        gated_high: the factor over the initial gate-weighted bound above which a gated cell's
            recurrent kernel gets a warning.
        recurrent_low: note a recurrent kernel whose largest singular value is below this.
        growth: flag a part whose L2 norm changed by more than this fraction per the run's
            shortest gap between checkpoints (comparisons only).
        init_z: how many standard errors a part's mean and variance may be from an
            initialiser's and still match it (:mod:`rnnscope._inits`).
        orthogonal_tol: how far from 1 an orthogonal recurrent kernel's singular values may be.
    """

    near_zero_fraction: float = 0.5
    abs_max: float = 10.0
    recurrent_high: float = 2.0
    gated_high: float = 8.0
    recurrent_low: float = 0.25
    growth: float = 0.5
    init_z: float = 5.0
    orthogonal_tol: float = 1e-4


def recurrent_reference(m: int, n: int, units: int) -> float:
    """``sigma_ref`` of an ``m x n`` recurrent kernel of ``units`` units (see
    :class:`Thresholds`).

    Example:
        >>> round(recurrent_reference(8, 8, 8), 3)  # SimpleRNN: Glorot's 2 s sqrt(8)
        2.0
    """
    root = math.sqrt(m) + math.sqrt(n)
    return max(1.0, math.sqrt(2 / (m + n)) * root, root / math.sqrt(3 * units))


SLOPES = {"input": 0.25, "forget": 0.25, "output": 0.25, "update": 0.25, "reset": 0.25}
"""The largest slope of each sigmoid gate's nonlinearity; any other gate (``cell``, ``new``,
a tanh candidate) counts with slope 1."""


def gate_weighted(sigmas: Mapping[str, float]) -> float:
    """``J = sum_g slope_g * sigma_g`` over a recurrent kernel's gate blocks (:data:`SLOPES`).

    Example:
        >>> gate_weighted({"input": 2.0, "forget": 2.0, "cell": 1.0, "output": 2.0})
        2.5
    """
    return sum(SLOPES.get(g, 1.0) * s for g, s in sigmas.items())


def gate_reference(m: int, n: int, units: int, gates: list[str]) -> float:
    """The gate-weighted bound ``J`` a standard initialisation gives an ``m x n`` recurrent
    kernel of ``units`` units and these gates: each ``m x units`` block's largest singular
    value is at most ``max(1, s_g (sqrt(m) + sqrt(units)), s_t (sqrt(m) + sqrt(units)))`` (the
    element deviations of :func:`recurrent_reference`, Glorot's over the whole kernel).

    Example:
        >>> round(gate_reference(32, 128, 32, ["input", "forget", "cell", "output"]), 2)
        2.21
    """
    root = math.sqrt(m) + math.sqrt(units)
    block = max(1.0, math.sqrt(2 / (m + n)) * root, root / math.sqrt(3 * units))
    return gate_weighted(dict.fromkeys(gates, block))


@dataclass(frozen=True)
class Flag:
    """One finding: ``severity`` is ``"error"``, ``"warning"`` or ``"note"`` (a
    :class:`~rnnscope._enums.Severity` given is kept as its plain string).

    ``rule`` names the finding (the rule that raised it, e.g. ``"recurrent_norm"``), so flags of
    many models can be grouped by (rule, where); ``value`` is the number the rule judged (NaN
    where there is none); ``hint`` says what to look at next.
    """

    severity: str
    model: str
    where: str
    message: str
    rule: str = ""
    value: float = math.nan
    hint: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity(self.severity).value)


@dataclass(frozen=True)
class BlockRow:
    """The fields of one statistics row (a ``stats`` record) that the flag rules read.

    Counts and ``tol`` are kept as given (they are printed as they are); the other numbers
    are floats, NaN where the row has none.
    """

    model: str
    layer: str
    kind: str
    part: str
    gate: str
    direction: str
    size: Any
    nan: Any
    inf: Any
    tol: Any
    frac_near_zero: float
    abs_max: float
    units: float
    dead_units: float
    matrix_spectral_norm: float
    shape: str = ""
    saturated_units: float = math.nan
    n_gates: int = 1
    gate_sigmas: tuple[tuple[str, float], ...] = ()  # every gate block's largest singular value

    @classmethod
    def of(cls, r: Mapping[str, Any]) -> BlockRow:
        """The typed row of a ``stats`` record."""
        return cls(
            model=r["model"],
            layer=r["layer"],
            kind=r.get("kind", ""),
            part=r["part"],
            gate=r.get("gate") or "",
            direction=r["direction"],
            size=r["size"],
            nan=r["nan"],
            inf=r["inf"],
            tol=r.get("tol"),
            frac_near_zero=as_float(r["frac_near_zero"]),
            abs_max=as_float(r["abs_max"]),
            units=as_float(r.get("units")),
            dead_units=as_float(r.get("dead_units")),
            matrix_spectral_norm=as_float(r.get("matrix_spectral_norm")),
            shape=str(r.get("shape") or ""),
            saturated_units=as_float(r.get("saturated_units")),
        )

    @property
    def where(self) -> str:
        """``layer / part [/ gate] [/ direction]`` (the forward direction left out)."""
        return _where(self.layer, self.part, self.gate, self.direction)

    @property
    def layer_where(self) -> str:
        """``layer [/ direction]`` (the forward direction left out)."""
        return self.layer + (
            f" / {self.direction}" if self.direction not in ("", Direction.FORWARD) else ""
        )

    def flag(
        self,
        severity: Severity,
        message: str,
        where: str | None = None,
        value: float = math.nan,
        hint: str = "",
    ) -> list[Flag]:
        """One flag of this row's model, at :attr:`where` unless told."""
        at = self.where if where is None else where
        return [Flag(severity, self.model, at, message, value=value, hint=hint)]


def _where(layer: str, part: str, gate: str, direction: str) -> str:
    bits = [layer, part]
    if gate:
        bits.append(gate)
    if direction and direction != Direction.FORWARD:
        bits.append(direction)
    return " / ".join(str(b) for b in bits)


Rule = Callable[[BlockRow, Thresholds], "list[Flag] | None"]
"""A flag rule: the flags of one row, or None where the rule does not apply to it."""


def _plot(r: BlockRow, kind: str) -> str:
    """The command that draws this row's layer: the model's own name (a file's, as the folder
    lists it) and the layer's, quoted for a POSIX shell."""
    model, layer = shlex.quote(str(r.model)), shlex.quote(str(r.layer))
    return f"rnnscope plot {model} --layer {layer} --kind {kind}"


def nonfinite_rule(r: BlockRow, t: Thresholds) -> list[Flag] | None:
    """NaN or Inf anywhere in the block."""
    if not (r.nan or r.inf):
        return None
    return r.flag(
        Severity.ERROR,
        f"{r.nan} NaN and {r.inf} Inf of {r.size} "
        "values: training diverged here, or the file is damaged",
        value=float(r.nan) + float(r.inf),
        hint="find the first checkpoint with NaN/Inf (rnnscope compare on the run's "
        "checkpoints, columns nan and inf) and lower the learning rate or clip gradients "
        "from there; rnnscope.keras.Monitor / rnnscope.torch.Monitor record the step it happens",
    )


def dead_units_rule(r: BlockRow, t: Thresholds) -> list[Flag] | None:
    """Units whose incoming weights are all near zero (once per layer and direction)."""
    if not r.dead_units > 0:
        return None
    return r.flag(
        Severity.WARNING,
        f"{int(r.dead_units)} of {int(r.units)} units "
        f"have every incoming weight below {r.tol:g}: they output a "
        "constant and learn nothing",
        r.layer_where,
        r.dead_units,
        f"{_plot(r, 'heatmap')}: the dead units are empty columns in every gate; check pruning "
        "masks and weight decay",
    )


def saturated_units_rule(r: BlockRow, t: Thresholds) -> list[Flag] | None:
    """Units with a gate pinned by its bias whatever the state and input (once per layer and
    direction; :func:`rnnscope._stats.saturated_units`)."""
    if not r.saturated_units > 0:
        return None
    return r.flag(
        Severity.WARNING,
        f"{int(r.saturated_units)} of {int(r.units)} units have a gate pinned at 0 or 1 by its "
        "bias, whatever the state and a standardised input: no gradient passes that gate",
        r.layer_where,
        r.saturated_units,
        f"{_plot(r, 'trace')}: the pinned gate stays flat; rnnscope stats shows the bias "
        "(|w| max); check the input scale and the learning rate",
    )


def near_zero_rule(r: BlockRow, t: Thresholds) -> list[Flag] | None:
    """Too large a share of near-zero weights: a warning in a weight matrix, a note in a bias
    (zero is where biases start)."""
    if not r.frac_near_zero > t.near_zero_fraction:
        return None
    bias = "bias" in r.part
    what = "bias values" if bias else "weights"
    return r.flag(
        Severity.NOTE if bias else Severity.WARNING,
        f"{r.frac_near_zero:.0%} of the {what} are below {r.tol:g}: "
        + ("never updated, or regularised to 0" if bias else "pruned, zeroed or over-regularised"),
        value=r.frac_near_zero,
        hint=f"{_plot(r, 'histogram')}: a spike at 0 means pruned or zeroed values; compare "
        "with an earlier checkpoint (rnnscope compare, column frac_near_zero)",
    )


def large_weights_rule(r: BlockRow, t: Thresholds) -> list[Flag] | None:
    """Weights larger than ``t.abs_max`` in magnitude."""
    if not r.abs_max > t.abs_max:
        return None
    return r.flag(
        Severity.WARNING,
        f"largest |weight| {r.abs_max:.3g} > "
        f"{t.abs_max:g}: large weights saturate the gates and can make "
        "gradients explode",
        value=r.abs_max,
        hint=f"{_plot(r, 'histogram')} shows how many are large; {_plot(r, 'trace')} shows "
        "saturated gates; lower the learning rate or add weight decay or gradient clipping",
    )


def _matrix_dims(r: BlockRow) -> tuple[int, int] | None:
    dims = [int(d) for d in r.shape.split("x") if d.isdigit()]
    if len(dims) != 2 or math.isnan(r.units):
        return None
    return dims[0], int(r.units) * r.n_gates


def recurrent_bound(kind: str, m: int, n: int, units: int, t: Thresholds) -> float:
    """The largest singular value above which a recurrent kernel of this kind and shape is
    flagged (a warning for a SimpleRNN, a note for a gated cell): ``t.recurrent_high *
    sigma_ref``; the report draws it.

    Example:
        >>> round(recurrent_bound("SimpleRNN", 8, 8, 8, Thresholds()), 2)
        4.0
    """
    return t.recurrent_high * recurrent_reference(m, n, units)


def recurrent_norm_rule(r: BlockRow, t: Thresholds) -> list[Flag] | None:
    """The recurrent kernel's largest singular value out of range (once per layer and
    direction: the row of its first gate carries the whole matrix's value), judged against
    :func:`recurrent_reference` of its size; a gated cell's warning by its gate-weighted bound
    (:func:`gate_weighted` over :func:`gate_reference`)."""
    sigma = r.matrix_spectral_norm
    dims = _matrix_dims(r)
    if r.part != "recurrent_kernel" or math.isnan(sigma) or dims is None:
        return None
    where = f"{r.layer} / recurrent_kernel" + (
        f" / {r.direction}" if r.direction not in ("", Direction.FORWARD) else ""
    )
    ref = recurrent_reference(*dims, int(r.units))
    high = recurrent_bound(r.kind, *dims, int(r.units), t)
    shape = f"{dims[0]}x{dims[1]}"
    hint = (
        f"{_plot(r, 'trace')}: watch whether the state grows or saturates; "
        "rnnscope.gradients shows whether gradients grow through time"
    )
    gated = any(g in r.kind for g in _GATED)
    if gated and len(r.gate_sigmas) > 1:
        sigmas = dict(r.gate_sigmas)
        j = gate_weighted(sigmas)
        j_ref = gate_reference(*dims, int(r.units), list(sigmas))
        if j > t.gated_high * j_ref:
            return r.flag(
                Severity.WARNING,
                f"gate-weighted recurrent bound {j:.3g} > {t.gated_high * j_ref:.3g} "
                f"({t.gated_high:g} x the {j_ref:.3g} a standard initialisation of this {shape} "
                "matrix gives; each gate's largest singular value times its slope, 1/4 for "
                f"sigmoid gates; the whole matrix's is {sigma:.3g}): even through the gates, "
                "gradients can grow from step to step, a classic cause of exploding gradients",
                where,
                sigma,  # the finding's value stays sigma max, note or warning (one trend)
                hint,
            )
    if sigma > high:
        return r.flag(
            Severity.NOTE if gated else Severity.WARNING,
            f"largest singular value {sigma:.3g} > {high:.3g} ({t.recurrent_high:g} x the "
            f"{ref:.3g} a standard initialisation of this {shape} matrix gives): through this "
            "matrix gradients can grow from step to step"
            + (
                " (the gates usually damp this)"
                if gated
                else ", a classic cause of exploding gradients"
            ),
            where,
            sigma,
            hint,
        )
    if sigma < t.recurrent_low:
        return r.flag(
            Severity.NOTE,
            f"largest singular value {sigma:.3g} < {t.recurrent_low:g}: "
            "the recurrent path contributes little; gradients through time "
            "fade quickly",
            where,
            sigma,
            hint,
        )
    return []


RULES: tuple[tuple[Rule, bool], ...] = (
    (nonfinite_rule, False),
    (dead_units_rule, True),
    (saturated_units_rule, True),
    (near_zero_rule, False),
    (large_weights_rule, False),
    (recurrent_norm_rule, True),
)
"""The rules of :func:`flags_for` in order, each with ``once`` (first applying row of a
(layer, direction) only)."""

_RANK = {s.value: i for i, s in enumerate(Severity)}


def by_severity(flags: list[Flag]) -> list[Flag]:
    """``flags`` most serious first (error, warning, note); the order within a severity kept.

    Example:
        >>> fs = [Flag("note", "m", "a", "x"), Flag("error", "m", "b", "y")]
        >>> [f.severity for f in by_severity(fs)]
        ['error', 'note']
    """
    return sorted(flags, key=lambda f: _RANK[f.severity])


def _untrained(rows: list[dict[str, Any]], t: Thresholds) -> tuple[list[Flag], set[str]]:
    """The notes of layers (or the whole model) still at an initialisation, and those layers."""
    layers: dict[str, list[dict[str, Any]]] = {}
    for raw in rows:
        layers.setdefault(str(raw["layer"]), []).append(raw)
    found = {name: layer_init(rs, t.init_z, t.orthogonal_tol) for name, rs in layers.items()}
    # a few values, or zero biases, prove nothing alone (rnnscope._inits): when every layer
    # matches, the model's evidence counts; otherwise each layer's own
    inits = {name: m for name, m in found.items() if m is not None}
    if len(inits) == len(layers):
        whole = LayerInit(
            "",
            "",
            any(m.exact for m in inits.values()),
            sum(m.uniform_values for m in inits.values()),
        )
        if not whole.counts(t.init_z):
            inits = {}
    else:
        inits = {name: m for name, m in inits.items() if m.counts(t.init_z)}
    matched = {name: (m.family, m.description) for name, m in inits.items()}
    if not matched:
        return [], set()
    model = str(rows[0]["model"])
    hint = (
        "check that training ran and that the trained weights were saved (a checkpoint "
        "written before the first step, or a model rebuilt instead of loaded); rnnscope "
        "compare against a later checkpoint shows what moved"
    )
    if len(matched) == len(layers) and len(layers) > 1:
        families = {family for family, _ in matched.values()}
        family = families.pop() if len(families) == 1 else "mixed initialisers"
        detail = "; ".join(f"{name}: {desc}" for name, (_, desc) in matched.items())
        note = Flag(
            Severity.NOTE,
            model,
            "all layers",
            f"untrained (matches {family}): every layer still holds its initial values ({detail})",
            rule="untrained",
            value=float(len(matched)),
            hint=hint,
        )
        return [note], set(matched)
    notes = [
        Flag(
            Severity.NOTE,
            model,
            name,
            f"untrained (matches {family}): {desc}",
            rule="untrained",
            value=1.0,
            hint=hint,
        )
        for name, (family, desc) in matched.items()
    ]
    return notes, set(matched)


def flags_for(rows: list[dict[str, Any]], t: Thresholds) -> list[Flag]:
    """Flags of one model's statistics rows, most serious first.

    A layer that still matches a standard initialisation gets one "untrained" note instead
    of its warnings and notes (errors are kept); a model whose every layer does gets one.
    """
    if not rows:
        return []
    out, untrained = _untrained(rows, t)
    gates: dict[tuple[str, str], list[tuple[str, float]]] = {}  # each recurrent kernel's gates
    for raw in rows:
        if raw["part"] == "recurrent_kernel":
            at = (str(raw["layer"]), str(raw["direction"]))
            sigma = as_float(raw.get("spectral_norm"))
            gates.setdefault(at, []).append((str(raw.get("gate") or ""), sigma))
    seen: set[tuple[int, str, str]] = set()
    for raw in rows:
        r = BlockRow.of(raw)
        blocks = tuple(gates.get((r.layer, r.direction), ()))
        r = replace(r, n_gates=max(len(blocks), 1), gate_sigmas=blocks)
        for i, (rule, once) in enumerate(RULES):
            key = (i, r.layer, r.direction)
            if once and key in seen:
                continue
            found = rule(r, t)
            if found is None:
                continue
            if once:
                seen.add(key)
            name = rule.__name__.removesuffix("_rule")
            out.extend(
                f if f.rule else replace(f, rule=name)
                for f in found
                if r.layer not in untrained or f.severity == Severity.ERROR
            )
    return by_severity(out)


@dataclass(frozen=True)
class ChangeRow:
    """The fields of one ``compare`` record that :func:`change_flags` reads.

    ``change`` is the L2 norm's relative change since the previous model; ``gap`` how many
    steps (or epochs) back that model is, and ``unit`` the run's shortest gap between two
    checkpoints (both NaN where the models carry no step numbers).
    """

    model: str
    layer: str
    part: str
    gate: str
    direction: str
    present: bool
    size: float
    change: float  # l2_norm_step_rel_change
    gap: float = math.nan
    unit: float = math.nan

    @classmethod
    def of(cls, r: Mapping[str, Any]) -> ChangeRow:
        """The typed row of a ``compare`` record."""
        return cls(
            model=r["model"],
            layer=r["layer"],
            part=r["part"],
            gate=r.get("gate") or "",
            direction=r["direction"],
            present=bool(r.get("present")),
            size=as_float(r.get("size")),
            change=as_float(r.get("l2_norm_step_rel_change")),
        )

    @property
    def rate(self) -> float:
        """The change per :attr:`unit` of steps: ``(1 + change) ** (unit / gap) - 1`` (the
        growth factor spread evenly over the gap), so a checkpoint 8 epochs after the one
        before is judged by its change per epoch when the run also saves every epoch. Without
        step numbers, the change itself."""
        if not (self.gap > 0 and self.unit > 0) or self.gap == self.unit:
            return self.change
        return float((1.0 + self.change) ** (self.unit / self.gap) - 1.0)


def moving_fast(r: ChangeRow, t: Thresholds) -> bool:
    """The block's L2 norm moved by more than ``t.growth`` per :attr:`ChangeRow.unit` of steps
    since the previous model (blocks under ``_MIN_MOVING`` values left out: a lone bias moves
    by large ratios for nothing)."""
    if not r.present or math.isnan(r.change) or abs(r.rate) <= t.growth:
        return False
    return not r.size < _MIN_MOVING


def growth_flag(r: ChangeRow) -> Flag:
    """The flag of the block that moved most in its part."""
    gate = f" ({r.gate} gate most)" if r.gate else ""
    where = " / ".join(
        [r.layer, r.part] + ([r.direction] if r.direction not in ("", Direction.FORWARD) else [])
    )
    verb = "grew" if r.change > 0 else "shrank"
    why = (
        "learning rate too high, or no weight decay"
        if r.change > 0
        else "strong weight decay or regularisation, or a reset"
    )
    spread = (
        f", {abs(r.rate):.0%} per {r.unit:g} steps (the run's shortest gap) over the "
        f"{r.gap:g} steps since it"
        if r.rate != r.change
        else ""
    )
    return Flag(
        Severity.WARNING,
        r.model,
        where,
        f"L2 norm {verb} {abs(r.change):.0%} since the previous model{spread}{gate}: "
        f"weights changing fast ({why})",
        rule="growth",
        value=r.rate,
        hint="rnnscope compare --csv: l2_norm_step_rel_change per checkpoint shows when it "
        "started; set it beside the loss curve, and try a lower learning rate or a schedule",
    )


def _gaps(
    rows: list[dict[str, Any]], known: Mapping[str, Any] | None = None
) -> tuple[dict[str, float], float]:
    """Each model's distance in steps from the model before it (in row order), and the run's
    shortest positive gap (NaN where the models carry no step: a ``step`` column, or
    ``known``, model -> step)."""
    steps: dict[str, float] = {}
    for raw in rows:
        model = str(raw["model"])
        got = raw.get("step") if known is None else known.get(model)
        steps.setdefault(model, as_float(got))
    order = list(steps)
    gaps = {m: steps[m] - steps[p] for p, m in pairwise(order)}
    positive = [g for g in gaps.values() if g > 0]
    return gaps, min(positive) if positive else math.nan


def change_flags(
    rows: list[dict[str, Any]], t: Thresholds, steps: Mapping[str, Any] | None = None
) -> list[Flag]:
    """Flags of a comparison: parts whose L2 norm moved fast since the previous model, per
    the run's shortest gap between checkpoints (:attr:`ChangeRow.rate`; the models' steps
    from the rows' ``step`` column, or ``steps``, model -> step).

    One flag per (model, layer, part, direction), naming the gate that moved most.
    """
    gaps, unit = _gaps(rows, steps)
    worst: dict[tuple[str, str, str, str], ChangeRow] = {}
    for raw in rows:
        r = ChangeRow.of(raw)
        r = replace(r, gap=gaps.get(r.model, math.nan), unit=unit)
        if not moving_fast(r, t):
            continue
        key = (r.model, r.layer, r.part, r.direction)
        if key not in worst or abs(r.rate) > abs(worst[key].rate):
            worst[key] = r
    order = {m: i for i, m in enumerate(dict.fromkeys(r["model"] for r in rows))}
    ranked = sorted(worst.items(), key=lambda kv: order[kv[0][0]])
    return [growth_flag(r) for _, r in ranked]


FLAG_COLUMNS = ["severity", "model", "where", "rule", "value", "message", "hint"]
"""The columns of the frame of :func:`rnnscope.flags`."""
