"""``rnnscope.stats`` and ``rnnscope.compare``: health statistics of many models as DataFrames.

Per-file work runs in the calling process, in a process pool (``jobs=N``), or through any
``concurrent.futures.Executor`` (``executor=``, e.g. a dask ``Client.get_executor()``). Files
are shipped to workers as paths; live models are always read in the calling process.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._columns import COLUMNS, COMPARED, KEY
from ._errors import InputError, RnnscopeError
from ._io import checkpoint_suffixes, is_remote
from ._io._remote import remote_url
from ._model import LayerWeights, RNNWeights
from ._stats import record_rows

if TYPE_CHECKING:
    import pandas as pd

    from ._cache import Cache

__all__ = [
    "COLUMNS",
    "NothingReadError",
    "collect_sources",
    "compare",
    "expand_sources",
    "flags",
    "read_all",
    "run_sources",
    "source_rows",
    "stats",
]

Progress = Callable[[int, int, str], None]
_BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _is_path(obj: Any) -> bool:
    """A local path or a remote source (a URL, ``(fs, path)``, an ``OpenFile``): workers read it
    themselves."""
    return isinstance(obj, (str, os.PathLike)) or is_remote(obj)


def _remote_entries(
    source: Any, recursive: bool
) -> tuple[list[tuple[str, Any]], list[dict[str, str]]] | None:
    """A remote folder or glob as ``(relative name, source)`` pairs of its checkpoint files in
    natural order, and what was left out; None when ``source`` names one object.

    A source given as ``(fs, path)`` or ``OpenFile`` yields ``(fs, path)`` pairs, so workers
    open them with the same filesystem; a URL yields URLs.
    """
    from ._io._remote import failures, filesystem, hold, is_glob

    url, given = hold(source)  # a filesystem object: used for this listing
    if not is_glob(url) and url.lower().endswith(checkpoint_suffixes()):
        return None  # a file by its name: no listing request
    fs, root = filesystem(url)
    del given
    with failures(url, "listing it"):
        return _remote_list(fs, root, url, recursive, not isinstance(source, str))


def _remote_list(
    fs: Any, root: str, url: str, recursive: bool, keep: bool
) -> tuple[list[tuple[str, Any]], list[dict[str, str]]] | None:
    from ._io._remote import is_glob

    suffixes = checkpoint_suffixes()

    def base(path: str) -> str:
        return str(fs.unstrip_protocol(path))

    def as_source(path: str) -> Any:
        return (fs, path) if keep else base(path)

    if is_glob(url):
        fs.invalidate_cache()
        found = [str(p) for p in fs.glob(root)]
        top = root.split("*", 1)[0].split("?", 1)[0].split("[", 1)[0].rsplit("/", 1)[0]
        hits = [p for p in found if p.lower().endswith(suffixes)]
        hits.sort(key=lambda p: _natural_name(p.rsplit("/", 1)[-1]))
        left = [
            _entry(base(p), p[len(top) :].lstrip("/"), "skipped", "", "not a checkpoint file name")
            for p in found
            if not p.lower().endswith(suffixes)
        ]
        return [(p[len(top) :].lstrip("/"), as_source(p)) for p in hits], left
    fs.invalidate_cache(root)
    if not fs.isdir(root):
        return None
    return _remote_walk(fs, root.rstrip("/"), root.rstrip("/"), recursive, as_source, base)


def _remote_walk(
    fs: Any,
    folder: str,
    top: str,
    recursive: bool,
    as_source: Callable[[str], Any],
    base: Callable[[str], str],
) -> tuple[list[tuple[str, Any]], list[dict[str, str]]]:
    suffixes = checkpoint_suffixes()
    entries = sorted(
        (e for e in fs.ls(folder, detail=True) if str(e["name"]).rstrip("/") != folder),
        key=lambda e: _natural_name(str(e["name"]).rstrip("/").rsplit("/", 1)[-1]),
    )
    found: list[tuple[str, Any]] = []
    left: list[dict[str, str]] = []
    for e in entries:
        path = str(e["name"]).rstrip("/")
        rel = path[len(top) :].lstrip("/")
        if e.get("type") == "directory":
            if not recursive:
                why = "a folder inside the folder; -r (recursive=True) reads those too"
                left.append(_entry(base(path), rel, "skipped", "", why))
                continue
            sub, sub_left = _remote_walk(fs, path, top, recursive, as_source, base)
            found += sub
            left += sub_left
        elif path.lower().endswith(suffixes):
            found.append((rel, as_source(path)))
        else:
            why = f"not a checkpoint file name (read: {', '.join(suffixes)})"
            left.append(_entry(base(path), rel, "skipped", "", why))
    return found, left


def _entry(source: Any, name: str, status: str, error: str, reason: str) -> dict[str, str]:
    """One row of the ``failed`` table (plain strings: JSON-ready, safe in ``DataFrame.attrs``)."""
    return {"name": name, "source": str(source), "status": status, "error": error, "reason": reason}


def _walk(
    folder: Path, recursive: bool, top: Path, seen: set[Path]
) -> tuple[list[Path], list[Any]]:
    """Checkpoint files under ``folder`` (natural order) and what was left out, with reasons."""
    found: list[Path] = []
    left: list[dict[str, str]] = []
    suffixes = checkpoint_suffixes()
    try:
        entries = sorted(folder.iterdir(), key=_natural)
    except OSError as err:
        reason = f"cannot list the folder: {err.strerror or err}"
        return [], [_entry(folder, _rel(folder, top), "failed", type(err).__name__, reason)]
    for p in entries:
        name = _rel(p, top)
        if p.is_dir():
            real = p.resolve()
            if not recursive:
                why = "a folder inside the folder; -r (recursive=True) reads those too"
                left.append(_entry(p, name, "skipped", "", why))
            elif real in seen:
                left.append(_entry(p, name, "skipped", "", "a link back to a folder already read"))
            else:
                seen.add(real)
                sub, sub_left = _walk(p, recursive, top, seen)
                found += sub
                left += sub_left
                if not sub and not sub_left:
                    left.append(_entry(p, name, "skipped", "", "an empty folder"))
        elif p.is_symlink() and not p.exists():
            target = os.readlink(p)
            why = f"a link to {target!r}, which does not exist"
            if p.name.lower().endswith(suffixes):  # a checkpoint that is not there
                left.append(_entry(p, name, "failed", "FileNotFoundError", why))
            else:
                left.append(_entry(p, name, "skipped", "", why))
        elif not p.is_file():
            left.append(_entry(p, name, "skipped", "", "not a regular file"))
        elif p.name.lower().endswith(suffixes):
            found.append(p)
        else:
            why = f"not a checkpoint file name (read: {', '.join(suffixes)})"
            left.append(_entry(p, name, "skipped", "", why))
    return found, left


def _rel(p: Path, top: Path) -> str:
    try:
        return p.relative_to(top).as_posix()
    except ValueError:
        return str(p)


def collect_sources(
    sources: Any, names: Sequence[str] | None = None, recursive: bool = False
) -> tuple[list[tuple[str, Any]], list[dict[str, str]]]:
    """``(name, source)`` pairs to read, and the table rows of what folders held besides.

    A folder becomes its checkpoint files (by name: ``.keras``, ``.h5``, ...), in natural order;
    other files and (unless ``recursive``) subfolders are left out, each with its reason. Files in
    subfolders are named by their path relative to the folder given. A folder with no checkpoint
    file is a ``failed`` row; when nothing at all is left to read, :class:`InputError`.
    """
    one = not isinstance(sources, (list, tuple)) or is_remote(sources)  # (fs, path) is one
    items = [sources] if one else list(sources)
    flat: list[Any] = []
    rel: dict[int, str] = {}
    left: list[dict[str, str]] = []
    for s in items:
        if is_remote(s):
            try:
                listed = _remote_entries(s, recursive)
            except RnnscopeError as err:  # the backend's error, naming the URL
                url = remote_url(s)
                left.append(_entry(url, url, "failed", type(err).__name__, str(err)))
                continue
            if listed is None:
                flat.append(s)
                continue
            found_r, out = listed
            left += out
            if not found_r:
                why = f"the folder holds no checkpoint files ({', '.join(checkpoint_suffixes())})"
                left.append(_entry(remote_url(s), remote_url(s), "failed", "InputError", why))
            for name, src in found_r:
                if "/" in name:
                    rel[len(flat)] = name
                flat.append(src)
        elif _is_path(s) and Path(s).is_dir():
            top = Path(s)
            found, out = _walk(top, recursive, top, {top.resolve()})
            left += out
            if not found:
                why = f"the folder holds no checkpoint files ({', '.join(checkpoint_suffixes())})"
                if out:
                    why += f"; {len(out)} other entr{'y' if len(out) == 1 else 'ies'} left out"
                left.append(_entry(s, str(s), "failed", "InputError", why))
            for p in found:
                if p.parent != top:
                    rel[len(flat)] = _rel(p, top)
                flat.append(str(p))
        else:
            flat.append(os.fspath(s) if _is_path(s) else s)
    if not flat:
        if len(items) == 1 and left and left[-1]["status"] == "failed":
            raise InputError(
                f"folder '{items[0]}': {left[-1]['reason']}", path=str(items[0]), argument="sources"
            )
        raise InputError(
            "sources: nothing to read (an empty list)"
            if not left
            else "sources: nothing to read; "
            + "; ".join(f"{e['name']}: {e['reason']}" for e in left[:5]),
            argument="sources",
        )
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != len(flat):
            raise InputError(
                f"names: {len(flat)} sources, so {len(flat)} names are needed; got {len(names)}",
                argument="names",
            )
        if len(set(names)) != len(names):
            raise InputError(f"names must be unique; got {names}", argument="names")
        return list(zip(names, flat, strict=True)), left
    default = _default_names(flat, rel)
    return list(zip(default, flat, strict=True)), left


def expand_sources(sources: Any, names: Sequence[str] | None = None) -> list[tuple[str, Any]]:
    """``(name, source)`` pairs: a folder becomes its checkpoint files, sorted by name."""
    pairs, left = collect_sources(sources, names)
    failed = [e for e in left if e["status"] == "failed"]
    if failed:
        raise InputError(
            f"folder '{failed[0]['source']}': {failed[0]['reason']}",
            path=failed[0]["source"],
            argument="sources",
        )
    return pairs


def _natural(p: Path) -> list[Any]:
    """Sort key: numbers in names by value, so epoch2 comes before epoch10."""
    return _natural_name(p.name)


def _natural_name(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _default_names(flat: list[Any], rel: dict[int, str] | None = None) -> list[str]:
    from ._api import resolve

    rel = rel or {}
    out: list[str] = []
    for i, s in enumerate(flat):
        if i in rel:
            base = rel[i]
        elif is_remote(s):
            base = remote_url(s).rstrip("/").rsplit("/", 1)[-1]
        elif _is_path(s):
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


def _can_limit_blas() -> bool:
    """Whether this process's BLAS threads can be limited for one call (threadpoolctl)."""
    from importlib.util import find_spec

    return find_spec("threadpoolctl") is not None


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """This process's BLAS libraries limited to one thread inside the block."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def run_per_source(
    fn: Callable[..., Any],
    pairs: list[tuple[str, Any]],
    args: tuple[Any, ...],
    executor: cf.Executor | None,
    jobs: int | None,
    progress: Progress | None,
) -> list[Any]:
    """``fn(source, name, *args)`` for every pair, in order; the first failure is raised."""
    results, _ = run_sources(fn, pairs, args, executor, jobs, progress, strict=True)
    return results


def run_sources(
    fn: Callable[..., Any],
    pairs: list[tuple[str, Any]],
    args: tuple[Any, ...],
    executor: cf.Executor | None,
    jobs: int | None,
    progress: Progress | None,
    strict: bool = False,
    cache: Cache | None = None,
) -> tuple[list[Any], list[dict[str, str]]]:
    """``fn(source, name, *args)`` for every pair, in parallel where asked.

    Returns the results of the sources that worked, in source order, and a ``failed`` row for
    each that did not (its error and reason). With ``strict`` the first error is raised instead.
    A worker process that dies (a crash inside a native library) breaks a process pool: the
    files not finished are run again in a fresh pool, and a file that kills its worker on its own
    is a ``failed`` row; the others' results are kept. With a ``cache``, files whose results
    it holds are not read; the others' results are stored (by this process, never a worker).
    """
    from ._io._remote import pinned
    from ._parallel import Runner

    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise InputError(f"jobs must be a positive integer; got {jobs!r}", argument="jobs")
    if executor is not None and jobs not in (None, 1):
        raise InputError("give jobs= or executor=, not both", argument="executor")
    runner = Runner(fn, pairs, args, progress, strict)
    with pinned():  # a remote object's size and ETag: one request, for the cache and the reader
        _cached_run(runner, pairs, fn, args, executor, jobs, cache)
    return runner.collect()


def _cached_run(
    runner: Any,
    pairs: list[tuple[str, Any]],
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    executor: cf.Executor | None,
    jobs: int | None,
    cache: Cache | None,
) -> None:
    """Look up, run what the cache lacks, store. A remote object's identity is fetched once
    (inside :func:`pinned`): the check after the read sees the same ETag, so a change while it
    was read is caught for local files only; the result is then kept under the ETag from before
    the read, which the changed object no longer has (the next run reads it again)."""
    import time

    from ._cache import identity

    idents = {i: identity(s) for i, (_, s) in enumerate(pairs)} if cache is not None else {}
    hits = set()
    for i, ident in idents.items():
        got = None if ident is None or cache is None else cache.get(ident, pairs[i][0], fn, args)
        if got is not None:
            runner.done(i, got)
            hits.add(i)
    t0 = time.time_ns()
    remote = [i for i, (_, s) in enumerate(pairs) if _is_path(s) and i not in hits]
    _dispatch(runner, remote, executor, jobs)
    if cache is not None:
        for i, ident in idents.items():
            ok, value = runner.outcome[i]
            if ident is None or not ok or i in hits:
                continue
            if identity(pairs[i][1]) == ident:  # not changed while it was read
                cache.put(ident, pairs[i][0], fn, args, value, t0)
            else:
                cache.computed += 1


def _dispatch(
    runner: Any, remote: list[int], executor: cf.Executor | None, jobs: int | None
) -> None:
    # several sources read with one BLAS thread each, as in a full run: this process's default
    # BLAS threads are many times slower on a busy machine (an LSTM(512) kernel's SVD: 9 s
    # against 0.5 s). The one file a rerun has left (the others came from the cache) is read
    # here with this process's BLAS limited to one thread (threadpoolctl): starting a worker
    # costs more than its statistics; without threadpoolctl it goes to a worker
    many = len(remote) > 1 or (len(remote) == 1 and len(runner.pairs) > 1)
    if executor is None and (jobs or 1) > 1 and len(remote) == 1 and many and _can_limit_blas():
        # the one file a rerun has left: here, with one BLAS thread (no worker to start)
        with _one_blas_thread():
            runner.here(remote)
    elif executor is None and (jobs or 1) > 1 and many:
        with _single_threaded_blas():
            runner.in_processes(remote, min(jobs or 1, len(remote)))
    elif executor is not None and remote:
        runner.on_executor(executor, remote)
    else:
        runner.here(list(range(len(runner.pairs))))


def _frame(rows: list[dict[str, Any]], tol: float) -> pd.DataFrame:
    import pandas as pd

    df = pd.DataFrame(rows, columns=COLUMNS)
    for c in ("units", "dead_units", "saturated_units"):  # counts; empty where none
        df[c] = df[c].astype("Int64")
    df.attrs["tol"] = tol
    return df


def _tol(tol: Any) -> float:
    try:
        value = float(tol)
    except (TypeError, ValueError) as err:
        raise InputError(f"tol must be a non-negative number; got {tol!r}", argument="tol") from err
    if not value >= 0:
        raise InputError(f"tol must be a non-negative number; got {tol!r}", argument="tol")
    return value


class NothingReadError(InputError):
    """No source could be read; ``.failed`` holds a row per source with its reason."""

    def __init__(self, message: str, failed: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.failed = failed


def read_all(
    fn: Callable[..., Any],
    sources: Any,
    names: Sequence[str] | None,
    args: tuple[Any, ...],
    *,
    executor: cf.Executor | None,
    jobs: int | None,
    progress: Progress | None,
    recursive: bool,
    strict: bool,
    cache: Cache | None = None,
) -> tuple[list[Any], list[dict[str, str]], list[str]]:
    """``fn`` over every source, carrying on past failures unless ``strict``.

    Returns the results, the ``failed`` table's rows — sources that could not be read
    (``status`` "failed") and folder entries left out (``status`` "skipped"), each with its
    reason — and the names of every source given, in order (read or not). A single source, or
    ``strict``, raises its own error; when every one of several sources fails,
    :class:`NothingReadError`.
    """
    pairs, left = collect_sources(sources, names, recursive)
    if strict:
        bad = [e for e in left if e["status"] == "failed"]
        if bad:
            raise InputError(
                f"folder '{bad[0]['source']}': {bad[0]['reason']}",
                path=bad[0]["source"],
                argument="sources",
            )
    alone = len(pairs) == 1 and not left
    results, failed = run_sources(
        fn, pairs, args, executor, jobs, progress, strict=strict or alone, cache=cache
    )
    table = sorted(failed + left, key=lambda e: e["status"])  # failed first, then skipped
    if not results:
        listing = "; ".join(f"{e['name']}: {e['reason']}" for e in failed[:5])
        more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
        raise NothingReadError(
            f"none of the {len(pairs)} sources could be read: {listing}{more}", table
        )
    return results, table, [name for name, _ in pairs]


def warn_failed(table: list[dict[str, str]], total: int, where: str) -> None:
    """One warning naming the sources that failed (the CLI lists them itself)."""
    failed = [e["name"] for e in table if e["status"] == "failed"]
    if failed:
        import warnings

        shown = ", ".join(failed[:5]) + (", ..." if len(failed) > 5 else "")
        warnings.warn(
            f"{len(failed)} of {total} sources could not be read ({shown}); their reasons are "
            f"in {where}; strict=True raises instead",
            RuntimeWarning,
            stacklevel=3,
        )


def stats(
    sources: Any,
    names: Sequence[str] | None = None,
    *,
    tol: float = 1e-3,
    executor: cf.Executor | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    recursive: bool = False,
    strict: bool = False,
    cache: Any = None,
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

    A source that cannot be read does not stop the others: ``df.attrs["failed"]`` lists it
    (and every folder entry left out) as a row ``{"name", "source", "status", "error",
    "reason"}`` — ``pd.DataFrame(df.attrs["failed"])`` is the table — and one
    ``RuntimeWarning`` names the failed ones.

    Args:
        sources: a model, checkpoint path, folder of checkpoints, record, or a list of them.
        names: a name per source (default: file names, model names).
        tol: the near-zero threshold.
        executor: any ``concurrent.futures.Executor`` to run the per-file work on.
        jobs: run the per-file work in this many processes (ignored for live models).
        progress: called as ``progress(done, total, name)`` after each source.
        recursive: read folders inside folders too (files are named by their relative path).
        strict: all or nothing: the first source that cannot be read raises its error.
        cache: where per-file results are kept, so a rerun reads only new or changed files:
            None (default) ``$RNNSCOPE_CACHE`` or the user's cache folder (``RNNSCOPE_CACHE=off``
            turns it off), a path to a database, or False for none. ``df.attrs["cache"]``
            says how many results came from it (``hits``) and how many were computed.

    Raises:
        NothingReadError: (an :class:`InputError`) when no source could be read; a single
            source, or ``strict``, raises that source's own error.

    Example:
        >>> df = rnnscope.stats(
        ...     ["checkpoints/epoch1.safetensors", "checkpoints/epoch16.safetensors"])
        >>> rk = df[df.part == "recurrent_kernel"]
        >>> rk.pivot_table("spectral_norm", "gate", "model", sort=False).round(2)
        model   epoch1.safetensors  epoch16.safetensors
        gate
        input                 1.67                 5.98
        forget                1.78                 5.68
        cell                  2.62                 6.03
        output                1.70                 6.58
    """
    from ._errors import require

    require("pandas", "report", "rnnscope.stats")
    from ._cache import open_cache

    value = _tol(tol)
    store = open_cache(cache)
    try:
        per, failed, given = read_all(
            source_rows,
            sources,
            names,
            (value,),
            executor=executor,
            jobs=jobs,
            progress=progress,
            recursive=recursive,
            strict=strict,
            cache=store,
        )
    finally:
        if store is not None:
            store.close()
    df = _frame([r for rows in per for r in rows], value)
    df.attrs["failed"] = failed
    df.attrs["cache"] = store.summary() if store is not None else None
    df.attrs["sources"] = given  # every source given, in order: what a baseline index counts
    warn_failed(
        failed, len(per) + sum(e["status"] == "failed" for e in failed), "df.attrs['failed']"
    )
    return df


