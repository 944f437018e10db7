"""The HDF5 reader process: never a fork of the user's process, bounded in time, a crash is an
error; and no byte of a file outside the checkpoint reaches any output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import rnnscope
from rnnscope import FormatError
from rnnscope._io import _h5proc
from tests.conftest import has

from . import hostile

h5py = pytest.importorskip("h5py")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "files"
SRC = Path(__file__).resolve().parents[2] / "src"


def _dense_file(path: Path, n: int = 64) -> np.ndarray:
    kernel = np.random.default_rng(2).standard_normal((n, n)).astype("f4")
    with h5py.File(path, "w") as f:
        v = f.create_group("layers/dense/vars")
        v.attrs["name"] = "dense"
        v["0"] = kernel
        v["1"] = np.zeros(n, "f4")
    return kernel


def test_a_stopped_reader_is_a_format_error_within_the_limit(tmp_path, monkeypatch):
    """A reader stuck in C (here: stopped by a signal, so it never answers) costs the caller the
    time limit, then a FormatError naming the file; the next read starts a new reader."""
    p = tmp_path / "m.weights.h5"
    kernel = _dense_file(p)
    rnnscope.load(p)  # starts the reader
    pid = _h5proc.reader_pid()
    assert pid is not None and pid != os.getpid()
    monkeypatch.setenv("RNNSCOPE_HDF5_TIME_LIMIT", "1.5")
    os.kill(pid, signal.SIGSTOP)
    t = time.monotonic()
    with pytest.raises(FormatError, match=rf"'{p}': reading the HDF5 tree took longer than 2 s"):
        rnnscope.load(p)
    waited = time.monotonic() - t
    assert waited < 30, waited  # it returned: without the bound it would wait forever
    with pytest.raises(ProcessLookupError):  # the stuck reader was killed...
        os.kill(pid, 0)
    got = rnnscope.weights(p, "dense")  # ...and a new one reads
    np.testing.assert_array_equal(dict(got.items())["kernel"], kernel)
    assert _h5proc.reader_pid() not in (None, pid)


def test_a_reader_crash_is_a_format_error(tmp_path):
    """A signal killing the reader mid-read (what a libhdf5 crash does) is a FormatError."""
    p = tmp_path / "m.weights.h5"
    _dense_file(p)
    ckpt = rnnscope.load(p)
    pid = _h5proc.reader_pid()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            ckpt.weights("dense")
        except BaseException as err:  # collected for the assertion below
            errors.append(err)

    th = threading.Thread(target=read)
    th.start()
    time.sleep(0.5)
    os.kill(pid, signal.SIGSEGV)
    os.kill(pid, signal.SIGCONT)
    th.join(30)
    assert len(errors) == 1 and isinstance(errors[0], FormatError), errors
    assert f"'{p}'" in str(errors[0]) and "crashed the HDF5 reader process" in str(errors[0])
    assert f"exit status {-signal.SIGSEGV}" in str(errors[0])
    assert dict(ckpt.weights("dense").items())["kernel"].shape == (64, 64)  # a new reader


def test_the_reader_is_a_fresh_process_not_a_fork(tmp_path):
    p = tmp_path / "m.weights.h5"
    _dense_file(p)
    rnnscope.load(p)
    pid = _h5proc.reader_pid()
    with open(f"/proc/{pid}/cmdline", "rb") as fh:
        argv = fh.read().split(b"\0")
    assert b"from rnnscope._io._h5proc import serve; serve()" in argv[3]


@pytest.mark.skipif(not has("jax"), reason="jax is not installed")
def test_reading_h5_under_jax_gives_no_fork_warning():
    """JAX starts threads and warns when the process forks; reading .h5 files must not fork."""
    files = [FIXTURES / "k3_seq.keras", FIXTURES / "k3_seq.h5", FIXTURES / "k3_seq.weights.h5"]
    code = f"""
import warnings, os
os.environ["KERAS_BACKEND"] = "jax"
import jax, jax.numpy as jnp
jnp.ones(3).block_until_ready()  # JAX's threads are running
import rnnscope
with warnings.catch_warnings(record=True) as seen:
    warnings.simplefilter("always")
    for p in {[str(f) for f in files]!r}:
        rnnscope.summary(p, quiet=True)
