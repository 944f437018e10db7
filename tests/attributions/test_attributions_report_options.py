"""The report's attribution options: ``rnnscope.report(..., inputs=x, attributions={...})`` and
``rnnscope report --input x.npy --attr-method/--attr-target/--attr-steps/--attr-rule/
--attr-window/--attr-stride``.

Oracles: the model's own outputs (completeness of the integrated gradients the section shows,
and occlusion by re-evaluation written here); the section's numbers are compared with
``rnnscope.attributions`` given the same options.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import rnnscope
from rnnscope import InputError
from rnnscope._cli import main

keras = pytest.importorskip("keras")

B, T, F = 3, 4, 2


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attr_options")
    keras.utils.set_random_seed(1)
    inp = keras.Input((T, F))
    m = keras.Model(inp, keras.layers.Dense(3)(keras.layers.GRU(3)(inp)))
    m.save(folder / "m.keras")
    x = np.random.default_rng(0).normal(size=(B, T, F)).astype(np.float32)
    np.save(folder / "x.npy", x)
    return folder, keras.saving.load_model(folder / "m.keras"), x


def _section(path):
    page = path.read_text(encoding="utf-8")
    return page[page.index('<section id="attributions">') :]


def _strongest(section):
    """Each sample's three strongest timesteps as the table prints them: {t: value}."""
    cells = re.findall(r"<td class='t'>(.*?)</td>", section)
    return [{int(t): float(v) for t, v in re.findall(r"t=(\d+): ([-+0-9.e]+)", c)} for c in cells]


def _f(m, x):
    return np.asarray(m(x, training=False), dtype=np.float64)


def test_integrated_gradients_with_the_options_given_complete_and_equal_to_attributions(saved):
    folder, m, x = saved
    opts = {"target": 1, "n_steps": 8, "rule": "riemann_trapezoid"}
    out = folder / "ig.html"
    rnnscope.report([folder / "m.keras"], out=out, inputs=x, attributions=opts, figures=False)
    section = _section(out)
    assert "Integrated gradients (8 steps, riemann_trapezoid) of output unit 1" in section
    a = rnnscope.attributions(m, x, **opts)
    gain = _f(m, x)[:, 1] - _f(m, np.zeros_like(x))[:, 1]
    np.testing.assert_allclose(a.values.reshape(B, -1).sum(1) - gain, a.delta, atol=1e-5)
    for i, shown in enumerate(_strongest(section)):
        assert len(shown) == 3
        for t, v in shown.items():
            assert v == pytest.approx(a.per_timestep[i, t], rel=5e-3, abs=1e-6)


def test_cli_occlusion_of_the_predicted_class_equals_re_evaluation(saved):
    folder, m, x = saved
    out = folder / "occ.html"
    argv = ["report", str(folder / "m.keras"), "--input", str(folder / "x.npy"), "-o", str(out)]
    argv += ["--no-figures", "--attr-method", "occlusion", "--attr-window", "1"]
    assert main(argv) == 0
    section = _section(out)
    assert "Occlusion (windows of 1 timestep(s), stride 1) of the predicted class" in section
    full = _f(m, x)
    pred = full.argmax(axis=1)
    for i, shown in enumerate(_strongest(section)):
        for t, v in shown.items():
            xo = x.copy()
            xo[:, t] = 0.0
            drop = full[i, pred[i]] - _f(m, xo)[i, pred[i]]
            assert v == pytest.approx(F * drop, rel=5e-3, abs=1e-6)  # every feature: the drop


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--attr-method", "shap"], "--attr-method: expected one of saliency, gradient_x_input"),
        (["--attr-steps", "1"], "--attr-steps: expected an integer >= 2; got 1"),
        (["--attr-steps", "many"], "--attr-steps: expected a whole number; got 'many'"),
        (["--attr-window", "9"], "--attr-window: expected at most the 4 timesteps"),
        (["--attr-stride", "0"], "--attr-stride: expected an integer >= 1; got 0"),
        (["--attr-rule", "simpson"], "--attr-rule: expected one of gausslegendre"),
        (["--attr-target", "a,b"], "--attr-target: expected a unit/class index"),
    ],
)
def test_bad_option_values_are_one_line_errors_naming_the_flag(saved, capsys, extra, words):
    folder, _, _ = saved
    argv = ["report", str(folder / "m.keras"), "--input", str(folder / "x.npy")]
    assert main([*argv, "-o", str(folder / "bad.html"), *extra]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1
    assert not (folder / "bad.html").exists()


def test_options_without_input_and_bad_python_options_are_refused(saved, capsys):
    folder, _, x = saved
    argv = ["report", str(folder / "m.keras"), "-o", str(folder / "no.html"), "--attr-steps", "9"]
    assert main(argv) == 2
    assert "--attr-steps: options of the attributions section; give --input as well" in (
        capsys.readouterr().err
    )
    for options, words in [
        ({"method": "lime"}, "attributions['method']: expected one of"),
        ({"n_step": 5}, "unknown option(s) 'n_step'"),
        ({"target": [0, 1]}, "3 indices (one per sample)"),
        ({"stdev": -1.0}, "attributions['stdev']: expected a number > 0"),
        ("saliency", "expected a dict of options"),
    ]:
        with pytest.raises(InputError, match=re.escape(words)):
            rnnscope.report([folder / "m.keras"], out=folder / "p.html", inputs=x,
                            attributions=options)  # fmt: skip
    with pytest.raises(InputError, match="need inputs= as well") as err:
        rnnscope.report([folder / "m.keras"], out=folder / "p.html", attributions={})
    assert err.value.argument == "attributions"
