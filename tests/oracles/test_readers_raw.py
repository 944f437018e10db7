"""Offline readers against the raw framework arrays stored beside each fixture file.

``<file>.ref.npz`` holds, per recurrent layer and direction, the arrays exactly as the framework
held them when ``make_fixtures.py`` wrote the file (torch ``weight_ih_l0``..., Keras ``kernel``...,
tf-keras CuDNN layers in cuDNN's own block layout), its sample input ``x`` and its output ``y``.
Here they are sliced by each framework's documented layout (``tests/oracles/raw.py``), never by
rnnscope's. Three checks per layer: the test's own slicing reproduces the framework's ``y`` (so the
layout written in the test is right), every gate block rnnscope reads from the file equals the
hand-sliced raw block, and every traced gate equals the numpy oracle's.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

import rnnscope
from tests.oracles import raw

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "files"
FILES = sorted(p for p in FIXTURES.glob("*") if p.suffix not in (".npz", ".json"))
TOL = 1e-5


def _directions(ref, name: str) -> dict[str, dict[str, np.ndarray]]:
    """{direction: {raw name without torch's _lK/_reverse suffix: array}}."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for key in ref.files:
        m = re.fullmatch(rf"{re.escape(name)}/(forward|backward)/(\w+?)(_l\d+)?(_reverse)?", key)
        if m:
            out.setdefault(m[1], {})[m[2]] = ref[key]
    return out


def _act(name: str | None, framework: str) -> str:
    if name == "hard_sigmoid":
        return "hard_sigmoid_keras2" if framework == "tf_keras" else "hard_sigmoid_keras3"
    return name or "linear"


def _keras_arrays(layer: dict, a: dict[str, np.ndarray]):
    """kernel, recurrent_kernel, bias in the CPU Keras layout, and whether it is reset-after."""
    if layer["class_name"].startswith("CuDNN"):
        return (*raw.cudnn_to_keras(layer["cell"], a["kernel"], a["recurrent_kernel"], a["bias"]),)
    return a["kernel"], a["recurrent_kernel"], a.get("bias")


def _expected_blocks(layer: dict, framework: str, a: dict[str, np.ndarray]):
    if framework == "torch":
        return raw.torch_raw_blocks(layer["class_name"], a)
    if layer["class_name"].startswith("CuDNN"):
        k, rk, _ = raw.cudnn_to_keras(layer["cell"], a["kernel"], a["recurrent_kernel"], a["bias"])
        width = a["kernel"].shape[1]
        both = np.stack([a["bias"][:width], a["bias"][width:]])  # input side, recurrent side
        return raw.keras_raw_blocks(layer["cell"], k, rk, both)
    return raw.keras_raw_blocks(layer["cell"], a["kernel"], a["recurrent_kernel"], a.get("bias"))


def _run(layer: dict, framework: str, a: dict[str, np.ndarray], x: np.ndarray) -> raw.Gates:
    cell, act = layer["cell"], _act(layer["activation"], framework)
    if framework == "torch":
        fn = {"LSTM": raw.torch_lstm, "GRU": raw.torch_gru}.get(cell)
        if fn is None:
            return raw.torch_rnn(x, **a, nonlinearity=act)
        return fn(x, **a)
    k, rk, b = _keras_arrays(layer, a)
    ract = _act(layer["recurrent_activation"], framework)
    if cell == "LSTM":
        return raw.keras_lstm(x, k, rk, b, act, ract)
    if cell == "GRU":
        reset_after = layer["reset_after"] or layer["class_name"] == "CuDNNGRU"
        return raw.keras_gru(x, k, rk, b, reset_after, act, ract)
    return raw.keras_simple(x, k, rk, b, act)


def _oracle(layer: dict, framework: str, dirs: dict, x: np.ndarray) -> dict[str, raw.Gates]:
    """{direction: gates}, time in input order."""
    out = {}
    for d, a in dirs.items():
        reverse = (d == "backward") != bool(layer.get("go_backwards"))
        out[d] = (
            raw.flip(_run(layer, framework, a, x[:, ::-1]))
            if reverse
            else _run(layer, framework, a, x)
        )
    return out


def _output(layer: dict, gates: dict[str, raw.Gates], sequences: bool) -> np.ndarray:
    outs = []
    for d, g in gates.items():
        h = g["h"]
        reverse = (d == "backward") != bool(layer.get("go_backwards"))
        if sequences:
            outs.append(h[:, ::-1] if layer.get("go_backwards") else h)
        else:
            outs.append(h[:, 0] if reverse else h[:, -1])
    if len(outs) == 1:
        return outs[0]
    mode = layer["merge_mode"]
    return {
        "concat": lambda: np.concatenate(outs, -1),
        "sum": lambda: outs[0] + outs[1],
        "mul": lambda: outs[0] * outs[1],
        "ave": lambda: (outs[0] + outs[1]) / 2,
    }[mode]()


def _rnnscope_act(name: str | None, framework: str) -> str | None:
    return "hard_sigmoid_keras2" if name == "hard_sigmoid" and framework == "tf_keras" else name


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_readers_equal_the_raw_framework_arrays(path):
    if path.suffix == ".pt":
        pytest.importorskip("torch")
    meta = json.loads(path.with_name(path.name + ".ref.json").read_text())
    ref = np.load(path.with_name(path.name + ".ref.npz"), allow_pickle=False)
    framework = meta["framework"]
    ckpt = rnnscope.load(path)
    for layer in meta["layers"]:
        name = layer["name"]
        dirs = _directions(ref, name)
        assert len(dirs) == layer["directions"], (name, sorted(dirs))
        x, y = ref[f"{name}/x"], ref[f"{name}/y"]
        want = _oracle(layer, framework, dirs, x)
        np.testing.assert_allclose(_output(layer, want, y.ndim == 3), y, atol=TOL, err_msg=name)

        w = rnnscope.rnn_weights(ckpt, name)
        assert w.directions == tuple(d for d in ("forward", "backward") if d in dirs)
        for d, a in dirs.items():
            blocks = _expected_blocks(layer, framework, a)
            have = {(p, g) for dd, p, g, _ in w.items() if dd == d}
            assert set(blocks) == have, (path.name, name, d)
            for (part, gate), block in blocks.items():
                np.testing.assert_array_equal(
                    w.array(part, gate or None, d),
                    block,
                    err_msg=f"{path.name} {name} {d} {part} {gate}",
                )

        settings = {
            "activation": _rnnscope_act(layer["activation"], framework),
            "recurrent_activation": _rnnscope_act(layer["recurrent_activation"], framework),
            "merge_mode": layer["merge_mode"],
            "go_backwards": bool(layer.get("go_backwards")),
        }
        if layer["cell"] == "GRU":  # a weights-only file has no config: set what the test knows
            settings["reset_after"] = bool(layer["reset_after"] or "CuDNN" in layer["class_name"])
        t = rnnscope.trace(dataclasses.replace(w, **settings), x)
        for d, gates in want.items():
            assert set(t.names) == set(gates)
            for g, value in gates.items():
                np.testing.assert_allclose(
                    t.get(g, d), value, atol=TOL, err_msg=f"{path.name} {name} {d} {g}"
                )
