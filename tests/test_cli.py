"""The rnnscope command line: stats, compare, report, plot; outputs checked, errors one line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from rnnscope._cli import main
from rnnscope._demo import demo_paths

pd = pytest.importorskip("pandas")
safetensors_np = pytest.importorskip("safetensors.numpy")
pytest.importorskip("matplotlib")


@pytest.fixture
def folder(tmp_path, rng):
    d = tmp_path / "run"
    d.mkdir()
    for epoch in range(3):
        t = {
            "rnn.weight_ih_l0": rng.normal(size=(24, 3)).astype("f4") * (1 + epoch),
            "rnn.weight_hh_l0": rng.normal(size=(24, 6)).astype("f4"),
            "rnn.bias_ih_l0": np.zeros(24, "f4"),
            "rnn.bias_hh_l0": np.zeros(24, "f4"),
        }
        if epoch < 2:
            t["head.weight"] = rng.normal(size=(1, 6)).astype("f4")
        safetensors_np.save_file(t, str(d / f"epoch{epoch}.safetensors"))
    return d


def test_stats_table_csv_and_json(folder, tmp_path, capsys):
    assert main(["stats", str(folder / "epoch0.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "recurrent_kernel" in out and "sigma max" in out and "forget" in out
    csv, js = tmp_path / "s.csv", tmp_path / "s.json"
    assert main(["stats", str(folder), "--csv", str(csv), "-j", "2"]) == 0
    df = pd.read_csv(csv)
    assert len(df) == 3 * 16 + 2  # 4 parts x 4 gates per model, and the head twice
    assert set(df["model"]) == {f"epoch{e}.safetensors" for e in range(3)}
    assert "recurrent_kernel" not in capsys.readouterr().out  # no table unless --show
    assert main(["stats", str(folder), "--json", str(js), "--tol", "0.5"]) == 0
    rows = json.loads(js.read_text())
    assert len(rows) == len(df) and rows[0]["tol"] == 0.5


def test_compare_marks_missing_layers_and_changes(folder, capsys):
    assert main(["compare", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "missing" in out  # epoch2 has no head
    assert "%)" in out and "change against epoch0.safetensors" in out
    assert "since the previous model (" in out and "weights changing fast" in out


def test_report_and_plots(folder, tmp_path, capsys):
    html = tmp_path / "r.html"
    assert main(["report", str(folder), "-o", str(html), "--jobs", "2"]) == 0
    text = html.read_text()
    assert "epoch2.safetensors" in text and "The run (baseline: epoch0.safetensors)" in text
    bigru = str(demo_paths()["bigru"])
    assert main(["plot", bigru, "--kind", "heatmap", "-o", str(tmp_path / "h.png")]) == 0
    assert "h_forward.png, " in capsys.readouterr().out
    assert (tmp_path / "h_backward.png").read_bytes()[:4] == b"\x89PNG"
    assert (
        main(
            [
                "plot",
                bigru,
                "--kind",
                "histogram",
                "--direction",
                "backward",
                "-o",
                str(tmp_path / "hb.svg"),
            ]
        )
        == 0
    )
    assert (tmp_path / "hb.svg").exists() and not (tmp_path / "hb_forward.svg").exists()
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).normal(size=(2, 7, 4)).astype("f4"))
    assert (
        main(
            [
                "plot",
                bigru,
                "--kind",
                "trace",
                "--input",
                str(x),
                "--sample",
                "1",
                "-o",
                str(tmp_path / "t.png"),
            ]
        )
        == 0
    )
    assert main(["plot", bigru, "--kind", "trace", "-o", str(tmp_path / "t2.png")]) == 0
    assert "no --input" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["stats", "missing.h5"], "does not exist"),
        (["report", "{folder}", "-o", "/nonexistent-dir/r.html"], "does not exist"),
        (
            ["plot", "{bigru}", "--kind", "trace", "--input", "{bad}", "-o", "{tmp}/t.png"],
            "expected (batch, time, features)",
        ),
        (["plot", "{bigru}", "--layer", "nope", "-o", "{tmp}/t.png"], "layer 'nope' not found"),
        (["compare", "{folder}", "--baseline", "zzz"], "baseline 'zzz' is not one of"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(argv, message, folder, tmp_path, capsys):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros(3))
    fill = {
        "folder": str(folder),
        "bigru": str(demo_paths()["bigru"]),
        "bad": str(bad),
        "tmp": str(tmp_path),
    }
    assert main([a.format(**fill) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rnnscope: error:") and message in err and "\n" not in err


def test_entry_point_runs_as_a_program(folder):
    out = subprocess.run(
        [sys.executable, "-m", "rnnscope._cli", "compare", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "epoch1.safetensors" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "rnnscope._cli", "stats", str(folder / "x.pt")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_plot_trace_draws_the_gate_values(tmp_path):
    """The CLI's trace figure is pixel for pixel the figure of the same gates computed by a
    numpy oracle from the file's raw torch tensors (rows r, z, n), not only a written file."""
    import matplotlib.image

    import rnnscope
    from tests.oracles import raw

    bigru = demo_paths()["bigru"]
    tensors = safetensors_np.load_file(str(bigru))
    x = np.random.default_rng(5).normal(size=(3, 6, 4)).astype("f4")
    np.save(tmp_path / "x.npy", x)
    gates = {}
    for d, suffix, xs in (("forward", "", x), ("backward", "_reverse", x[:, ::-1])):
        w = {k: tensors[f"rnn.{k}_l0{suffix}"] for k in ("weight_ih", "weight_hh", "bias_ih")}
        g = raw.torch_gru(xs, **w, bias_hh=tensors[f"rnn.bias_hh_l0{suffix}"])
        g = raw.flip(g) if suffix else g
        gates |= {(n, d): a.transpose(1, 0, 2) for n, a in g.items()}  # time-major
    oracle = rnnscope.Trace("rnn.l0", "GRU", ("forward", "backward"), gates, "concat")
    got, want, other = (tmp_path / f"{n}.png" for n in ("got", "want", "other"))
    argv = ["plot", str(bigru), "--kind", "trace", "--input", str(tmp_path / "x.npy")]
    assert main([*argv, "--sample", "1", "-o", str(got)]) == 0
    rnnscope.plot.trace_plot(oracle, sample=1, savepath=want)
    rnnscope.plot.trace_plot(oracle, sample=2, savepath=other)
    a, b, c = (matplotlib.image.imread(p) for p in (got, want, other))
    assert a.shape == b.shape == c.shape
    assert np.abs(a - b).max() <= 2 / 255  # the same picture
    assert np.abs(a - c).max() > 0.2  # another sample's gates look different
