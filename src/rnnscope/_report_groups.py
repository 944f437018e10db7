"""The report at scale: flags grouped across checkpoints, and which checkpoints get a full section.

A run of hundreds of checkpoints raises the same finding at most of them. :func:`group_flags`
folds the per-model flags into one row per (rule, where): where the finding holds (first, last,
how many), its value at the first, worst and last of them, and the severity reached.
:func:`select_detail` picks the checkpoints worth a full section, each with the reasons why.
"""

from __future__ import annotations

import fnmatch
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ._errors import InputError
from ._flags import Flag
from ._format import as_float

__all__ = ["FlagGroup", "group_flags", "select_detail", "step_of", "steps_of"]

_RANK = {"note": 0, "warning": 1, "error": 2}
_MAX_TRANSITIONS = 4  # per group: first and last appearance, first and last disappearance


def step_of(name: str) -> float:
    """The training step a checkpoint's name says, read as ``compare`` reads it
    (:func:`rnnscope._runs.read_steps`: its finest counter); NaN when none.

    Example:
        >>> step_of("ckpt-epoch12-step3400.safetensors"), step_of("final.keras")
        (3400.0, nan)
    """
    from ._runs import read_steps

    step = read_steps(name).step
    return math.nan if step is None else float(step)


def steps_of(names: Sequence[str], metrics: Any = None) -> list[float] | None:
    """The step of each model, or None when the names do not give distinct increasing steps.

    A ``metrics`` frame (indexed by model name, with a ``step`` column) is used first.
    """
    if metrics is not None and "step" in getattr(metrics, "columns", ()):
        known = metrics["step"].to_dict()
        steps = [as_float(known.get(n)) for n in names]
    else:
        steps = [step_of(n) for n in names]
    if any(math.isnan(s) for s in steps) or any(b <= a for a, b in itertools.pairwise(steps)):
        return None
    return steps


@dataclass
class FlagGroup:
    """One finding (``rule`` at ``where``) across the models it holds in.

    ``models`` are the indices (into the report's model order) where it holds, ``flags`` the
    flag of each (the worst one where a model has several).
    """

    rule: str
    where: str
    models: list[int] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)

    @property
    def severity(self) -> str:
        """The most severe level reached."""
        return max((f.severity for f in self.flags), key=_RANK.__getitem__)

    @property
    def worst(self) -> int:
        """Position (in :attr:`models`) of the worst flag: most severe, then largest |value|."""
        return max(range(len(self.flags)), key=lambda i: _badness(self.flags[i]))

    @property
    def runs(self) -> list[tuple[int, int]]:
        """Contiguous stretches of model indices where it holds, as (first, last)."""
        out: list[tuple[int, int]] = []
        for i in self.models:
            if out and out[-1][1] == i - 1:
                out[-1] = (out[-1][0], i)
            else:
                out.append((i, i))
        return out

    def transitions(self, n_models: int) -> list[tuple[int, str]]:
        """Models where the finding appears (``"appears"``) or stops holding (``"disappears"``:
        the first model after a stretch), at most the first and last of each."""
        appear = [a for a, _ in self.runs]
        gone = [b + 1 for _, b in self.runs if b + 1 < n_models]
        picked = {(appear[0], "appears"), (appear[-1], "appears")}
        if gone:
            picked |= {(gone[0], "disappears"), (gone[-1], "disappears")}
        return sorted(picked)[:_MAX_TRANSITIONS]


def _badness(f: Flag) -> tuple[int, float]:
    v = abs(f.value) if not math.isnan(f.value) else -1.0
    return _RANK[f.severity], v


