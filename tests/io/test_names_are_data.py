"""Names inside files are data: math text, control characters, lone surrogates and 10 KB names
reach every output intact or escaped, never as markup, never as an encoding error; numbers from
files are validated; paths that are not regular files are refused."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

import rnnscope
from rnnscope import FormatError

h5py = pytest.importorskip("h5py")
pytest.importorskip("matplotlib")
pytest.importorskip("pandas")

NAMES = {
    "math": "$\\frac{$",
    "surrogate": "gru\udcff\ud800x",
    "control": "bell\x07\x1b[31mred\u202eevil",
    "long": "n" * 10_000,
}


def _safetensors(path, prefix: str) -> dict[str, np.ndarray]:
    """A torch-named GRU layer under ``prefix``; the header is written by hand because the
    safetensors package refuses names that are not valid UTF-8."""
    rng = np.random.default_rng(4)
    tensors = {
        f"{prefix}.weight_ih_l0": rng.standard_normal((9, 2)).astype("<f4"),
        f"{prefix}.weight_hh_l0": rng.standard_normal((9, 3)).astype("<f4"),
        f"{prefix}.bias_ih_l0": rng.standard_normal(9).astype("<f4"),
        f"{prefix}.bias_hh_l0": rng.standard_normal(9).astype("<f4"),
    }
    header, data, at = {}, b"", 0
    for k, a in tensors.items():
        header[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [at, at + a.nbytes]}
        data += a.tobytes()
        at += a.nbytes
    raw = json.dumps(header).encode("ascii")  # lone surrogates as \ud800 escapes
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)
    return tensors


@pytest.mark.parametrize("kind", sorted(NAMES))
def test_names_reach_every_output_safely(kind, tmp_path, capsys):
    import matplotlib.pyplot as plt

    from rnnscope._cli import main
    from rnnscope.plot import rnn_heatmap

    name = NAMES[kind]
    p = tmp_path / "model.safetensors"
    tensors = _safetensors(p, name)
    layer = rnnscope.layers(p)[0].name
    assert "\ud800" not in layer and "\ufffd" in layer if kind == "surrogate" else True
    rec = rnnscope.rnn_weights(p, 0)  # values untouched by the name
    np.testing.assert_array_equal(
        rec.arrays[("kernel", "forward")].T[3:6], tensors[f"{name}.weight_ih_l0"][:3]
    )
    fig = rnn_heatmap(p, 0)
    title = fig.texts[0] if fig.texts else fig._suptitle
    shown = title.get_text()
    _, math = title._preprocess_math(shown)
    assert not math, f"{kind}: the name is parsed as math text: {shown!r}"
    if kind == "math":
        assert "\\$\\frac{\\$" in shown
    assert len(shown) < 300 and "\x07" not in shown and "\u202e" not in shown
    for ext in ("png", "svg", "pdf"):
        fig.savefig(tmp_path / f"f.{ext}")
    plt.close("all")
    csv, js, html = tmp_path / "s.csv", tmp_path / "s.json", tmp_path / "r.html"
    assert main(["layers", str(p)]) == 0
    assert main(["summary", str(p)]) == 0
    assert main(["stats", str(p), "--csv", str(csv)]) == 0
    assert main(["stats", str(p), "--json", str(js)]) == 0
    assert main(["report", str(p), "-o", str(html)]) == 0
    assert main(["plot", str(p), "-o", str(tmp_path / "h.png")]) == 0
    out = capsys.readouterr()
    for text in (out.out, out.err):
        text.encode("utf-8")  # no lone surrogate reached the terminal
        assert "\x07" not in text and "\x1b[31m" not in text and "\u202e" not in text
    for f in (csv, js, html):
        f.read_bytes().decode("utf-8")  # strict: valid UTF-8
    rows = json.loads(js.read_text())
    assert any(r.get("layer", "").startswith(layer[:50]) for r in rows), rows[0]


def test_units_zero_is_a_clear_error(tmp_path):
    """A .keras whose config declares an LSTM of 0 units (weights of width 0)."""
    import zipfile

    h5 = tmp_path / "w.h5"
    with h5py.File(h5, "w") as f:
        v = f.create_group("layers/lstm/cell/vars")
        v["0"] = np.zeros((3, 0), "f4")
        v["1"] = np.zeros((0, 0), "f4")
        v["2"] = np.zeros(0, "f4")
    cfg = {
        "class_name": "Sequential",
        "config": {
            "name": "s",
            "layers": [{"class_name": "LSTM", "config": {"name": "lstm", "units": 0}}],
        },
    }
    p = tmp_path / "zero.keras"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        z.writestr("config.json", json.dumps(cfg))
        z.write(h5, "model.weights.h5")
    with pytest.raises(FormatError, match=rf"'{p}'.*LSTM layer 'lstm': units must be >= 1"):
        rnnscope.load(p)


@pytest.mark.parametrize("make", ["fifo", "device", "directory"])
def test_paths_that_are_not_regular_files_are_refused(make, tmp_path):
    if make == "fifo":
        p = tmp_path / "pipe.keras"
        os.mkfifo(p)
        want = "FIFO"
    elif make == "device":
        p = "/dev/zero"
        want = "a device"
    else:
        p = tmp_path / "dir.h5"
        p.mkdir()
        want = "directory"
    errors: list[BaseException] = []

    def load() -> None:
        try:
            rnnscope.load(p)
        except BaseException as err:  # collected for the assertion below
            errors.append(err)

    th = threading.Thread(target=load, daemon=True)
    th.start()
    th.join(30)
    if th.is_alive() and make == "fifo":  # unblock the reader we failed to refuse
        with open(p, "wb"):
            pass
    assert not th.is_alive(), f"loading a {make} hung"
    assert len(errors) == 1 and isinstance(errors[0], FormatError), errors
    assert str(p) in str(errors[0]) and want in str(errors[0])
