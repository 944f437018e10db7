"""The labelled corpus (``bench/flag_corpus.py``, small size): healthy models raise no warning
or error, every sick model raises the warning or error of its fault.

The labels come from how each model was made (trained on a real task, or damaged in a known
way), never from rnnscope; the frameworks write the checkpoint files and rnnscope reads them.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import requires_keras, requires_torch

BENCH = Path(__file__).resolve().parents[1] / "bench" / "flag_corpus.py"


def _corpus_module():
    spec = importlib.util.spec_from_file_location("flag_corpus", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["flag_corpus"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    fc = _corpus_module()
    cases = fc.build(tmp_path_factory.mktemp("corpus"), large=False)
    return fc, cases, fc.judge(cases)


@requires_torch
@requires_keras
def test_the_corpus_covers_every_cell_framework_size_and_fault(corpus):
    fc, cases, _ = corpus
    names = [c.path.name for c in cases]
    for fw in ("torch", "keras"):
        for cell in fc.CELLS:
            for units in (4, 8):
                assert f"{fw}_{cell}{units}_sine_fresh" in " ".join(names)
    for cell in fc.CELLS:  # trained Keras models of every cell: the large corpus (slower fit)
        assert any(n.startswith(f"torch_{cell}") and "_trained." in n for n in names)
    assert any(n.startswith("keras_") and "_trained." in n for n in names)
    assert {c.fault for c in cases} - {""} == set(fc.EXPECT)
    suffixes = {"".join(c.path.suffixes) for c in cases}
    assert suffixes == {".pt", ".safetensors", ".keras", ".weights.h5"}
    assert all(c.path.stat().st_size > 0 for c in cases)


@requires_torch
@requires_keras
def test_trained_models_converged_and_the_faulty_runs_really_failed(corpus):
    _, cases, _ = corpus
    trained = [c for c in cases if not c.fault and not math.isnan(c.loss)]
    assert len(trained) >= 7
    for c in trained:  # each explains over 85% of its target's variance
        assert c.loss < 0.15, (c.name, c.loss)
    for c in cases:
        if c.fault == "lr_too_high":  # Adam at lr 3: no better than predicting the mean
            assert c.loss > 0.5, (c.name, c.loss)
    diverged = [c for c in cases if c.fault == "diverged"]
    assert diverged
    for c in diverged:  # the run itself overflowed: read the file back with the framework
        import torch

        state = torch.load(c.path, weights_only=True) if c.path.suffix == ".pt" else None
        if state is None:
            from safetensors.torch import load_file

            state = load_file(str(c.path))
        assert not all(np.isfinite(v.numpy()).all() for v in state.values()), c.name


@requires_torch
@requires_keras
def test_healthy_models_raise_no_warning_and_sick_ones_the_right_flag(corpus):
    _, cases, counts = corpus
    missed = [
        (c.name, sorted({(f.severity, f.rule) for f in c.flags if f.severity != "note"}))
        for c in cases
        if not c.passed
    ]
    assert missed == []
    assert counts["healthy_clean"] == counts["healthy"] == 19
    assert counts["sick_caught"] == counts["sick"] == 35
    fresh = [c for c in cases if c.name.endswith("_fresh")]
    for c in fresh:  # a fresh model gets the one note, nothing else
        assert [(f.severity, f.rule) for f in c.flags] == [("note", "untrained")], c.name