def compare(
    sources: Any,
    names: Sequence[str] | None = None,
    baseline: int | str | None = None,
    *,
    tol: float = 1e-3,
    executor: cf.Executor | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    recursive: bool = False,
    strict: bool = False,
    run: bool | None = None,
    metrics: Any = None,
    rank_by: str | None = None,
    metrics_offset: int | None = None,
    cache: Any = None,
) -> pd.DataFrame:
    """The statistics of several models aligned by (layer, part, gate, direction).

    One row per key and model, in source order, with ``present`` (False where a model lacks the
    key: its statistics are empty, not an error), for the main statistics ``<stat>_change``
    (minus the baseline model's value) and ``<stat>_rel_change`` (divided by ``|baseline|``), and
    ``l2_norm_step_rel_change``: the L2 norm's relative change since the previous model that
    has the block (checkpoint to checkpoint: how fast the weights move). Sources that cannot
    be read are left out and listed in ``df.attrs["failed"]``, as in :func:`stats`.

    ``baseline`` is a source's name or its index among the sources given (a folder's files in
    natural order, whether they could be read or not); a baseline that could not be read is an
    :class:`InputError`. The default, ``None``, is the first source read; if sources before it
    could not be read, ``df.attrs["baseline_note"]`` says so (and a warning).

    A folder is a training RUN when every name carries a step or epoch number (``ckpt-0005.h5``,
    ``model.03-0.42.keras``, ``step_1200.safetensors``, ``epoch=3-step=1500.ckpt``; or
    ``run=True``): the models are ordered by it and ``l2_norm_step_rel_change`` is the change
    since the previous checkpoint. Otherwise (or ``run=False``) they are VARIANTS: compared
    with the baseline only, ``l2_norm_step_rel_change`` empty. ``df.attrs["mode"]`` is "run"
    or "variants" and ``df.attrs["mode_note"]`` says why; the column ``step`` holds each
    model's number.

    ``metrics`` (a ``CSVLogger`` CSV, a ``History`` JSON dump, a TensorBoard log folder, a
    monitor database, a DataFrame; see :func:`rnnscope.read_metrics`) adds a column per
    metric, matched by epoch (a file's epoch E is the logs' epoch E-1, or E+``metrics_offset``)
    or step. ``rank_by`` (``"val_loss"``; ``"val_f1:max"`` to say the direction) ranks the
    checkpoints by a metric, fewer errors then fewer warnings breaking ties:
    ``df.attrs["checkpoints"]`` holds a record per model (step, metrics, flag counts, rank)
    and ``df.attrs["keep"]`` the line naming the one to keep.

    ``cache`` keeps per-file statistics between runs, as in :func:`stats`.

    Example:
        >>> df = rnnscope.compare("checkpoints/", baseline=0)
        >>> rk = df[df.part == "recurrent_kernel"]
        >>> rk.pivot_table("l2_norm_rel_change", "model", "gate", sort=False).round(2)
        gate                 input  forget  cell  output
        model
        epoch0.safetensors    0.00    0.00  0.00    0.00
        epoch1.safetensors    0.23    0.25  0.51    0.20
        epoch2.safetensors    0.42    0.38  0.83    0.38
        epoch4.safetensors    0.86    0.70  1.22    0.86
        epoch8.safetensors    1.82    1.52  1.89    1.95
        epoch16.safetensors   3.52    3.11  3.04    3.58
    """
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        table = stats(
            sources,
            names,
            tol=tol,
            executor=executor,
            jobs=jobs,
            progress=progress,
            recursive=recursive,
            strict=strict,
            cache=cache,
        )
    out = compare_table(
        table, baseline, run=run, metrics=metrics, rank_by=rank_by, metrics_offset=metrics_offset
    )
    for w in caught:  # said once, from here
        warnings.warn(str(w.message), w.category, stacklevel=2)
    if out.attrs.get("baseline_note"):
        warnings.warn(out.attrs["baseline_note"], RuntimeWarning, stacklevel=2)
    return out


