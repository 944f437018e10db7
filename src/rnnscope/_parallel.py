"""Per-source work that carries on past a bad source: in this process, a process pool or an
executor.

Every source ends as a result or as a ``failed`` row (its error class and a one-line reason).
A worker process that dies (a crash inside a native library, ``os._exit``) breaks a whole
``ProcessPoolExecutor``: the results finished before are kept, the unfinished sources go on in
rounds of one per worker in a fresh pool, and the sources of a round that breaks again each run
alone in their own process, which names the one that kills its worker.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

from ._errors import UnsupportedError
from ._io._remote import is_remote, remote_url

__all__ = ["Runner", "call"]

Progress = Callable[[int, int, str], None]
_RETRIES = 2  # runs of a task the executor lost, alone, before it is listed
_NO_GUARD = (
    "a worker process could not start. Worker processes are started fresh and import the "
    "calling script again: in a script, call rnnscope under `if __name__ == '__main__':` "
    "(or use jobs=1)"
)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


def call(
    fn: Callable[..., Any],
    source: Any,
    name: str,
    args: tuple[Any, ...],
    strict: bool,
    attempt: int = 0,
) -> tuple[bool, Any]:
    """``(True, fn(source, name, *args))``, or ``(False, (error class, reason))`` if it raised.

    Runs in workers: the failure travels as two strings, so it always pickles. ``attempt``
    only makes a retry a new task for executors that name tasks by their arguments (dask).
    """
    if strict:
        return True, fn(source, name, *args)
    try:
        return True, fn(source, name, *args)
    except Exception as err:  # one source's failure, whatever raised it, is that source's row
        return False, (type(err).__name__, _one_line(err))


def _worker_start(parent: int) -> None:
    """In each worker process: a worker whose parent is gone (SIGTERM, SIGKILL, a crash) exits
    instead of waiting for work forever and holding the parent's stdout open."""
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _child(
    send: Connection, fn: Callable[..., Any], source: Any, name: str, args: Any, parent: int
) -> None:
    _worker_start(parent)
    send.send("started")
    send.send(call(fn, source, name, args, strict=False))
    send.close()


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            how = f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = f"exit code {code}"
    return f"the worker process reading it died ({how}); the other sources' results are kept"


def _pool(workers: int, ctx: Any) -> cf.ProcessPoolExecutor:
    return cf.ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_worker_start, initargs=(os.getpid(),)
    )


@contextlib.contextmanager
def _born_deaf() -> Iterator[None]:
    """Processes started inside are born with SIGINT blocked, so Ctrl-C reaches the parent only.

    A Ctrl-C goes to the whole foreground process group. A worker still importing when it came
    printed a traceback of its own (before any handler of ours could run), so workers never see
    it: the signal mask is inherited through fork and exec, and the parent stops its workers
    itself (:func:`_stop`). A Ctrl-C in the parent while blocked waits, and arrives on exit.
    """
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _stop(pool: cf.ProcessPoolExecutor) -> None:
    """End a pool's workers now (SIGTERM): after a Ctrl-C, the work they hold is not wanted."""
    stop = getattr(pool, "terminate_workers", None)  # Python 3.14+
    if stop is not None:
        stop()
        return
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        if proc.is_alive():
            proc.terminate()