print("FORK" if any("fork" in str(w.message) for w in seen) else "CLEAN", len(seen))
"""
    env = dict(os.environ, PYTHONPATH=str(SRC), KERAS_BACKEND="jax")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[0] == "CLEAN", out.stdout + out.stderr[-2000:]
    assert "os.fork() was called" not in out.stderr


def _no_secret(text: str, where: str) -> None:
    assert hostile.SECRET[:24].decode() not in text, f"secret bytes in {where}"
    values = np.frombuffer(hostile.SECRET[:48], dtype="u1").astype(float)
    floats = np.frombuffer(hostile.SECRET[: 4 * 48], dtype="<f4")
    for marker in (values.mean(), values.std(), floats.max()):
        for fmt in ("{:.4g}", "{:.6g}", "{!r}", "{:.3f}"):
            token = fmt.format(float(marker))
            assert token not in text or token in ("nan", "inf"), (
                f"{token} (a statistic of the secret) in {where}"
            )


@pytest.mark.skipif(not (has("pandas") and has("matplotlib")), reason="needs the report extra")
def test_no_byte_outside_the_checkpoint_reaches_any_output(tmp_path, capsys):
    """Files whose datasets reference a secret file (external storage, virtual datasets,
    external links): every output of every command (terminal, CSV, JSON, HTML report) is free
    of the secret's bytes and of any statistic of them."""
    from rnnscope._cli import main

    cases = [
        c
        for c in hostile.build(tmp_path / "corpus")
        if c.name.startswith(("external", "vds-secret"))
    ]
    assert len(cases) >= 6
    good = tmp_path / "corpus" / "good.weights.h5"
    _dense_file(good)
    outputs: list[tuple[str, str]] = []
    for case in cases:
        args = [str(good), str(case.path)]
        for cmd in (["layers", str(case.path)], ["summary", str(case.path)]):
            main(cmd)
            cap = capsys.readouterr()
            outputs.append((f"{cmd[0]} {case.name}", cap.out + cap.err))
        csv, js, html = (tmp_path / f"{case.name}.{e}" for e in ("csv", "json", "html"))
        main(["stats", *args, "--csv", str(csv), "--show"])
        main(["stats", *args, "--json", str(js)])
        main(["report", *args, "-o", str(html)])
        cap = capsys.readouterr()
        outputs.append((f"stats/report {case.name}", cap.out + cap.err))
        for f in (csv, js, html):
            if f.exists():
                outputs.append((f.name, f.read_text(errors="replace")))
        for where, text in outputs:
            _no_secret(text, where)
        assert "external" in cap.err or "virtual" in cap.err, cap.err  # refused, saying why


@pytest.mark.parametrize("fmt", ["h5", "safetensors", "pt"])
def test_the_read_budget_is_settable(tmp_path, monkeypatch, fmt):
    """RNNSCOPE_MAX_TENSOR_BYTES refuses a legitimate 1 MiB tensor when set below it, and the
    same file reads with the default; the reader process follows the setting."""
    kernel = np.random.default_rng(1).standard_normal((512, 512)).astype("f4")
    if fmt == "h5":
        p = tmp_path / "m.weights.h5"
        with h5py.File(p, "w") as f:
            v = f.create_group("layers/dense/vars")
            v.attrs["name"] = "dense"
            v["0"] = kernel
        layer, part = "dense", "kernel"
    elif fmt == "safetensors":
        st = pytest.importorskip("safetensors.numpy")
        p = tmp_path / "m.safetensors"
        st.save_file({"fc.weight": kernel}, str(p))
        layer, part = "fc", "weight"
    else:
        torch = pytest.importorskip("torch")
        p = tmp_path / "m.pt"
        torch.save({"fc.weight": torch.from_numpy(kernel)}, p)
        layer, part = "fc", "weight"
    monkeypatch.setenv("RNNSCOPE_MAX_TENSOR_BYTES", str(kernel.nbytes - 1))
    with pytest.raises(FormatError, match=rf"'{p}'.* over the read budget of {kernel.nbytes - 1}"):
        rnnscope.weights(p, layer)
    monkeypatch.delenv("RNNSCOPE_MAX_TENSOR_BYTES")
    np.testing.assert_array_equal(dict(rnnscope.weights(p, layer).items())[part], kernel)
