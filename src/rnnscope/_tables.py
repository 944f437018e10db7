"""``rnnscope.stats`` and ``rnnscope.compare``: health statistics of many models as DataFrames.

Per-file work runs in the calling process, in a process pool (``jobs=N``), or through any
``concurrent.futures.Executor`` (``executor=``, e.g. a dask ``Client.get_executor()``). Files
are shipped to workers as paths; live models are always read in the calling process.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import InputError, UnsupportedError
from ._model import LayerWeights, RNNWeights
from ._stats import record_rows

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CHECKPOINT_SUFFIXES", "COLUMNS", "compare", "expand_sources", "source_rows", "stats"]

CHECKPOINT_SUFFIXES = (".keras", ".h5", ".hdf5", ".safetensors", ".pt", ".pth")
KEY = ["layer", "part", "gate", "direction"]
COLUMNS = [
    "model",
    *KEY,
    "kind",
    "shape",
    "size",
    "mean",
    "std",
    "min",
    "max",
    "abs_max",
    "l2_norm",
    "frac_zero",
    "frac_near_zero",
    "tol",
    "nan",
    "inf",
    "units",
    "dead_units",
    "spectral_norm",
    "stable_rank",
    "alpha",
    "alpha_note",
    "matrix_spectral_norm",
    "approx",
]
COMPARED = [
    "mean",
    "std",
    "abs_max",
    "l2_norm",
    "frac_near_zero",
    "nan",
    "inf",
    "dead_units",
    "spectral_norm",
    "stable_rank",
    "alpha",
    "matrix_spectral_norm",
]
Progress = Callable[[int, int, str], None]
_BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _is_path(obj: Any) -> bool:
    return isinstance(obj, (str, os.PathLike))


def expand_sources(sources: Any, names: Sequence[str] | None = None) -> list[tuple[str, Any]]:
    """``(name, source)`` pairs: a folder becomes its checkpoint files, sorted by name."""
    items = list(sources) if isinstance(sources, (list, tuple)) else [sources]
    flat: list[Any] = []
    for s in items:
        if _is_path(s) and Path(s).is_dir():
            found = sorted(
                (
                    p
                    for p in Path(s).iterdir()
                    if p.is_file() and p.name.lower().endswith(CHECKPOINT_SUFFIXES)
                ),
                key=_natural,
            )
            if not found:
                raise InputError(
                    f"folder '{s}' holds no checkpoint files ({', '.join(CHECKPOINT_SUFFIXES)})"
                )
            flat.extend(str(p) for p in found)
        else:
            flat.append(os.fspath(s) if _is_path(s) else s)
    if not flat:
        raise InputError("sources: nothing to read (an empty list)")
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != len(flat):
            raise InputError(
                f"names: {len(flat)} sources, so {len(flat)} names are needed; got {len(names)}"
            )
        if len(set(names)) != len(names):
            raise InputError(f"names must be unique; got {names}")
        return list(zip(names, flat, strict=True))
    return list(zip(_default_names(flat), flat, strict=True))


def _natural(p: Path) -> list[Any]:
    """Sort key: numbers in names by value, so epoch2 comes before epoch10."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def _default_names(flat: list[Any]) -> list[str]:
    from ._api import resolve

    out: list[str] = []
    for s in flat:
        if _is_path(s):
            base = Path(s).name
        elif isinstance(s, (RNNWeights, LayerWeights)):
            base = s.name
        else:
            base = getattr(s, "name", None) or resolve(s).name
        name, k = str(base), 2
        while name in out:
            name, k = f"{base} ({k})", k + 1
        out.append(name)
    return out


def source_rows(source: Any, name: str, tol: float) -> list[dict[str, Any]]:
    """Statistics rows of every layer of one source (runs in workers: paths only there)."""
    from ._api import resolve

    rows = []
    for ref in resolve(source).refs:
        for row in record_rows(ref.extract(), tol):
            rows.append({"model": name, **row, "tol": tol})
    return rows


@contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Workers started inside inherit one BLAS thread each (set before they import numpy)."""
    old = {k: os.environ.get(k) for k in _BLAS_VARS}
    os.environ.update({k: "1" for k in _BLAS_VARS})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_per_source(
    fn: Callable[..., Any],
    pairs: list[tuple[str, Any]],
    args: tuple[Any, ...],
    executor: cf.Executor | None,
    jobs: int | None,
    progress: Progress | None,
) -> list[Any]:
    """``fn(source, name, *args)`` for every pair, in order, in parallel where asked."""
    if jobs is not None and (not isinstance(jobs, int) or jobs < 1):
        raise InputError(f"jobs must be a positive integer; got {jobs!r}")
    if executor is not None and jobs not in (None, 1):
        raise InputError("give jobs= or executor=, not both")
    results: list[Any] = [None] * len(pairs)
    done = 0

    def tick(i: int) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, len(pairs), pairs[i][0])

    remote = [i for i, (_, s) in enumerate(pairs) if _is_path(s)]
    if executor is None and (jobs or 1) > 1 and len(remote) > 1:
        # spawn, not fork: forked children inherit the parent's BLAS threads and ran ~5x
        # slower here; spawned ones start clean with one BLAS thread each
        ctx = multiprocessing.get_context("spawn")
        workers = min(jobs or 1, len(remote))
        try:
            with _single_threaded_blas(), cf.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
                return _fan_out(fn, pairs, args, pool, remote, results, tick)
        except cf.process.BrokenProcessPool as err:
            raise UnsupportedError(
                f"jobs={jobs}: a worker process died before finishing. Worker processes are "
                "started fresh and import the calling script again: in a script, call rnnscope "
                "under `if __name__ == '__main__':` (or use jobs=1)"
            ) from err
    if executor is not None and remote:
        return _fan_out(fn, pairs, args, executor, remote, results, tick)
    for i, (name, s) in enumerate(pairs):
        results[i] = fn(s, name, *args)
        tick(i)
    return results


def _fan_out(
    fn: Callable[..., Any],
    pairs: list[tuple[str, Any]],
    args: tuple[Any, ...],
    pool: cf.Executor,
    remote: list[int],
    results: list[Any],
    tick: Callable[[int], None],
) -> list[Any]:
    futures = {pool.submit(fn, pairs[i][1], pairs[i][0], *args): i for i in remote}
    for i, (name, s) in enumerate(pairs):  # live objects stay here, meanwhile
        if i not in remote:
            results[i] = fn(s, name, *args)
            tick(i)
    for fut in cf.as_completed(futures):
        i = futures[fut]
        results[i] = fut.result()
        tick(i)
    return results


def _frame(rows: list[dict[str, Any]], tol: float) -> pd.DataFrame:
    import pandas as pd

    df = pd.DataFrame(rows, columns=COLUMNS)
    for c in ("units", "dead_units"):  # counts; empty for weights without units
        df[c] = df[c].astype("Int64")
    df.attrs["tol"] = tol
    return df


def _tol(tol: Any) -> float:
    try:
        value = float(tol)
    except (TypeError, ValueError) as err:
        raise InputError(f"tol must be a non-negative number; got {tol!r}") from err
    if not value >= 0:
        raise InputError(f"tol must be a non-negative number; got {tol!r}")
    return value


def stats(
    sources: Any,
    names: Sequence[str] | None = None,
    *,
    tol: float = 1e-3,
    executor: cf.Executor | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Health statistics, one row per (model, layer, part, gate, direction).

    Recurrent parts get a row per gate (the projection one row); other layers a row per named
    weight (``gate`` and ``direction`` empty). Columns: ``size, mean, std, min, max, abs_max,
    l2_norm`` (over finite values), ``frac_zero``, ``frac_near_zero`` (``|w| < tol``; ``tol``
    is a column and ``df.attrs["tol"]``), ``nan, inf``, ``units, dead_units`` (units whose
    incoming weights are all near zero in every gate), and for matrices ``spectral_norm``
    (largest singular value), ``stable_rank`` (``||W||_F^2 / sigma_max^2``), ``alpha`` (power-law
    exponent of the eigenvalues of ``W^T W``; empty with the reason in ``alpha_note`` below 50
    eigenvalues) and, on recurrent-kernel rows, ``matrix_spectral_norm``: the largest singular
    value of the whole recurrent kernel (all gates).

    Args:
        sources: a model, checkpoint path, folder of checkpoints, record, or a list of them.
        names: a name per source (default: file names, model names).
        tol: the near-zero threshold.
        executor: any ``concurrent.futures.Executor`` to run the per-file work on.
        jobs: run the per-file work in this many processes (ignored for live models).
        progress: called as ``progress(done, total, name)`` after each source.

    Example:
        >>> df = rnnscope.stats(["epoch1.keras", "epoch9.keras"])  # doctest: +SKIP
        >>> rk = df[df.part == "recurrent_kernel"]  # doctest: +SKIP
        >>> rk[["model", "gate", "spectral_norm"]]  # doctest: +SKIP
    """
    from ._errors import require

    require("pandas", "report", "rnnscope.stats")
    value = _tol(tol)
    pairs = expand_sources(sources, names)
    per = run_per_source(source_rows, pairs, (value,), executor, jobs, progress)
    return _frame([r for rows in per for r in rows], value)