def pick_baseline(
    baseline: int | str | None, models: list[str], sources: list[str], failed: list[dict[str, str]]
) -> tuple[str, str]:
    """The baseline model's name and a note ("" or why it is not the first source given).

    ``baseline`` indexes or names ``sources`` (every source given, read or not), so a source
    that failed never shifts which model an index means; a chosen baseline that failed is an
    error, not a silent substitute.
    """
    lost = {e["name"]: e["reason"] for e in failed if e["status"] == "failed"}
    given = sources or models
    if baseline is None:
        if given[0] in lost:
            return models[0], (
                f"the first source, '{given[0]}', could not be read ({lost[given[0]]}); "
                f"the baseline is the first model read, '{models[0]}'"
            )
        return models[0], ""
    if isinstance(baseline, int) and not isinstance(baseline, bool):
        if not -len(given) <= baseline < len(given):
            raise InputError(
                f"baseline index {baseline} is out of range for {len(given)} sources",
                argument="baseline",
            )
        name = given[baseline]
    elif baseline in given:
        name = str(baseline)
    else:
        raise InputError(
            f"baseline {baseline!r} is not one of the models: {', '.join(given)}",
            argument="baseline",
        )
    which = f"baseline {baseline!r}" + ("" if name == baseline else f" ({name})")
    if name in lost:
        raise InputError(f"{which} could not be read: {lost[name]}", argument="baseline")
    if name not in models:
        raise InputError(f"{which} has no layer statistics to compare", argument="baseline")
    return name, ""


