"""Committed checkpoint files read without any framework: each layer's trace equals the output
its framework computed when the file was written (stored beside it by make_fixtures.py)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import rnnscope
from tests.conftest import ATOL

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "files"
FILES = sorted(p for p in FIXTURES.glob("*") if p.suffix not in (".npz", ".json"))
FORMATS = {".keras": "keras", ".h5": "keras-h5", ".safetensors": "safetensors", ".pt": "torch"}


def _ref(path: Path) -> tuple[dict, np.lib.npyio.NpzFile]:
    meta = json.loads(path.with_name(path.name + ".ref.json").read_text())
    return meta, np.load(path.with_name(path.name + ".ref.npz"), allow_pickle=False)


def _keras2(name: str, ckpt: rnnscope.Checkpoint) -> str:
    return (
        "hard_sigmoid_keras2" if name == "hard_sigmoid" and "tf_keras" in ckpt.framework else name
    )


def test_every_format_is_covered():
    suffixes = {p.suffix for p in FILES}
    assert {".keras", ".h5", ".safetensors", ".pt"} <= suffixes, suffixes
    assert any(p.name.endswith(".weights.h5") for p in FILES)
    assert any("cudnn" in p.name for p in FILES)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_file_layers_trace_to_the_framework_output(path):
    if path.suffix == ".pt":
        pytest.importorskip("torch")
    meta, ref = _ref(path)
    ckpt = rnnscope.load(path)
    assert ckpt.format == FORMATS[path.suffix]
    names = [i.name for i in ckpt.layers() if i.recurrent]
    for layer in meta["layers"]:
        name = layer["name"]
        assert name in names, (name, names)
        w = rnnscope.rnn_weights(ckpt, name)
        assert w.cell == layer["cell"]
        assert w.units == layer["units"] and w.input_dim == layer["input_size"]
        assert len(w.directions) == layer["directions"]
        if layer.get("proj_size"):
            assert w.proj_size == layer["proj_size"]
        settings = {
            "activation": _keras2(layer["activation"], ckpt),
            "recurrent_activation": _keras2(layer["recurrent_activation"], ckpt)
            if w.cell != "SimpleRNN"
            else None,
            "merge_mode": layer["merge_mode"],
            "go_backwards": bool(layer.get("go_backwards", False)),
        }
        if w.cell == "GRU" and layer.get("reset_after") is not None:
            settings["reset_after"] = layer["reset_after"]
        found = {k: getattr(w, k) for k in settings}
        if any(f"'{name}'" in n for n in ckpt.notes):
            # No config (weights-only file, torch state dict): what differs must be stated as
            # assumed in the notes; the user then sets it, as here.
            if found != settings:
                assert any("assumed" in n and f"'{name}'" in n for n in ckpt.notes), ckpt.notes
            w = dataclasses.replace(w, **settings)
        else:  # a config was read: every setting must match
            assert found == settings, (path.name, name)
        x, y = ref[f"{name}/x"], ref[f"{name}/y"]
        t = rnnscope.trace(w, x)
        got = t.output(sequences=y.ndim == 3)
        np.testing.assert_allclose(got, y, atol=ATOL, err_msg=f"{path.name}: {name}")


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_summary_and_cli_read_every_file(path, capsys):
    if path.suffix == ".pt":
        pytest.importorskip("torch")
    from rnnscope._cli import main

    s = rnnscope.summary(path, quiet=True)
    assert s.rows and all(r.nans == 0 for r in s.rows)
    assert main(["summary", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"Summary of file '{path}'" in out


def test_weights_only_files_say_what_was_inferred():
    path = next(p for p in FILES if p.name.endswith(".weights.h5"))
    s = rnnscope.summary(path, quiet=True)
    assert any("inferred from shapes" in n for n in s.notes), s.notes
    st = next(p for p in FILES if p.suffix == ".safetensors")
    notes = rnnscope.summary(st, quiet=True).notes
    assert any("inferred from torch key shapes" in n for n in notes), notes
