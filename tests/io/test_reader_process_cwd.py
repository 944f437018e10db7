"""The HDF5 reader process outlives each call: a relative path means the caller's folder now.

Found by the docstring test: an example that changed directory read ``model.keras`` from the
folder where the reader process had been started.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import pytest

import rnnscope

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "files"


def _layer_names(path: Path) -> list[str]:
    """The layers an HDF5 model file lists, read with h5py (independent of rnnscope)."""
    with h5py.File(path, "r") as f:
        return [
            n.decode() if isinstance(n, bytes) else n
            for n in f["model_weights"].attrs["layer_names"]
        ]


@pytest.mark.parametrize(
    "first, second", [("k3_seq.h5", "k3_func.h5"), ("tk_seq.h5", "tk_nested.h5")]
)
def test_a_relative_path_is_read_from_the_current_folder(tmp_path, monkeypatch, first, second):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    shutil.copy(FIXTURES / first, a / "model.h5")
    shutil.copy(FIXTURES / second, b / "model.h5")
    want_a, want_b = _layer_names(a / "model.h5"), _layer_names(b / "model.h5")
    assert want_a != want_b  # the two files tell apart

    # each file read by its absolute path (no working folder involved) is the reference
    by_abs_a = [i.name for i in rnnscope.load(a / "model.h5").layers()]
    by_abs_b = [i.name for i in rnnscope.load(b / "model.h5").layers()]
    assert by_abs_a != by_abs_b

    monkeypatch.chdir(a)
    assert [i.name for i in rnnscope.load("model.h5").layers()] == by_abs_a
    monkeypatch.chdir(b)  # the reader process is still running, started from folder a
    assert [i.name for i in rnnscope.load("model.h5").layers()] == by_abs_b
    w = rnnscope.load("model.h5")
    first = w.layers()[0].name
    assert w.weights(first).name == first  # arrays too, not only the listing


def test_a_missing_relative_path_names_the_path_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(rnnscope.FormatError) as err:
        rnnscope.load("nowhere.h5")
    assert "nowhere.h5" in str(err.value)