def compare_table(
    table: pd.DataFrame,
    baseline: int | str | None = None,
    *,
    run: bool | None = None,
    metrics: Any = None,
    rank_by: str | None = None,
    metrics_offset: int | None = None,
    thresholds: Any = None,
    flags: list[Any] | None = None,
) -> pd.DataFrame:
    """:func:`compare` of an existing :func:`stats` frame (``flags``: the models' flags when
    the caller has them; a run's "changing fast" flags are appended to it,
    :func:`rnnscope._metrics.checkpoint_table`)."""
    import numpy as np
    import pandas as pd

    from ._runs import RUN, decide_mode

    mode = decide_mode(list(dict.fromkeys(table["model"])), run)
    if mode.mode == RUN:  # in step order
        order = {m: i for i, m in enumerate(mode.order)}
        table = table.sort_values("model", key=lambda s: s.map(order), kind="stable")
    models = list(dict.fromkeys(table["model"]))
    base, note = pick_baseline(
        baseline, models, list(table.attrs.get("sources", [])), table.attrs.get("failed", [])
    )
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
    out["l2_norm_step_rel_change"] = step.reindex(out.index) if mode.mode == RUN else np.nan
    out.attrs.update(tol=table.attrs["tol"], baseline=base, models=models, baseline_note=note)
    out.attrs["cache"] = table.attrs.get("cache")
    out.attrs["failed"] = list(table.attrs.get("failed", []))
    return _with_checkpoints(out, table, mode, metrics, rank_by, metrics_offset, thresholds, flags)


