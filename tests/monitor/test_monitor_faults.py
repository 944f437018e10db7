"""The monitor's database under faults: a lock held by another process, the folder deleted, the
file made immutable, the disk full, and the ``-shm`` file that WAL would map. In each, training
completes, no step waits on the database, and every step in a database is complete (all its
rows: one transaction per flush)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

import rnnscope
from rnnscope._monitor._history import is_database
from rnnscope._monitor._store import BUSY_TIMEOUT

torch = pytest.importorskip("torch")
pytest.importorskip("pandas")
from rnnscope.torch import Monitor  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src"
ROWS_PER_STEP = 4 * 4 + 2  # LSTM: kernel, recurrent kernel, 2 biases x 4 gates; Linear: 2


def _net():
    torch.manual_seed(0)
    net = torch.nn.Sequential()
    net.lstm = torch.nn.LSTM(3, 4, batch_first=True)
    net.head = torch.nn.Linear(4, 1)
    return net


def _train(db: Path, steps: int, at=None) -> tuple[list[float], list[str]]:
    """Train ``steps`` steps under a Monitor; ``at(step)`` injects a fault. Returns the time
    each ``mon.step()`` took and the monitor's warnings."""
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = torch.randn(8, 5, 3), torch.randn(8, 1)
    took = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mon = Monitor(net, db, every=1)
        for step in range(steps):
            out, _ = net.lstm(x)
            torch.nn.functional.mse_loss(net.head(out[:, -1]), y).backward()
            t = time.perf_counter()
            mon.step()
            took.append(time.perf_counter() - t)
            opt.step()
            opt.zero_grad()
            if at is not None:
                at(step)
        mon.close()
    return took, [str(w.message) for w in caught if "rnnscope monitor" in str(w.message)]


def _complete_steps(db: Path) -> list[int]:
    """The steps of the latest run, each checked to have all its rows."""
    h = rnnscope.history(db)
    sizes = h.groupby("step").size()
    assert (sizes == ROWS_PER_STEP).all(), sizes
    return sorted(int(s) for s in sizes.index)


def _wait_for_steps(db: Path, n: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
                # the run's own row first: with n == 0 the file can exist before it is written
                runs = c.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
                steps = c.execute("SELECT COUNT(DISTINCT step) FROM stats").fetchone()[0]
                if runs >= 1 and steps >= n:
                    return
        except sqlite3.Error:
            pass
        time.sleep(0.02)
    raise AssertionError(f"{n} steps never reached {db}")


HOLD = textwrap.dedent("""
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    conn.execute("COMMIT")
""")


def test_an_exclusive_lock_held_then_released(tmp_path):
    db = tmp_path / "run.db"
    holder: list[subprocess.Popen[str]] = []

    def lock(step: int) -> None:
        if step == 2:
            _wait_for_steps(db, 2)
            p = subprocess.Popen(
                [sys.executable, "-c", HOLD, str(db), "2.0"], stdout=subprocess.PIPE, text=True
            )
            assert p.stdout is not None and p.stdout.readline().strip() == "locked"
            holder.append(p)

    took, said = _train(db, 10, lock)
    assert holder[0].wait(10) == 0
    assert max(took) < 20 * BUSY_TIMEOUT, took  # no step waited for the lock (held 2 s)
    assert sum("is locked by another connection" in m for m in said) == 1, said
    assert _complete_steps(db) == list(range(10))  # every step written once it was released


def test_the_folder_deleted_mid_run(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    db = folder / "run.db"

    def delete(step: int) -> None:
        if step == 3:
            _wait_for_steps(db, 3)
            shutil.rmtree(folder)

    took, said = _train(db, 8, delete)
    fresh = folder / "run.recovered-1.db"
    lost = [m for m in said if "lost" in m]
    assert len(lost) == 1 and f"'{fresh}'" in lost[0], said
    assert _complete_steps(fresh) == [3, 4, 5, 6, 7]  # the steps after the deletion
    assert max(took) < 20 * BUSY_TIMEOUT, took


def _chattr(flag: str, path: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


def test_the_file_made_immutable_mid_run(tmp_path):
    db = tmp_path / "run.db"
    probe = tmp_path / "probe"
    probe.write_text("x")
    if not _chattr("+i", probe):
        pytest.skip("chattr +i does not work on this file system (needs root and ext4/xfs)")
    _chattr("-i", probe)

    def freeze(step: int) -> None:
        if step == 2:
            _wait_for_steps(db, 2)
            assert _chattr("+i", db)

    try:
        took, said = _train(db, 6, freeze)
        assert max(took) < 20 * BUSY_TIMEOUT, took
    finally:
        _chattr("-i", db)
    # the transaction that failed on the frozen file may have left a hot journal: history()
    # reads a rolled-back copy, leaving the file as it is
    fresh = tmp_path / "run.recovered-1.db"
    assert any(f"'{fresh}'" in m for m in said), said
    assert _complete_steps(db) == [0, 1]
    assert _complete_steps(fresh) == [2, 3, 4, 5]


DISK_FULL = textwrap.dedent("""
    import resource, signal, sys, warnings
    sys.path[:0] = [{src!r}, {tests!r}]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    from monitor.test_monitor_faults import _train, _wait_for_steps
    from pathlib import Path
    db = Path(sys.argv[1])

    def fill(step):
        if step == 2:
            _wait_for_steps(db, 2)
            # the disk is full now: no file grows past 8 KiB (the database already has more,
            # and a fresh one needs more for its tables)
            resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    took, said = _train(db, 6, fill)
    print("TRAINED", max(took))
    for m in said:
        print("WARNING", m)
""")


def test_disk_full(tmp_path):
    db = tmp_path / "run.db"
    code = DISK_FULL.format(src=str(SRC), tests=str(SRC.parent / "tests"))
    out = subprocess.run(
        [sys.executable, "-c", code, str(db)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    trained = [ln for ln in lines if ln.startswith("TRAINED")]
    assert trained and float(trained[0].split()[1]) < 20 * BUSY_TIMEOUT, out.stdout
    warned = "\n".join(ln for ln in lines if ln.startswith("WARNING"))
    assert "failed: " in warned, out.stdout
    fresh = [f for f in sorted(tmp_path.glob("run.recovered-*.db")) if is_database(f)]
    files = [db, *fresh]  # fresh files that the full disk left empty hold nothing
    steps = [s for f in files for s in _complete_steps(f)]  # each flush is all or nothing
    assert steps[:2] == [0, 1] and len(steps) == len(set(steps))
    assert sorted(steps) != list(range(6))  # the disk stayed full: steps are missing...
    assert "recording stopped" in warned or "they are lost" in warned, out.stdout  # ...and said


def test_no_shm_file_to_truncate(tmp_path):
    """WAL maps its ``-shm`` index into memory: truncating it (or making it immutable) kills
    the writing process with SIGBUS. The monitor uses a rollback journal: there is no -shm file
    at any point of training, nothing is memory-mapped, and a reader still reads mid-run."""
    db = tmp_path / "run.db"
    seen: list[list[str]] = []

    def look(step: int) -> None:
        _wait_for_steps(db, step)
        seen.append(sorted(os.listdir(tmp_path)))
        assert len(rnnscope.history(db)) == step * ROWS_PER_STEP

    _train(db, 5, look)
    assert seen and all(not any(n.endswith(("-shm", "-wal")) for n in s) for s in seen), seen
    assert _complete_steps(db) == list(range(5))
