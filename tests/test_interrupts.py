"""Stopping a run with worker processes: Ctrl-C ends it with one line and exit code 130, and no
worker outlives its parent (a killed parent left workers waiting for work forever, holding the
output pipe open, so `rnnscope ... | tee` never ended)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import IN_A_TERMINAL

safetensors_np = pytest.importorskip("safetensors.numpy")
pytest.importorskip("pandas")

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _wait_for(check, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.1)
    return False


def _start(argv: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )


pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def test_workers_exit_when_their_parent_is_killed(tmp_path):
    for i in range(4):
        (tmp_path / f"{i}.safetensors").write_bytes(b"")
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(f"""
        import time
        from rnnscope._tables import run_sources

        def slow(source, name, tol):
            time.sleep(600)

        if __name__ == "__main__":
            pairs = [(str(i), r"{tmp_path}/" + f"{{i}}.safetensors") for i in range(4)]
            run_sources(slow, pairs, (1e-3,), None, 2, None)
        """)
    )
    proc = _start([sys.executable, str(script)])
    kids: list[int] = []
    try:  # two workers (and multiprocessing's resource tracker) once the pool is up
        assert _wait_for(lambda: len(_children(proc.pid)) >= 3, 120), "no workers started"
        kids = _children(proc.pid)
        proc.kill()  # SIGKILL: the parent runs no cleanup at all
        proc.wait(30)
        gone = _wait_for(lambda: not any(Path(f"/proc/{k}").exists() for k in kids), 30)
        assert gone, "worker processes outlived their parent"
    finally:  # the workers by their own ids: once orphaned they are no one's children
        for k in kids + _children(proc.pid):
            try:
                os.kill(k, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.kill()
        proc.communicate()


def test_ctrl_c_stops_a_parallel_run_with_one_line_and_code_130(tmp_path):
    rng = np.random.default_rng(0)
    u = 700  # big enough that each file's statistics (eigenvalues per gate) take a while
    for i in range(6):
        safetensors_np.save_file(
            {
                "l.weight_ih_l0": rng.normal(size=(3 * u, u)).astype("f4"),
                "l.weight_hh_l0": rng.normal(size=(3 * u, u)).astype("f4"),
            },
            str(tmp_path / f"{i}.safetensors"),
        )
    proc = _start([*IN_A_TERMINAL, "-m", "rnnscope", "stats", str(tmp_path), "--jobs", "2"])
    try:
        assert _wait_for(lambda: len(_children(proc.pid)) >= 3, 120), "no workers started"
        kids = _children(proc.pid)
        time.sleep(1)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    text = err.decode()
    assert proc.returncode == 130, text[-2000:]
    assert "rnnscope: interrupted" in text and "Traceback" not in text
    assert _wait_for(lambda: not any(Path(f"/proc/{k}").exists() for k in kids), 30)


def test_ctrl_c_while_workers_start_prints_no_traceback_of_theirs(tmp_path):
    """Ctrl-C goes to the whole process group: a worker still importing used to print its own
    KeyboardInterrupt traceback. Sent as soon as the first worker exists, several times over."""
    rng = np.random.default_rng(1)
    for i in range(4):
        safetensors_np.save_file(
            {
                "l.weight_ih_l0": rng.normal(size=(12, 4)).astype("f4"),
                "l.weight_hh_l0": rng.normal(size=(12, 4)).astype("f4"),
            },
            str(tmp_path / f"{i}.safetensors"),
        )
    for _ in range(3):
        proc = _start([*IN_A_TERMINAL, "-m", "rnnscope", "stats", str(tmp_path), "--jobs", "2"])
        try:
            assert _wait_for(lambda p=proc.pid: len(_children(p)) >= 1, 120), "no worker started"
            kids = _children(proc.pid)
            os.killpg(proc.pid, signal.SIGINT)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
        text = err.decode()
        if proc.returncode == 0:  # the run beat the signal: nothing to see this time
            continue
        assert proc.returncode == 130, text[-2000:]
        assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]
        assert text.strip().splitlines()[-1] == "rnnscope: interrupted", text[-2000:]
        assert _wait_for(lambda ks=kids: not any(Path(f"/proc/{k}").exists() for k in ks), 30)
