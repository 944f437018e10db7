"""Runs and variants: step and epoch numbers in checkpoint names, and which checkpoint to keep.

A folder of checkpoints is either a training RUN (the same model at successive steps: ordered,
compared step to step) or a set of VARIANTS (different seeds, widths, regularisers: each
compared with a baseline only). :func:`read_steps` reads the numbers in names such as
``ckpt-0005.h5``, ``model.03-0.42.keras`` (Keras ``ModelCheckpoint``'s
``{epoch:02d}-{val_loss:.2f}``), ``step_1200.safetensors`` or ``epoch=3-step=1500.ckpt``;
:func:`decide_mode` says which of the two a set of names is, and why; :func:`rank` orders
checkpoints by a metric with health as the tiebreaker.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._errors import InputError

__all__ = ["RUN", "VARIANTS", "StepInfo", "decide_mode", "direction_of", "rank", "read_steps"]

RUN, VARIANTS = "run", "variants"
KINDS = ("step", "epoch", "checkpoint", "number")  # finest first: the order a run is sorted by

_SUFFIX = re.compile(
    r"(\.weights)?\.(keras|h5|hdf5|safetensors|pt|pth|ckpt|bin|tar)$", re.IGNORECASE
)
_KEYWORDS = (
    ("epoch", re.compile(r"(?<![a-z])(?:epochs?|ep)[=_\-]?(\d+)", re.I)),
    (
        "step",
        re.compile(r"(?<![a-z])(?:global_step|steps?|iter(?:ation)?s?|it)[=_\-]?(\d+)", re.I),
    ),
    ("checkpoint", re.compile(r"(?<![a-z])(?:ckpt|checkpoint|chkpt|snapshot)[=_\-.]?(\d+)", re.I)),
)
# ModelCheckpoint's "weights.{epoch:02d}-{val_loss:.2f}": an integer after a dot, then values
_KERAS_EPOCH = re.compile(r"\.(\d+)((?:[-_]\d*\.\d+)*)$")
_BARE = re.compile(r"^(\d+)$")
_DECIMAL = re.compile(r"\d*\.\d+")


@dataclass(frozen=True)
class StepInfo:
    """The numbers one checkpoint name carries.

    Attributes:
        name: the checkpoint's name.
        numbers: ``{"step": 1500, "epoch": 3}``: every counter found, by kind (``step``,
            ``epoch``, ``checkpoint`` for ``ckpt-N``, ``number`` for a name that is a number).
        note: which number was used and what else the name held ("" when it is plain).
    """

    name: str
    numbers: Mapping[str, int] = field(default_factory=dict)
    note: str = ""

    @property
    def kind(self) -> str:
        """The finest counter found (step, epoch, checkpoint, number), or ""."""
        return next((k for k in KINDS if k in self.numbers), "")

    @property
    def step(self) -> int | None:
        """The number of :attr:`kind`, or None."""
        return self.numbers.get(self.kind) if self.kind else None


def read_steps(name: str) -> StepInfo:
    """The step or epoch numbers in a checkpoint's name.

    Example:
        >>> read_steps("model.03-0.42.keras").numbers
        {'epoch': 3}
        >>> read_steps("epoch=3-step=1500.ckpt").step
        1500
    """
    stem = _SUFFIX.sub("", name.replace("\\", "/").rsplit("/", 1)[-1])
    found: dict[str, tuple[int, str]] = {}
    for kind, pattern in _KEYWORDS:
        m = pattern.search(stem)
        if m:
            found[kind] = (int(m.group(1)), m.group(0))
    if not found:
        m = _KERAS_EPOCH.search(stem)
        if m and m.group(1):
            found["epoch"] = (int(m.group(1)), m.group(1))
        elif _BARE.match(stem):
            found["number"] = (int(stem), stem)
    if not found:
        return StepInfo(name)
    numbers = {k: v for k, (v, _) in found.items()}
    info = StepInfo(name, numbers)
    used = f"{info.kind} {info.step}"
    notes = []
    others = [f"{k} {v}" for k, v in numbers.items() if k != info.kind]
    if others:
        notes.append(f"the name also gives {', '.join(others)}")
    spans = "".join(text for _, text in found.values())
    rest = stem
    for _, text in found.values():
        rest = rest.replace(text, " ", 1)
    metric_values = _DECIMAL.findall(rest)
    if metric_values:
        notes.append(f"{', '.join(metric_values)} read as metric values, not counters")
    extra = [n for n in re.findall(r"(?<![\d.])\d+(?![\d.])", rest) if n not in spans]
    if extra:
        notes.append(f"other numbers ignored: {', '.join(extra)}")
    note = f"{used} (from '{name}'; {'; '.join(notes)})" if notes else ""
    return StepInfo(name, numbers, note)


@dataclass(frozen=True)
class Mode:
    """How a set of checkpoints is read: ``mode`` is ``"run"`` or ``"variants"``.

    Attributes:
        mode: :data:`RUN` or :data:`VARIANTS`.
        reason: one sentence saying why (and how to ask for the other).
        kind: the counter a run is ordered by ("" for variants, or a run without numbers).
        steps: the counter of each model (None where a name has none).
        order: the models in the order to compare them (a run: by step).
        notes: which number was used where a name holds several.
    """

    mode: str
    reason: str
    kind: str
    steps: dict[str, int | None]
    order: list[str]
    notes: list[str]

    def describe(self) -> str:
        """One line for the output: "read as a training run ..." or "read as variants ..."."""
        what = "a training run" if self.mode == RUN else "a set of variants"
        return f"read as {what}: {self.reason}"


def decide_mode(models: Sequence[str], run: bool | None = None) -> Mode:
    """A run when every name carries a step or epoch number of one kind, all different (or
    ``run=True``); otherwise variants (or ``run=False``).

    Example:
        >>> decide_mode(["ckpt-0010.h5", "ckpt-0005.h5"]).order
        ['ckpt-0005.h5', 'ckpt-0010.h5']
        >>> decide_mode(["seed1.keras", "seed2.keras"]).mode
        'variants'
    """
    if run is not None and not isinstance(run, bool):
        raise InputError(f"run must be True, False or None; got {run!r}", argument="run")
    infos = [read_steps(m) for m in models]
    common = [k for k in KINDS if all(k in i.numbers for i in infos)]
    kind = common[0] if common else ""
    steps = {i.name: (i.numbers.get(kind) if kind else None) for i in infos}
    notes = [i.note for i in infos if i.note]
    values = [v for v in steps.values() if v is not None]
    shown = ", ".join(f"{kind} {v}" for v in sorted(values)[:3]) + (
        " ..." if len(values) > 3 else ""
    )
    dup = sorted({v for v in values if values.count(v) > 1})
    if run is False:
        return Mode(VARIANTS, "asked for (--variants, run=False)", "", steps, list(models), notes)
    if kind and not dup:
        order = sorted(models, key=lambda m: steps[m])  # type: ignore[arg-type, return-value]
        why = f"the names carry {kind} numbers ({shown})"
        if run:
            why = "asked for (--run, run=True); " + why
        return Mode(RUN, why + "; --variants reads them as variants", kind, steps, order, notes)
    if run:
        why = "asked for (--run, run=True); ordered as given" + (
            f" (two or more names share {kind} {dup[0]})"
            if dup
            else " (not every name carries a step or epoch number)"
        )
        return Mode(RUN, why, kind if not dup else "", steps, list(models), notes)
    if dup:
        why = f"two or more names share {kind} {dup[0]}"
    else:
        lacking = [i.name for i in infos if not i.numbers]
        if len(lacking) == len(infos):
            why = "the names carry no step or epoch number"
        elif lacking:
            verb = "carries" if len(lacking) == 1 else "carry"
            why = f"{len(lacking)} of {len(infos)} names {verb} no step or epoch number " + (
                f"({', '.join(lacking[:3])}{' ...' if len(lacking) > 3 else ''})"
            )
        else:
            why = "the names carry numbers of different kinds (step in some, epoch in others)"
    return Mode(
        VARIANTS,
        why + "; compared with the baseline only; --run reads them as a training run",
        "",
        steps,
        list(models),
        notes,
    )


_LOWER = {
    "loss", "error", "err", "mae", "mse", "rmse", "mape", "msle", "nll", "crossentropy",
    "perplexity", "ppl", "wer", "cer", "hinge", "kld", "divergence", "logcosh", "huber",
}  # fmt: skip
_HIGHER = {
    "acc", "accuracy", "auc", "f1", "fbeta", "precision", "recall", "iou", "bleu", "rouge",
    "r2", "map", "dice", "top1", "top5", "correlation", "score",
}  # fmt: skip


def direction_of(metric: str) -> str:
    """``"min"`` or ``"max"``: which way is better for a metric, from its name.

    ``"name:min"`` or ``"name:max"`` says it outright; otherwise loss- and error-like names
    (``val_loss``, ``mae``, ``perplexity``) are ``min`` and accuracy-like ones
    (``val_accuracy``, ``auc``, ``f1``) ``max``. Anything else is an :class:`InputError`.

    Example:
        >>> direction_of("val_sparse_categorical_accuracy"), direction_of("val_loss")
        ('max', 'min')
    """
    name, _, told = metric.rpartition(":")
    if name and told in ("min", "max"):
        return told
    tokens = set(re.split(r"[^a-z0-9]+", metric.lower())) - {""}
    low = bool(tokens & _LOWER) or any(t.endswith(("loss", "error")) for t in tokens)
    high = bool(tokens & _HIGHER) or any(t.startswith("acc") for t in tokens)
    if low != high:
        return "min" if low else "max"
    raise InputError(
        f"rank_by {metric!r}: cannot tell whether lower or higher is better from the name; "
        f"write '{metric}:min' or '{metric}:max'",
        argument="rank_by",
    )


def metric_name(rank_by: str) -> str:
    """The metric of a ``rank_by`` value (``"val_auc:max"`` -> ``"val_auc"``)."""
    name, _, told = rank_by.rpartition(":")
    return name if name and told in ("min", "max") else rank_by


def rank(table: Any, rank_by: str) -> tuple[Any, str]:
    """Checkpoints ranked by a metric, health breaking ties; and the "which to keep" line.

    ``table`` is indexed by model with the metric's column and ``errors`` and ``warnings``
    (flag counts). Order: the metric (best first, missing values last), then fewer errors,
    then fewer warnings, then the order given. Returns the table with a ``rank`` column
    (1 = keep), in rank order, and one sentence naming the best checkpoint and why.
    """
    name = metric_name(rank_by)
    if name not in table.columns:
        have = [c for c in table.columns if c not in ("step", "errors", "warnings", "notes")]
        raise InputError(
            f"rank_by {name!r} is not among the metrics; they are: "
            + (", ".join(map(str, have)) if have else "none (give metrics=, --metrics)"),
            argument="rank_by",
        )
    best_low = direction_of(rank_by) == "min"
    value = table[name].astype(float)
    key = value if best_low else -value
    order = sorted(
        range(len(table)),
        key=lambda i: (
            math.isnan(key.iloc[i]),
            0.0 if math.isnan(key.iloc[i]) else key.iloc[i],
            table["errors"].iloc[i],
            table["warnings"].iloc[i],
            i,
        ),
    )
    out = table.iloc[order].copy()
    out["rank"] = range(1, len(out) + 1)
    return out, _keep_line(out, name, "lowest" if best_low else "highest")


def _keep_line(ranked: Any, name: str, word: str) -> str:
    values = ranked[name].astype(float)
    if values.isna().all():
        return f"no checkpoint has a {name} value: nothing to rank"
    best = ranked.index[0]
    v = values.iloc[0]
    health = _health(ranked.iloc[0])
    line = f"keep {best}: {word} {name} ({v:.6g}), {health}"
    tied = [m for m, x in zip(ranked.index[1:], values.iloc[1:], strict=True) if x == v]
    if tied:
        others = ", ".join(f"{m} ({_health(ranked.loc[m])})" for m in tied[:3])
        line += f"; tied on {name} with {others}: health breaks the tie"
    elif len(ranked) > 1 and not math.isnan(values.iloc[1]):
        line += f"; next: {ranked.index[1]} ({values.iloc[1]:.6g})"
    missing = int(values.isna().sum())
    if missing:
        line += f"; {missing} checkpoint{'s' if missing > 1 else ''} without a {name} value last"
    return line


def _health(row: Any) -> str:
    e, w = int(row["errors"]), int(row["warnings"])
    return f"{e} error{'s' if e != 1 else ''}, {w} warning{'s' if w != 1 else ''}"
