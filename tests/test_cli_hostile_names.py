"""File names are data on the command line too: no rich markup taken from them, and no control
character (newline, escape) from a name reaches the terminal raw, where it could forge a line of
the failed listing or drive the terminal."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnscope._cli import main

safetensors_np = pytest.importorskip("safetensors.numpy")
pytest.importorskip("pandas")


def _gru(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "l.weight_ih_l0": rng.normal(size=(9, 2)).astype("f4"),
        "l.weight_hh_l0": rng.normal(size=(9, 3)).astype("f4"),
        "l.bias_ih_l0": rng.normal(size=9).astype("f4"),
        "l.bias_hh_l0": rng.normal(size=9).astype("f4"),
    }


def test_markup_in_a_file_name_is_printed_as_is(tmp_path, capsys):
    pytest.importorskip("rich")
    name = "[bold red]evil[-].safetensors"
    safetensors_np.save_file(_gru(0), str(tmp_path / name))
    safetensors_np.save_file(_gru(1), str(tmp_path / "plain.safetensors"))
    for cmd in ("stats", "compare"):
        assert main([cmd, str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert name in out, cmd  # whole, brackets included


def test_control_characters_in_names_do_not_reach_the_terminal(tmp_path, capsys):
    safetensors_np.save_file(_gru(0), str(tmp_path / "good.safetensors"))
    forged = "x.h5\n  failed   good.safetensors: forged\x1b[2J.h5"
    (tmp_path / forged).write_bytes(b"junk")
    (tmp_path / "note\x1b]0;t\x07.txt").write_bytes(b"")
    assert main(["stats", str(tmp_path), "--csv", "-"]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err
    listing = [ln for ln in err.splitlines() if ln.startswith(("  failed", "  skipped"))]
    assert len(listing) == 2  # one line per entry: the newline in the name forged none
    shown = "x.h5\\n  failed   good.safetensors: forged\\x1b[2J.h5"
    assert listing[0].startswith(f"  failed   {shown}: ")
    assert listing[1].startswith("  skipped  note\\x1b]0;t\\x07.txt: ")


def test_control_characters_in_names_are_escaped_in_the_table(tmp_path, capsys):
    name = "two\nlines\x1b[31m.safetensors"
    safetensors_np.save_file(_gru(0), str(tmp_path / name))
    assert main(["stats", str(tmp_path / name)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "two\\nlines\\x1b[31m.safetensors" in out


def _strict_json(text: str) -> object:
    def refuse(const: str) -> None:
        raise ValueError(f"not JSON: {const}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("cmd", ["summary", "layers", "stats", "compare"])
def test_json_stays_json_when_weights_are_nan_or_inf(cmd, tmp_path, capsys):
    w = _gru(0)
    w["l.weight_hh_l0"][0, 0] = np.nan
    w["l.bias_ih_l0"][:] = np.inf
    path = tmp_path / "n.safetensors"
    safetensors_np.save_file(w, str(path))
    argv = [cmd, str(path), "--json"] + (["-"] if cmd in ("stats", "compare") else [])
    assert main(argv) == 0
    records = _strict_json(capsys.readouterr().out)  # NaN/Infinity are not JSON
    assert isinstance(records, list) and records
    if cmd == "summary":  # the non-finite statistics are null; the counts say why
        hh = [r for r in records if r["part"] == "recurrent_kernel" and r["gate"] == "reset"]
        assert hh[0]["nans"] == 1
        b = [r for r in records if r["part"] == "bias"]
        assert all(r["infs"] == 3 and r["max"] is None for r in b)


@pytest.mark.parametrize("cmd", ["summary", "layers"])
def test_json_takes_a_file_or_dash_as_in_stats(cmd, tmp_path, capsys):
    path = tmp_path / "a.safetensors"
    safetensors_np.save_file(_gru(0), str(path))
    assert main([cmd, str(path), "--json"]) == 0
    bare = capsys.readouterr().out
    assert main([cmd, str(path), "--json", "-"]) == 0
    assert capsys.readouterr().out == bare
    target = tmp_path / "out.json"
    assert main([cmd, str(path), "--json", str(target)]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err.strip() == f"wrote {len(json.loads(bare))} records to {target}"
    assert target.read_text(encoding="utf-8") == bare
