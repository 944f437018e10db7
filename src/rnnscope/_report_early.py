"""The last checkpoint's figures, drawn in a second process while the statistics are read.

The last checkpoint always gets a full section (:func:`._report_groups.select_detail`), so its
figures need not wait for the statistics of the whole run. With ``jobs`` > 1 and a cache that
does not hold them yet, :func:`start` draws them in one spawned worker from the start of the
report; :func:`finish` takes the result for the figure pass and keeps it in the cache under the
same rules as any other result (the file unchanged during the read, not modified just before
it). A rerun after one new checkpoint then reads that checkpoint's statistics here while its
figures are drawn there: the two take about as long. A failure there is not reported: the figure
pass computes that file again the ordinary way, which reports it.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._parallel import _born_deaf, _pool, _stop, call

if TYPE_CHECKING:
    from ._cache import Cache, Identity

__all__ = ["Early", "finish", "start"]


@dataclass
class Early:
    """One file's figures being drawn in a worker: what to check and store when they come."""

    name: str
    source: Any
    ident: Identity
    t0: int
    future: cf.Future[Any]
    pool: cf.ProcessPoolExecutor

    def close(self) -> None:
        """End the worker: at once when it is still drawing (the report failed, was
        interrupted, or had no figure pass)."""
        if not self.future.done():
            _stop(self.pool)
        self.pool.shutdown(wait=True, cancel_futures=True)


def start(
    fn: Callable[..., Any],
    pairs: list[tuple[str, Any]],
    args: tuple[Any, ...],
    cache: Cache | None,
    jobs: int | None,
) -> Early | None:
    """Start ``fn(source, name, *args)`` for the last of ``pairs`` in a worker, or None when
    there is no cache, one job only, nothing to read, or the cache already holds the result."""
    from ._cache import identity
    from ._tables import _single_threaded_blas

    if cache is None or not cache.on or not isinstance(jobs, int) or jobs < 2 or not pairs:
        return None
    name, source = pairs[-1]
    ident = identity(source)
    if ident is None or cache.has(ident, name, fn, args):
        return None
    t0 = time.time_ns()
    pool = _pool(1, multiprocessing.get_context("spawn"))
    with _single_threaded_blas(), _born_deaf():
        future = pool.submit(call, fn, source, name, args, False)
    return Early(name, source, ident, t0, future, pool)


def finish(
    early: Early | None, cache: Cache | None, fn: Callable[..., Any], args: tuple[Any, ...]
) -> dict[str, Any]:
    """``{name: result}`` of the early file (empty when there was none or it failed), stored
    in the cache when the file did not change while it was read."""
    from ._cache import identity

    if early is None:
        return {}
    try:
        ok, value = early.future.result()
    except Exception:  # a worker that died: the figure pass reads the file again and says why
        return {}
    finally:
        early.pool.shutdown(wait=True)
    if not ok:
        return {}
    if cache is not None and identity(early.source) == early.ident:
        cache.put(early.ident, early.name, fn, args, value, early.t0)
    elif cache is not None:
        cache.computed += 1
    return {early.name: value}