def _with_checkpoints(
    out: pd.DataFrame,
    table: pd.DataFrame,
    mode: Any,
    metrics: Any,
    rank_by: str | None,
    offset: int | None,
    thresholds: Any,
    flags: list[Any] | None = None,
) -> pd.DataFrame:
    """The per-model columns (``step``, metrics) and the run/variants and ranking attrs."""
    from ._metrics import checkpoint_table, records

    per, keep, notes = checkpoint_table(
        table,
        out,
        mode,
        metrics,
        offset=offset,
        rank_by=rank_by,
        thresholds=thresholds,
        flags=flags,
    )
    extra = [c for c in per.columns if c not in ("errors", "warnings", "notes", "rank")]
    clash = {c: f"metric_{c}" for c in extra if c != "step" and c in out.columns}
    if clash:
        notes.append(f"metrics named like statistics columns renamed: {clash}")
    cols = per[extra].rename(columns=clash)
    attrs = dict(out.attrs)
    out = out.join(cols, on="model")
    out.attrs = attrs
    out.attrs.update(
        mode=mode.mode,
        counter=mode.kind if mode.kind in ("step", "epoch") else "",
        mode_note=mode.describe(),
        step_notes=list(mode.notes),
        metrics_notes=notes,
        metrics=[c for c in cols.columns if c != "step"],
        checkpoints=records(per.rename(columns=clash)),
        rank_by=rank_by,
        keep=keep,
    )
    return out


