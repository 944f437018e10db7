"""``rnnscope attributions MODEL --input x.npy``: the JSON holds attributions complete against
the saved model's own outputs; bad arguments give one line naming them and exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnscope._cli import main

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attr_cli")
    keras.utils.set_random_seed(0)
    inp = keras.Input((5, 2))
    m = keras.Model(inp, keras.layers.Dense(3)(keras.layers.GRU(3)(inp)))
    m.save(folder / "m.keras")
    x = np.random.default_rng(0).normal(size=(2, 5, 2)).astype("float32")
    np.save(folder / "x.npy", x)
    out = lambda v: np.asarray(keras.ops.convert_to_numpy(m(v, training=False)))
    return folder, x, out


def test_json_holds_attributions_complete_against_the_saved_model(saved, capsys):
    folder, x, out = saved
    png = folder / "a.png"
    args = [str(folder / "m.keras"), "--input", str(folder / "x.npy"), "--target", "2"]
    assert main(["attributions", *args, "--json", "-", "--n-steps", "30"]) == 0
    record = json.loads(capsys.readouterr().out)[0]
    values = np.array(record["values"])
    assert values.shape == (2, 5, 2)
    fdiff = out(x)[:, 2] - out(np.zeros_like(x))[:, 2]
    np.testing.assert_allclose(values.reshape(2, -1).sum(1) - fdiff, record["delta"], atol=2e-5)
    assert np.abs(record["delta"]).max() < 1e-3 * np.abs(fdiff).max()
    np.testing.assert_allclose(record["per_timestep"], values.sum(axis=2))
    assert main(["attributions", *args, "-o", str(png), "--method", "saliency"]) == 0
    printed = capsys.readouterr().out
    assert "saliency" in printed and "timestep" in printed and "wrote 1 file" in printed
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--target", "a,b"], "expected a unit/class index"),
        (["--target", "9"], "out of range"),
        (["--sample", "5", "-o", "a.png"], "--sample 5"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(saved, capsys, extra, words, monkeypatch):
    folder, _, _ = saved
    monkeypatch.chdir(folder)
    argv = ["attributions", "m.keras", "--input", "x.npy", *extra]
    if extra[1] == "a,b":  # refused by the parser: argparse's exit code 2
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    else:
        assert main(argv) == 2
    assert words in capsys.readouterr().err


def test_files_that_are_not_models_are_named(saved, capsys):
    folder, _, _ = saved
    (folder / "w.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    for name, words in (("w.weights.h5", "weights-only"), ("nope.keras", "no such file")):
        assert main(["attributions", str(folder / name), "--input", str(folder / "x.npy")]) == 2
        err = capsys.readouterr().err
        assert name in err and words in err
