"""Every hostile or damaged file of ``hostile.py``, read in its own process under a memory watchdog.

Each case must end in a FormatError naming the file (with the reason the case expects) or in the
arrays its writer stored; the process must not die, and the resident memory of the reading
process and of its HDF5 reader process together must stay under 2x the largest legitimate tensor
plus 300 MB above what the process held after its imports.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import has

from . import hostile

pytestmark = pytest.mark.skipif(not has("h5py"), reason="h5py is not installed")

SRC = Path(__file__).resolve().parents[2] / "src"
CHILD = r"""
import json, sys
import numpy as np
path, out, needs = sys.argv[1], sys.argv[2], sys.argv[3]
if needs == "torch":
    import torch  # a framework's import is not the file's memory
import rnnscope

def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS"))

print(json.dumps({"base_kb": rss()}), flush=True)
try:
    ckpt = rnnscope.load(path)
    arrays = {}
    for ref in ckpt.layer_refs():
        rec = ref.extract()
        for name, a in rec.items():
            arrays[f"{rec.name}/{name}"] = np.asarray(a)
    np.savez(out, **arrays)
    print(json.dumps({"read": sorted(arrays)}), flush=True)
except rnnscope.FormatError as err:
    print(json.dumps({"format_error": str(err)}), flush=True)
"""


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, in KiB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                total += next((int(x.split()[1]) for x in fh if x.startswith("VmRSS")), 0)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except (OSError, ValueError):
            continue
    return total


def run_watched(args: list[str], cap_mb: float, timeout: float = 120) -> tuple[int, str, str, int]:
    """Run a child, polling its process tree's RSS; killed past ``cap_mb`` above its baseline.

    Returns (exit code, stdout, stderr, peak KiB above the baseline the child printed first).
    """
    env = dict(os.environ, PYTHONPATH=str(SRC), TF_CPP_MIN_LOG_LEVEL="3")
    errors = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
        env=env,
        start_new_session=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the baseline, printed after imports
    base = json.loads(first)["base_kb"] if first.startswith("{") else 0
    peak, deadline = 0, time.monotonic() + timeout
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kb(proc.pid))
        if peak - base > cap_mb * 1024 or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    out = proc.stdout.read()
    proc.wait()
    errors.seek(0)
    return proc.returncode, first + out, errors.read(), peak - base


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, hostile.Case]:
    cases = hostile.build(tmp_path_factory.mktemp("hostile"))
    return {c.name: c for c in cases}


def test_the_corpus_builds_every_case(corpus):
    wanted = [n for n, needs in hostile.NAMES.items() if has(needs)]
    assert sorted(corpus) == sorted(wanted)


@pytest.mark.parametrize("name", sorted(hostile.NAMES))
def test_hostile_file(name, corpus):
    if not has(hostile.NAMES[name]):
        pytest.skip(f"{hostile.NAMES[name]} is not installed")
    case = corpus[name]
    out = case.path.parent / f"{name}.npz"
    cap_mb = 2 * case.largest / 2**20 + 300
    code, stdout, stderr, peak_kb = run_watched(
        ["-c", CHILD, str(case.path), str(out), case.needs], cap_mb
    )
    assert code == 0, f"{name}: the process died (exit {code}); stderr:\n{stderr[-3000:]}"
    assert peak_kb <= cap_mb * 1024, f"{name}: memory grew by {peak_kb / 1024:.0f} MB"
    result = json.loads(stdout.strip().splitlines()[-1])
    if case.refuse:
        assert "format_error" in result, f"{name}: read without error: {result}"
        message = result["format_error"]
        assert str(case.path) in message, message
        assert re.search(case.refuse, message), message
        assert hostile.SECRET[:20].decode() not in message
        return
    assert "read" in result, f"{name}: {result}"
    got = np.load(out)
    for layer, parts in case.values.items():
        for part, want in parts.items():
            np.testing.assert_array_equal(got[f"{layer}/{part}"], want)
