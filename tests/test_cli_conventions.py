"""Command-line conventions: --version, python -m, global options anywhere, help for every
positional argument, folders wherever PATH is, machine output alone on stdout, written files
listed, argument checks with one-line errors, and the documented exit codes."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest

import rnnscope
from rnnscope._cli import _parser, main

pd = pytest.importorskip("pandas")
safetensors_np = pytest.importorskip("safetensors.numpy")
pytest.importorskip("matplotlib")


def _gru(rng, prefix: str, units: int = 3) -> dict[str, np.ndarray]:
    g = 3 * units
    return {
        f"{prefix}.weight_ih_l0": rng.normal(size=(g, 2)).astype("f4"),
        f"{prefix}.weight_hh_l0": rng.normal(size=(g, units)).astype("f4"),
        f"{prefix}.bias_ih_l0": rng.normal(size=g).astype("f4"),
        f"{prefix}.bias_hh_l0": rng.normal(size=g).astype("f4"),
    }


@pytest.fixture
def folder(tmp_path, rng):
    d = tmp_path / "ckpts"
    d.mkdir()
    for i in range(2):
        safetensors_np.save_file(
            {**_gru(rng, "enc"), **_gru(rng, "dec")}, str(d / f"e{i}.safetensors")
        )
    return d


def test_version_and_python_dash_m():
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    out = subprocess.run(
        [sys.executable, "-m", "rnnscope", "--version"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and out.stdout.strip() == f"rnnscope {rnnscope.__version__}"


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_is_accepted_before_and_after_the_subcommand(where, tmp_path, capsys):
    argv = ["summary", str(tmp_path / "missing.h5")]
    argv = ["--debug", *argv] if where == "before" else [*argv, "--debug"]
    with pytest.raises(rnnscope.FormatError, match="does not exist"):
        main(argv)
    assert main(argv[1:] if where == "before" else argv[:-1]) == 2  # without: one line
    assert capsys.readouterr().err.startswith("rnnscope: error:")


def _subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def test_every_positional_argument_has_help_and_exit_codes_are_documented():
    subs = _subparsers(_parser())
    assert set(subs) == {
        *("demo", "summary", "layers", "stats", "compare", "report", "plot", "attributions"),
        "explore",
        "cache",
    }
    for name, sub in subs.items():
        positionals = [a for a in sub._actions if not a.option_strings]
        for a in positionals:
            assert a.help, f"{name} {a.dest}: no help"
        assert "exit codes: 0" in sub.format_help().replace("\n", " ")
        if any(a.metavar == "PATH" for a in positionals):  # PATH means files or folders
            assert "folders" in sub.format_help()
    assert "1 done, but some sources could not be read" in " ".join(_parser().format_help().split())


@pytest.mark.parametrize("command", ["summary", "layers", "stats", "compare"])
def test_folders_are_accepted_wherever_path_is(command, folder, capsys):
    assert main([command, str(folder)]) == 0
    out = capsys.readouterr().out
    assert "e0.safetensors" in out and "e1.safetensors" in out
    assert "enc.l0" in out and "dec.l0" in out


@pytest.mark.parametrize(
    ("argv", "fmt"),
    [
        (["stats", "{f}", "--csv"], "csv"),
        (["stats", "{f}", "--json"], "json"),
        (["stats", "{f}", "--json", "-", "--show"], "json"),  # --show prints to a file's side only
        (["compare", "{f}", "--csv"], "csv"),
        (["compare", "{f}", "--json"], "json"),
        (["summary", "{f}", "--json"], "json"),
        (["layers", "{f}", "--json"], "json"),
    ],
)
def test_machine_output_alone_on_stdout(argv, fmt, folder, capsys):
    assert main([a.format(f=folder) for a in argv]) == 0
    out = capsys.readouterr().out
    if fmt == "json":
        rows = json.loads(out)  # the whole of stdout is one JSON document
    else:
        import io

        rows = pd.read_csv(io.StringIO(out)).to_dict("records")
    assert {r["model"] for r in rows} == {"e0.safetensors", "e1.safetensors"}


def test_compare_json_to_a_file_prints_no_table(folder, tmp_path, capsys):
    target = tmp_path / "c.json"
    assert main(["compare", str(folder), "--json", str(target)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"wrote {len(json.loads(target.read_text()))} rows to {target}" in captured.err


def test_a_checkpoint_given_to_csv_is_refused_not_overwritten(folder, capsys):
    first = folder / "e0.safetensors"
    before = first.read_bytes()
    with pytest.raises(SystemExit) as exc:
        main(["stats", "--csv", str(first), str(folder / "e1.safetensors")])
    assert exc.value.code == 2 and first.read_bytes() == before
    assert "ending in .csv" in capsys.readouterr().err


def test_written_files_are_listed(tmp_path, capsys):
    bigru = str(rnnscope.demo_path("bigru"))
    assert main(["plot", bigru, "-o", str(tmp_path / "X.png")]) == 0
    out = capsys.readouterr().out.strip()
    assert out == f"wrote 2 files: {tmp_path / 'X_forward.png'}, {tmp_path / 'X_backward.png'}"
    assert (tmp_path / "X_forward.png").exists() and (tmp_path / "X_backward.png").exists()
    assert not (tmp_path / "X.png").exists()
    assert main(["plot", bigru, "--direction", "backward", "-o", str(tmp_path / "Y.png")]) == 0
    assert capsys.readouterr().out.strip() == f"wrote 1 file: {tmp_path / 'Y.png'}"


def test_summary_layer_prints_only_that_layers_notes(folder, capsys):
    path = str(folder / "e0.safetensors")
    assert main(["summary", path]) == 0
    every = capsys.readouterr().out
    assert "note: layer 'enc.l0'" in every and "note: layer 'dec.l0'" in every
    assert main(["summary", path, "--layer", "dec.l0"]) == 0
    one = capsys.readouterr().out
    assert "note: layer 'dec.l0'" in one and "enc.l0" not in one


def test_demo_path_on_the_command_line(capsys):
    assert main(["demo", "--path", "run"]) == 0
    assert capsys.readouterr().out.strip() == str(rnnscope.demo_path("run"))
    assert rnnscope.demo_path("run").is_dir()
    with pytest.raises(rnnscope.InputError, match="expected one of lstm, bigru"):
        rnnscope.demo_path("nope")


def test_a_text_file_as_input_gets_a_clear_message(tmp_path, capsys):
    text = tmp_path / "x.txt"
    np.savetxt(text, np.zeros((7, 4)))
    bigru = str(rnnscope.demo_path("bigru"))
    code = main(
        ["plot", bigru, "--kind", "trace", "--input", str(text), "-o", str(tmp_path / "t.png")]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "expected a .npy or .npz array file" in err and "numpy.save" in err
    assert "pickle" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["plot", "{b}", "--kind", "trace", "--timesteps", "-5", "-o", "t.png"],
            "argument --timesteps",
        ),
        (["plot", "{b}", "--kind", "trace", "--sample", "-1", "-o", "t.png"], "argument --sample"),
        (["plot", "x.db", "--kind", "history", "--run", "latest", "-o", "h.png"], "argument --run"),
        (["stats", "{b}", "--jobs", "0"], "argument --jobs/-j"),
        (["stats", "{b}", "--tol", "-1"], "argument --tol"),
        (["stats", "{b}", "--tol", "abc"], "argument --tol"),
    ],
)
def test_bad_arguments_are_refused_with_exit_code_2(argv, message, capsys):
    bigru = str(rnnscope.demo_path("bigru"))
    with pytest.raises(SystemExit) as exc:
        main([a.format(b=bigru) for a in argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_sample_beyond_the_input_is_a_one_line_error(tmp_path, capsys):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 5, 2), "f4"))
    bigru = str(rnnscope.demo_path("bigru"))
    argv = [
        "plot",
        bigru,
        "--kind",
        "trace",
        "--input",
        str(x),
        "--sample",
        "2",
        "-o",
        str(tmp_path / "t.png"),
    ]
    assert main(argv) == 2
    assert "--sample 2: the input holds 2 sample(s)" in capsys.readouterr().err