def group_flags(flags: Sequence[Flag], models: Sequence[str]) -> list[FlagGroup]:
    """One :class:`FlagGroup` per (rule, where), most severe first, then in order of appearance.

    Example:
        >>> from rnnscope._flags import Flag
        >>> fl = [Flag("note", m, "lstm / recurrent_kernel", "sigma > 1", "recurrent_norm", v)
        ...       for m, v in (("a", 1.2), ("c", 1.5))]
        >>> g = group_flags(fl, ["a", "b", "c"])[0]
        >>> g.models, g.runs, g.severity
        ([0, 2], [(0, 0), (2, 2)], 'note')
    """
    index = {m: i for i, m in enumerate(models)}
    groups: dict[tuple[str, str], FlagGroup] = {}
    for f in flags:
        if f.model not in index:
            raise InputError(
                f"flag of model '{f.model}' at {f.where}: no such model among the "
                f"{len(models)} in the report",
                argument="flags",
            )
        g = groups.setdefault((f.rule, f.where), FlagGroup(f.rule, f.where))
        i = index[f.model]
        if g.models and g.models[-1] == i:  # a second flag of the same model: keep the worst
            if _badness(f) > _badness(g.flags[-1]):
                g.flags[-1] = f
            continue
        if g.models and i < g.models[-1]:
            raise InputError(
                f"flags of rule '{f.rule}' at {f.where} are not in model order "
                f"('{f.model}' after '{models[g.models[-1]]}')",
                argument="flags",
            )
        g.models.append(i)
        g.flags.append(f)
    return sorted(groups.values(), key=lambda g: -_RANK[g.severity])


def _best(models: Sequence[str], metrics: Any, rank_by: str | None) -> tuple[str, str] | None:
    """The best model by ``rank_by`` (``name``, ``name:min`` or ``name:max``; which way is
    better comes from :func:`rnnscope._runs.direction_of`, as for ``compare``'s ranking), with
    its reason."""
    from ._runs import direction_of

    if metrics is None or not rank_by:
        return None
    told = rank_by.endswith((":min", ":max"))
    lower = direction_of(rank_by) == "min"
    rank_by = rank_by.rpartition(":")[0] if told else rank_by
    if rank_by not in metrics.columns:
        raise InputError(
            f"rank_by: no metric '{rank_by}'; the metrics have: "
            + ", ".join(map(str, metrics.columns)),
            argument="rank_by",
        )
    values = metrics[rank_by].reindex(list(models)).astype(float).dropna()
    if values.empty:
        return None
    name = str(values.idxmin() if lower else values.idxmax())
    return name, f"best {rank_by} ({values[name]:.4g}, {'lowest' if lower else 'highest'})"


def _picked(models: Sequence[str], detail: Sequence[str]) -> list[str]:
    if any(d == "all" for d in detail):
        return list(models)
    out: list[str] = []
    for pattern in detail:
        found = [m for m in models if m == pattern or fnmatch.fnmatchcase(m, pattern)]
        if not found:
            shown = ", ".join(models[:5]) + (", ..." if len(models) > 5 else "")
            raise InputError(
                f"detail: '{pattern}' matches none of the {len(models)} models ({shown}); "
                "give names, globs such as '*epoch1?*', or 'all'",
                argument="detail",
            )
        out += found
    return out


def select_detail(
    models: Sequence[str],
    groups: Sequence[FlagGroup],
    *,
    metrics: Any = None,
    rank_by: str | None = None,
    detail: Sequence[str] = (),
) -> dict[str, list[str]]:
    """The models that get a full section, in model order, each with why.

    First, last, best (by ``rank_by`` among ``metrics``, a frame indexed by model name), the
    worst of each flag group, where a group's finding first and last appears or stops holding,
    and those ``detail`` names (names, globs, or ``"all"``).

    Example:
        >>> select_detail(["e1", "e2", "e3", "e4"], [], detail=["e3"])
        {'e1': ['first'], 'e3': ['picked'], 'e4': ['last']}
    """
    why: dict[int, list[str]] = {}
    index = {m: i for i, m in enumerate(models)}

    def add(i: int, reason: str) -> None:
        if reason not in why.setdefault(i, []):
            why[i].append(reason)

    if models:
        add(0, "first")
        add(len(models) - 1, "last")
    best = _best(models, metrics, rank_by)
    if best:
        add(index[best[0]], best[1])
    for g in groups:
        add(g.models[g.worst], f"worst {g.rule} at {g.where}")
        for i, what in g.transitions(len(models)):
            add(i, f"{g.rule} at {g.where} {what}")
    for m in _picked(models, list(detail)):
        add(index[m], "picked")
    return {models[i]: why[i] for i in sorted(why)}
