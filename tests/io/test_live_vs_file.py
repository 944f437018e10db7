"""A model read live and from each file it was saved to gives identical arrays for every part,
gate and direction, and identical traces. Files are written fresh by the project's own fixture
builders (tests/fixtures/make_fixtures.py), so this also runs on each Keras backend."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

import rnnscope
from tests.fixtures import make_fixtures as mf


def _model_name(path: Path) -> str:
    return re.sub(r"_weights$", "", path.name.split(".", 1)[0])


SETTINGS = (
    "activation",
    "recurrent_activation",
    "reset_after",
    "merge_mode",
    "go_backwards",
    "proj_size",
)


def _compare(live, path: Path, rng) -> int:
    """Every recurrent layer of ``live`` against the file; returns how many were compared.

    A file with a config must match every setting; a weights-only file must match every array,
    and its notes must say what it assumed for the rest.
    """
    ckpt = rnnscope.load(path)
    file_layers = {i.name: i for i in ckpt.layers()}
    n = 0
    for info in rnnscope.layers(live):
        if not info.recurrent:
            continue
        assert info.name in file_layers, (path.name, info.name, list(file_layers))
        a, b = rnnscope.rnn_weights(live, info.name), rnnscope.rnn_weights(ckpt, info.name)
        assert (a.cell, a.units, a.input_dim, a.directions, a.parts, a.proj_size) == (
            b.cell,
            b.units,
            b.input_dim,
            b.directions,
            b.parts,
            b.proj_size,
        ), path.name
        for d in a.directions:
            for part in a.parts:
                for gate in (None,) if part == "projection" else (None, *a.gates):
                    np.testing.assert_array_equal(
                        a.array(part, gate, d),
                        b.array(part, gate, d),
                        err_msg=f"{path.name} {info.name} {d} {part}",
                    )
        live_settings = {k: getattr(a, k) for k in SETTINGS}
        file_settings = {k: getattr(b, k) for k in SETTINGS}
        if any(f"'{info.name}'" in n for n in ckpt.notes):  # weights only: settings assumed
            if file_settings != live_settings:
                assert any("assumed" in n and f"'{info.name}'" in n for n in ckpt.notes)
            b = dataclasses.replace(b, **live_settings)
        else:
            assert file_settings == live_settings, (path.name, info.name)
        x = rng.normal(size=(2, 5, a.input_dim)).astype(np.float32)
        ta, tb = rnnscope.trace(a, x), rnnscope.trace(b, x)
        for name in ta.names:
            for d in a.directions:
                np.testing.assert_array_equal(ta.get(name, d), tb.get(name, d))
        n += 1
    return n


def _check_all(models: dict, paths: list[Path], rng) -> None:
    files = [p for p in paths if not p.name.endswith((".npz", ".json"))]
    assert files
    for p in files:
        assert _compare(models[_model_name(p)], p, rng) > 0, p.name


@pytest.mark.keras_backend
def test_keras3_live_equals_keras_h5_and_weights_h5(tmp_path, rng):
    pytest.importorskip("keras")
    paths = mf.save_keras3(tmp_path)
    assert {p.suffix for p in paths} >= {".keras", ".h5"}
    _check_all(mf.keras3_models(), paths, rng)


def test_tf_keras_live_equals_h5_files_including_cudnn(tmp_path, rng):
    pytest.importorskip("tf_keras")
    paths = mf.save_tf_keras(tmp_path)
    assert any("cudnn" in p.name for p in paths)
    _check_all(mf.tf_keras_models(), paths, rng)


def test_torch_live_equals_pt_and_safetensors(tmp_path, rng):
    pytest.importorskip("torch")
    paths = mf.save_torch(tmp_path)
    assert {p.suffix for p in paths} >= {".pt", ".safetensors"}
    _check_all(mf.torch_models(), paths, rng)
