"""The command line and the demo: real subprocesses, and a demo run with every framework blocked."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from rnnscope._cli import main
from rnnscope._demo import demo_paths, run_demo, sparkline

BLOCK = (
    "import sys\n"
    "for name in ('torch', 'keras', 'tensorflow', 'tf_keras', 'jax'):\n"
    "    sys.modules[name] = None  # importing any of them now fails\n"
)


def test_demo_runs_without_any_framework(tmp_path):
    code = (
        BLOCK
        + f"from rnnscope._cli import main\nraise SystemExit(main(['demo', '-o', r'{tmp_path}']))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "Keras 3 LSTM(16)" in text and "bidirectional GRU(8)" in text
    assert "forward  forget" in text and "backward update" in text
    assert "inferred from torch key shapes" in text  # the safetensors file's note
    for name in ("lstm_summary.csv", "lstm_trace.npz", "bigru_summary.csv", "bigru_trace.npz"):
        assert (tmp_path / name).stat().st_size > 0
    traces = np.load(tmp_path / "bigru_trace.npz")
    assert traces["update__backward"].shape == (4, 20, 8)
    # the values: the bundled GRU's gates from its raw torch tensors (rows r, z, n), by a numpy
    # oracle that never uses rnnscope's layout code
    from safetensors.numpy import load_file

    from tests.oracles import raw

    tensors = load_file(str(demo_paths()["bigru"]))
    x = np.load(demo_paths()["inputs"])["bigru"]
    keys = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    back = raw.torch_gru(x[:, ::-1], **{k: tensors[f"rnn.{k}_l0_reverse"] for k in keys})
    fwd = raw.torch_gru(x, **{k: tensors[f"rnn.{k}_l0"] for k in keys})
    np.testing.assert_allclose(traces["update__backward"], back["update"][:, ::-1], atol=1e-5)
    np.testing.assert_allclose(traces["reset__forward"], fwd["reset"], atol=1e-5)
    figures = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(figures) == 12 and "bigru_heatmap_backward.png" in figures
    assert all((tmp_path / f).read_bytes()[:4] == b"\x89PNG" for f in figures)
    assert "wrote 12 figures" in text
    report = (tmp_path / "report.html").read_text()
    assert "demo_lstm.keras" in report and "demo_bigru.safetensors" in report
    # LSTM; GRU in two directions; each model's Dense head (figures are WebP since issue #21)
    assert report.count("data:image/webp;base64,") == 2 + 2 * 2 + 2
    assert "The run (baseline" not in report  # two unrelated models
    run = (tmp_path / "run_report.html").read_text()
    assert "epoch16.safetensors" in run and "The run (baseline: epoch0.safetensors)" in run


def test_demo_without_matplotlib_says_how_to_get_figures(tmp_path):
    code = (
        BLOCK
        + "sys.modules['matplotlib'] = None  # find_spec now says it is not there\n"
        + f"from rnnscope._cli import main\nraise SystemExit(main(['demo', '-o', r'{tmp_path}']))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "figures skipped: they need matplotlib" in out.stdout
    assert "report skipped: it needs matplotlib" in out.stdout
    assert not list(tmp_path.glob("*.png")) and (tmp_path / "lstm_summary.csv").exists()


def test_demo_traces_are_the_bundled_models(capsys):
    traces = run_demo()
    paths = demo_paths()
    assert all(p.exists() for p in paths.values())
    lstm = traces["lstm"]
    assert lstm.get("forget").shape == (4, 20, 16)
    assert 0 < lstm.get("forget").mean() < 1
    assert "unit" in capsys.readouterr().out


def test_sparkline_scales():
    assert sparkline(np.array([0.0, 0.5, 1.0])) == "▁▅█"
    assert sparkline(np.array([2.0, 2.0]), 2.0, 2.0) == "▁▁"


def test_cli_errors_are_one_line_with_exit_code(tmp_path, capsys):
    bad = tmp_path / "x.h5"
    bad.write_bytes(b"not a checkpoint")
    assert main(["summary", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rnnscope: error:") and "x.h5" in err and "\n" not in err
    assert main(["layers", str(demo_paths()["bigru"])]) == 0
    out = capsys.readouterr().out
    assert "rnn.l0\tGRU" in out
    assert main(["summary", str(demo_paths()["lstm"]), "--layer", "0"]) == 0
    assert "forget" in capsys.readouterr().out