def compare(
    sources: Any,
    names: Sequence[str] | None = None,
    baseline: int | str = 0,
    *,
    tol: float = 1e-3,
    executor: cf.Executor | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """The statistics of several models aligned by (layer, part, gate, direction).

    One row per key and model, in source order, with ``present`` (False where a model lacks the
    key: its statistics are empty, not an error), for the main statistics ``<stat>_change``
    (minus the baseline model's value) and ``<stat>_rel_change`` (divided by ``|baseline|``), and
    ``l2_norm_step_rel_change``: the L2 norm's relative change since the previous model that
    has the block (checkpoint to checkpoint: how fast the weights move).

    Example:
        >>> df = rnnscope.compare("checkpoints/", baseline=0)  # doctest: +SKIP
        >>> rk = df[df.part == "recurrent_kernel"]  # doctest: +SKIP
        >>> rk[["model", "gate", "l2_norm_rel_change"]]  # doctest: +SKIP
    """
    table = stats(sources, names, tol=tol, executor=executor, jobs=jobs, progress=progress)
    return compare_table(table, baseline)


def compare_table(table: pd.DataFrame, baseline: int | str = 0) -> pd.DataFrame:
    """:func:`compare` of an existing :func:`stats` frame."""
    import numpy as np
    import pandas as pd

    models = list(dict.fromkeys(table["model"]))
    if isinstance(baseline, int) and not isinstance(baseline, bool):
        if not -len(models) <= baseline < len(models):
            raise InputError(f"baseline index {baseline} is out of range for {len(models)} models")
        base = models[baseline]
    elif baseline in models:
        base = str(baseline)
    else:
        raise InputError(f"baseline {baseline!r} is not one of the models: {', '.join(models)}")
    keys = table[KEY].drop_duplicates()
    grid = keys.merge(pd.DataFrame({"model": models}), how="cross")
    out = grid.merge(table, on=[*KEY, "model"], how="left", indicator=True)
    out["present"] = out.pop("_merge") == "both"
    ref = table[table["model"] == base][[*KEY, *COMPARED]]
    joined = out.merge(ref, on=KEY, how="left", suffixes=("", "__base"))
    for c in COMPARED:
        b = joined[f"{c}__base"].astype(float)
        v = joined[c].astype(float)
        out[f"{c}_change"] = v - b
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"{c}_rel_change"] = np.where(b.abs() > 0, (v - b) / b.abs(), np.nan)
    order = {m: i for i, m in enumerate(models)}
    out = out.sort_values(by="model", key=lambda s: s.map(order), kind="stable")
    first = keys.reset_index(drop=True).reset_index().rename(columns={"index": "_k"})
    out = out.merge(first, on=KEY).sort_values(
        ["_k", "model"], key=lambda s: s.map(order) if s.name == "model" else s, kind="stable"
    )
    out = out.drop(columns="_k").reset_index(drop=True)
    # change against the previous model holding the same block: how fast weights move
    prev = out[out["present"]].groupby(KEY, sort=False)["l2_norm"].shift(1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = (out.loc[prev.index, "l2_norm"].astype(float) - prev) / prev.abs()
    out["l2_norm_step_rel_change"] = step.reindex(out.index)
    out.attrs.update(tol=table.attrs["tol"], baseline=base, models=models)
    return out
