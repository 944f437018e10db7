"""``rnnscope report DIR --watch``: checkpoints are added while the watcher runs (a separate
process); the report grows, and every time it is read it is a whole HTML page. A checkpoint
still being written waits until it stops changing. Ctrl-C stops the watch: exit code 0, one
line, no traceback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import IN_A_TERMINAL

safetensors_np = pytest.importorskip("safetensors.numpy")
pytest.importorskip("pandas")
pytest.importorskip("jinja2")

SRC = str(Path(__file__).resolve().parents[1] / "src")
U = 4


class _Page(HTMLParser):
    """Tags opened and closed; a whole page ends its <html>."""

    def __init__(self) -> None:
        super().__init__()
        self.closed: list[str] = []

    def handle_endtag(self, tag: str) -> None:
        self.closed.append(tag)


def _models(path: Path) -> list[str] | None:
    """The checkpoints the report lists, or None if it is not there yet; fails on half a page."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    page = _Page()
    page.feed(text)
    page.close()
    assert text.rstrip().endswith("</html>") and page.closed[-1:] == ["html"], text[-300:]
    assert "</body>" in text
    return re.findall(r'<tr data-name="([^"]+)"', text)


def _blob(seed: int) -> bytes:
    r = np.random.default_rng(seed)
    state = {
        "rnn.weight_ih_l0": r.normal(size=(4 * U, 3)).astype("f4"),
        "rnn.weight_hh_l0": r.normal(size=(4 * U, U)).astype("f4"),
    }
    from safetensors.numpy import save

    return save(state)


def _until(check, seconds: float, reads: list[list[str]], out: Path) -> list[str]:
    """Read the report every 20 ms (checking it each time) until ``check(models)`` holds."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        got = _models(out)
        if got is not None:
            reads.append(got)
            if check(got):
                return got
        time.sleep(0.02)
    raise AssertionError(f"timed out; last read: {reads[-1:] or 'no report'}")


def test_watch_grows_the_report_whole_and_stops_on_ctrl_c(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    for i in range(2):
        (folder / f"step{i}.safetensors").write_bytes(_blob(i))
        os.utime(folder / f"step{i}.safetensors", (time.time() - 60,) * 2)
    out = tmp_path / "report.html"
    env = {**os.environ, "PYTHONPATH": SRC}
    argv = [*IN_A_TERMINAL, "-m", "rnnscope", "report", str(folder), "-o", str(out), "--watch"]
    argv += ["--every", "0.5", "--no-figures", "--cache", str(tmp_path / "c.sqlite")]
    proc = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    reads: list[list[str]] = []
    try:
        _until(lambda m: len(m) == 2, 120, reads, out)
        for i in (2, 3):  # written at once: taken when unchanged on two looks in a row
            (folder / f"step{i}.safetensors").write_bytes(_blob(i))
            _until(lambda m, i=i: f"step{i}.safetensors" in m, 120, reads, out)
        blob = _blob(4)
        half = folder / "step4.safetensors"
        with half.open("wb") as f:  # half a file, then the rest once the watcher has seen it
            f.write(blob[: len(blob) // 2])
            f.flush()
            end = time.monotonic() + 60
            while not any("waiting for step4.safetensors" in ln for ln in lines):
                assert time.monotonic() < end, lines
                time.sleep(0.02)
            f.write(blob[len(blob) // 2 :])
        final = _until(lambda m: "step4.safetensors" in m, 120, reads, out)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
        proc.wait(60)
        reader.join(30)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert final == [f"step{i}.safetensors" for i in range(5)]
    counts = [len(m) for m in reads]
    assert counts == sorted(counts) and counts[0] == 2  # it only grew
    text = out.read_text()
    assert "Not read" not in text  # the half-written file was never read
    assert proc.returncode == 0, err[-2000:]
    assert "stopped watching" in err and "Traceback" not in err
    assert any("wrote" in ln and "step4.safetensors" in ln for ln in lines), lines
    assert not list(tmp_path.glob(".report.html.*.tmp"))  # no temporary file left behind


def test_watch_rebuilds_when_the_metrics_file_changes(tmp_path):
    """No new checkpoint, only the metrics CSV rewritten: the report is rebuilt and shows the
    new values (read from the page's metrics row, which the test wrote itself)."""
    folder = tmp_path / "run"
    folder.mkdir()
    for i in (1, 2):
        (folder / f"epoch{i}.safetensors").write_bytes(_blob(i))
        os.utime(folder / f"epoch{i}.safetensors", (time.time() - 60,) * 2)
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("epoch,loss\n0,0.8125\n1,0.6875\n")
    out = tmp_path / "report.html"
    env = {**os.environ, "PYTHONPATH": SRC}
    argv = [*IN_A_TERMINAL, "-m", "rnnscope", "report", str(folder), "-o", str(out), "--watch"]
    argv += ["--every", "0.3", "--no-figures", "--no-cache", "--metrics", str(metrics)]
    proc = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()

    def loss_row() -> list[str] | None:
        text = out.read_text(encoding="utf-8") if out.exists() else ""
        got = re.search(r"<b>loss</b></td>((?:<td>[^<]*</td>)+)</tr>", text)
        return re.findall(r"<td>([^<]*)</td>", got.group(1)) if got else None

    def until(want: list[str]) -> None:
        end = time.monotonic() + 120
        while loss_row() != want:
            assert time.monotonic() < end and proc.poll() is None, (loss_row(), lines)
            time.sleep(0.05)

    try:
        until(["0.8125", "0.6875"])
        metrics.write_text("epoch,loss\n0,0.8125\n1,0.4375\n")  # the run logged a new value
        until(["0.8125", "0.4375"])
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(60)
        reader.join(30)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    assert any("(2 checkpoints; 0 new; the metrics changed)" in ln for ln in lines), lines