def flags(
    sources: Any,
    names: list[str] | None = None,
    *,
    thresholds: Any = None,
    tol: float = 1e-3,
    jobs: int | None = None,
    recursive: bool = False,
    strict: bool = False,
    cache: Any = None,
) -> pd.DataFrame:
    """Health flags of one or several models as a DataFrame, most serious first.

    One row per flag: ``severity`` (error, warning, note), ``model``, ``where`` (layer / part /
    gate / direction), ``rule``, ``value`` (the number judged), ``message`` and ``hint`` (what to
    look at next). ``df.to_json(orient="records")`` is the JSON form.

    Args:
        sources: what :func:`rnnscope.stats` takes, or a frame it returned.
        names, tol, jobs, recursive, strict, cache: as in :func:`rnnscope.stats` (unused for
            a frame).
        thresholds: when statistics become flags (:class:`rnnscope.Thresholds`).

    Example:
        >>> df = rnnscope.flags("checkpoints/")
        >>> df[["model", "rule"]].values.tolist()[:2]
        [['epoch0.safetensors', 'untrained'], ['epoch2.safetensors', 'recurrent_norm']]
    """
    import pandas as pd

    from ._flags import FLAG_COLUMNS, Thresholds, by_severity, flags_for

    if isinstance(sources, pd.DataFrame):
        table = sources
    else:
        table = stats(
            sources, names, tol=tol, jobs=jobs, recursive=recursive, strict=strict, cache=cache
        )
    t = thresholds or Thresholds()
    rows = table.to_dict("records")
    found = []
    for model in dict.fromkeys(r["model"] for r in rows):
        found += flags_for([r for r in rows if r["model"] == model], t)
    out = pd.DataFrame(
        [{c: getattr(f, c) for c in FLAG_COLUMNS} for f in by_severity(found)],
        columns=FLAG_COLUMNS,
    )
    out.attrs["failed"] = list(table.attrs.get("failed", []))
    return out
