"""Shared pieces of the See RNN figure functions: keyword options, ``configs`` merging, figure
scaling (``SCALEFIG``), grid shapes and tick text."""

from __future__ import annotations

import os
from copy import deepcopy
from pathlib import Path
from typing import Any

import numpy as np

from ..._errors import InputError

__all__ = [
    "clipnums",
    "grid_shape",
    "merge_configs",
    "options",
    "save_figs",
    "scalefig",
    "share_pair",
]

# Older See RNN keyword names, still used in its README and examples.
ALIASES = {
    "xy_ticks": "show_xy_ticks",
    "y_zero": "show_y_zero",
    "title_mode": "title",
    "bias": "show_bias",
    "show_title": "title",
}


def options(fn: str, given: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` updated with ``given`` (old names accepted); unknown ones: ``TypeError``."""
    given = {ALIASES.get(k, k) if ALIASES.get(k) in defaults else k: v for k, v in given.items()}
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise TypeError(
            f"{fn}() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
            f"its keyword options are: {', '.join(sorted(defaults))}"
        )
    return {**defaults, **given}


def merge_configs(fn: str, configs: dict[str, Any] | None, defaults: dict[str, Any]) -> Any:
    """``defaults`` (a dict of dicts) with each given ``configs[key]`` entry laid over it."""
    configs = deepcopy(configs or {})
    unknown = [k for k in configs if k not in defaults]
    if unknown:
        raise InputError(
            f"{fn}(): unexpected configs key(s) {', '.join(map(repr, unknown))}; "
            f"supported: {', '.join(defaults)}"
        )
    kw = deepcopy(defaults)
    for key, value in configs.items():
        if isinstance(kw[key], dict) and isinstance(value, dict):
            kw[key].update(value)
        else:
            kw[key] = value
    return kw


def _scales() -> tuple[float, float]:
    text = os.environ.get("SCALEFIG", "1")
    if "," in text:
        w, h = (float(t) for t in text.strip("[()]").split(","))
        return w, h
    return float(text), float(text)


def scalefig(fig: Any) -> None:
    """Scale a figure's size by the ``SCALEFIG`` environment variable, as See RNN does for every
    figure it makes: ``'1.2'`` scales both sides, ``'1.2,0.8'`` (or ``'(1.2, 0.8)'``) width and
    height separately.

    Example:
        >>> import os, matplotlib.pyplot as plt
        >>> os.environ["SCALEFIG"] = "2"
        >>> fig = plt.figure(figsize=(3, 1))
        >>> scalefig(fig)
        >>> [float(v) for v in fig.get_size_inches()]
        [6.0, 2.0]
        >>> del os.environ["SCALEFIG"]
    """
    w, h = fig.get_size_inches()
    sw, sh = _scales()
    fig.set_size_inches(w * sw, h * sh)


def share_pair(share_xy: Any) -> tuple[Any, Any]:
    """``(sharex, sharey)`` from one value or a pair; ints become bools, strings stay."""
    pair = tuple(share_xy) if isinstance(share_xy, (list, tuple)) else (share_xy, share_xy)
    return tuple(bool(v) if isinstance(v, (int, np.integer)) else v for v in pair)  # type: ignore[return-value]


def grid_shape(n_rows: int | None, n: int) -> tuple[int, int]:
    """Rows and columns holding ``n`` panels exactly, near-square when ``n_rows`` is None."""
    rows = int(np.sqrt(n)) if n_rows is None else int(n_rows)
    if rows < 1:
        raise InputError(f"n_rows must be at least 1; got {n_rows!r}")
    cols = max(n // rows, 1)
    rows = n // cols
    while n % cols or n % max(rows, 1):
        cols -= 1
        rows = n // cols
    return rows, cols


def clipnums(nums: Any) -> Any:
    """Short text for tick values: integers plainly, moderate values with 3 decimals, others in
    exponent form (``'1.00e-5'``)."""
    values = list(nums) if isinstance(nums, (list, tuple)) else [nums]
    out = []
    for v in values:
        if isinstance(v, int) or (isinstance(v, float) and v.is_integer()):
            out.append(str(int(v)))
        elif 1e-3 < abs(v) < 1e3:
            out.append(f"{v:.3f}")
        else:
            out.append(f"{v:.2e}".replace("+0", "+").replace("-0", "-"))
    return out if len(out) > 1 else out[0]


def save_figs(figs: list[Any], savepath: Any, kw: dict[str, Any]) -> None:
    """Save one figure to ``savepath``; two (a Bidirectional layer) as ``<stem>_0``/``_1``."""
    if savepath is None:
        return
    path = Path(savepath)
    if len(figs) == 1:
        figs[0].savefig(path, **kw)
        return
    for i, fig in enumerate(figs):
        fig.savefig(path.with_name(f"{path.stem}_{i}{path.suffix}"), **kw)