class Runner:
    """Runs ``fn(source, name, *args)`` over ``pairs`` and keeps each outcome by index."""

    def __init__(
        self,
        fn: Callable[..., Any],
        pairs: list[tuple[str, Any]],
        args: tuple[Any, ...],
        progress: Progress | None,
        strict: bool,
    ) -> None:
        self.fn, self.pairs, self.args = fn, pairs, args
        self.progress, self.strict = progress, strict
        self.outcome: dict[int, tuple[bool, Any]] = {}

    def _set(self, i: int, ok: bool, value: Any) -> None:
        self.outcome[i] = (ok, value)
        if self.progress is not None:
            self.progress(len(self.outcome), len(self.pairs), self.pairs[i][0])

    def _submit(self, pool: cf.Executor, i: int, attempt: int = 0) -> cf.Future[Any]:
        name, source = self.pairs[i]
        return pool.submit(call, self.fn, source, name, self.args, self.strict, attempt)

    def done(self, i: int, value: Any) -> None:
        """Source ``i``'s result is already known (e.g. from the cache): it is not run."""
        self._set(i, True, value)

    def here(self, indices: list[int]) -> None:
        """Run in this process (sources already done are skipped)."""
        for i in indices:
            if i in self.outcome:
                continue
            name, source = self.pairs[i]
            self._set(i, *call(self.fn, source, name, self.args, self.strict))

    def on_executor(self, executor: cf.Executor, remote: list[int]) -> None:
        """Run ``remote`` on any executor (e.g. dask's); a task the executor loses is a row.

        An executor may give up on every task that was on a worker when it died (dask's
        ``KilledWorker``), the innocent with the culprit: those run again one at a time (twice
        at most: a task sent just after a death can meet the dying worker), so only a source
        that fails on its own is listed.
        """
        futures = {self._submit(executor, i): i for i in remote}
        self.here([i for i in range(len(self.pairs)) if i not in futures.values()])
        lost = self._collect(futures)
        for i in sorted(lost):
            for attempt in range(_RETRIES):
                err = self._collect({self._submit(executor, i, attempt + 1): i}).get(i)
                if err is None:
                    break
                if attempt == _RETRIES - 1:
                    first = _one_line(err).split(". ")[0]  # executors' messages run long
                    why = f"the executor failed to run it: {type(err).__name__}: {first}"
                    self._set(i, False, (type(err).__name__, why))

    def _collect(self, futures: dict[cf.Future[Any], int]) -> dict[int, Exception]:
        """Results as they come; the executor's own errors by index (raised when strict)."""
        lost = {}
        for fut in cf.as_completed(futures):
            i = futures[fut]
            try:
                self._set(i, *fut.result())
            except Exception as err:  # the executor's own failure (a lost worker, a cancel)
                if self.strict:
                    raise
                lost[i] = err
        return lost

    def in_processes(self, remote: list[int], workers: int) -> None:
        """Run ``remote`` in ``workers`` spawned processes, surviving workers that die."""
        ctx = multiprocessing.get_context("spawn")
        pool = _pool(workers, ctx)
        try:
            with _born_deaf():  # the first submits start the workers
                futures = {self._submit(pool, i): i for i in remote}
            self.here([i for i in range(len(self.pairs)) if i not in futures.values()])
            broken = self._gather(futures)
        except KeyboardInterrupt:
            _stop(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if not broken:
            return
        if self.strict:
            raise UnsupportedError(
                f"jobs={workers}: a worker process died before finishing "
                f"(unfinished: {', '.join(self.pairs[i][0] for i in sorted(broken)[:3])}). "
                "In a script, call rnnscope under `if __name__ == '__main__':`; without "
                "strict, a source that kills its worker is listed and the others are kept"
            )
        self._isolate(sorted(broken), workers, ctx)

    def _gather(self, futures: dict[cf.Future[Any], int]) -> list[int]:
        """Results as they come; the indices a broken pool left unfinished."""
        broken = []
        for fut in cf.as_completed(futures):
            try:
                ok, value = fut.result()
            except cf.process.BrokenProcessPool:
                broken.append(futures[fut])
                continue
            self._set(futures[fut], ok, value)
        return broken

    def _isolate(self, pending: list[int], workers: int, ctx: Any) -> None:
        pool: cf.ProcessPoolExecutor | None = None
        try:
            for start in range(0, len(pending), workers):
                if pool is None:
                    pool = _pool(workers, ctx)
                chunk = pending[start : start + workers]
                with _born_deaf():
                    futures = {self._submit(pool, i): i for i in chunk}
                broken = self._gather(futures)
                if broken:
                    pool.shutdown(wait=True)
                    pool = None
                    for i in broken:
                        self._alone(i, ctx)
        except KeyboardInterrupt:
            if pool is not None:
                _stop(pool)
            raise
        finally:
            if pool is not None:
                pool.shutdown(wait=True)

    def _alone(self, i: int, ctx: Any) -> None:
        """Run one source in its own process; if that process dies, the source is the culprit."""
        name, source = self.pairs[i]
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_child, args=(send, self.fn, source, name, self.args, os.getpid())
        )
        with _born_deaf():
            proc.start()
        send.close()
        started, result = False, None
        try:
            while result is None:
                message = recv.recv()
                if message == "started":
                    started = True
                else:
                    result = message
        except EOFError:
            pass
        except KeyboardInterrupt:
            proc.terminate()
            raise
        finally:
            recv.close()
            proc.join()
        if result is not None:
            self._set(i, *result)
        elif not started:
            raise UnsupportedError(_NO_GUARD)
        else:
            self._set(i, False, ("WorkerDied", _death(proc.exitcode)))

    def collect(self) -> tuple[list[Any], list[dict[str, str]]]:
        """Results of the sources that worked, and a ``failed`` row per one that did not."""
        results, failed = [], []
        for i in range(len(self.pairs)):
            ok, value = self.outcome[i]
            if ok:
                results.append(value)
            else:
                name, source = self.pairs[i]
                shown = (
                    source
                    if isinstance(source, str)
                    else remote_url(source)
                    if is_remote(source)
                    else type(source).__name__
                )
                failed.append(
                    {
                        "name": name,
                        "source": str(shown),
                        "status": "failed",
                        "error": value[0],
                        "reason": value[1],
                    }
                )
        return results, failed
