"""The report's attributions section: ``rnnscope.report(..., inputs=x)`` and ``rnnscope report
--input x.npy --tokens words.txt``. Token colours carry the values of the model's own
completeness-checked attributions; every source is attributed or listed with the reason; the
page stays self-contained (data URIs only) and names from files are escaped; the explorer page
is written beside the report and linked relatively."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import rnnscope
from rnnscope._cli import main

keras = pytest.importorskip("keras")
pytest.importorskip("bokeh")

V, T = 9, 5


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attr_report")
    keras.utils.set_random_seed(0)
    inp = keras.Input((None,), dtype="int32")
    h = keras.layers.Embedding(V, 3, mask_zero=True, name="emb")(inp)
    m = keras.Model(inp, keras.layers.Dense(2, name="head")(keras.layers.LSTM(4, name="lstm")(h)))
    m.save(folder / "text.keras")
    m.save_weights(folder / "only.weights.h5")
    tok = np.array([[3, 1, 4, 1, 5], [2, 6, 5, 3, 0]], dtype=np.int32)
    np.save(folder / "tok.npy", tok)
    words = [["<b>", "a", "b", "c", "d"], ["e", "f", "g", "h", "pad"]]
    (folder / "words.txt").write_text("\n".join(" ".join(w) for w in words), encoding="utf-8")
    return folder, m, tok, words


def _titles(section, sample):
    line = re.search(rf"<p class='tokens'>{sample}: (.*?)</p>", section).group(1)
    return [float(v) for v in re.findall(r'title="([^"]+)"', line)]


def test_report_section_holds_the_models_token_attributions_and_links_the_explorer(saved):
    folder, m, tok, words = saved
    out = folder / "r.html"
    sources = [folder / "text.keras", folder / "only.weights.h5"]
    rnnscope.report(sources, out=out, inputs=tok, tokens=words, figures=False)
    page = out.read_text(encoding="utf-8")
    section = page[page.index('<section id="attributions">') :]
    a = rnnscope.attributions(m, tok)
    emb = keras.ops.convert_to_numpy(m.get_layer("emb").embeddings)
    f = lambda e: keras.ops.convert_to_numpy(
        m.get_layer("head")(m.get_layer("lstm")(e, mask=tok != 0))
    )
    picked = np.arange(2), a.target["index"]
    np.testing.assert_allclose(
        a.values.sum(axis=(1, 2)),
        f(emb[tok])[picked] - f(np.zeros_like(emb[tok]))[picked],
        atol=1e-5,
    )
    for i in range(2):
        np.testing.assert_allclose(_titles(section, i), a.per_timestep[i], rtol=1e-3, atol=1e-9)
    assert _titles(section, 1)[4] == 0.0  # the padded step
    assert "&lt;b&gt;" in section and "<b>" not in section.split("<p class='tokens'>")[1]
    assert "<h3>text.keras</h3>" in section
    assert "only.weights.h5: MODEL" in section  # listed with the reason (weights only)
    assert not re.search(r"""(src|href)=["'](?!data:|#|r-explore\.html)""", page)
    assert '<a href="r-explore.html">' in page and (folder / "r-explore.html").is_file()


def test_cli_report_input_and_tokens(saved, capsys):
    folder, _, _, _ = saved
    out = folder / "cli.html"
    args = [str(folder / "text.keras"), "--input", str(folder / "tok.npy"), "-o", str(out)]
    args.append("--no-figures")
    assert main(["report", *args, "--tokens", str(folder / "words.txt")]) == 0
    assert out.read_text(encoding="utf-8").count('class="tok"') == 10
    (folder / "short.txt").write_text("a b\nc d", encoding="utf-8")
    assert main(["report", *args, "--tokens", str(folder / "short.txt")]) == 2
    assert "tokens: expected 2 samples of 5 words (one per timestep)" in capsys.readouterr().err
    assert main(["report", str(folder / "text.keras"), "--tokens", "x.txt", "-o", str(out)]) == 2
    assert "--tokens: give the token ids with --input" in capsys.readouterr().err


def test_cli_attributions_of_token_ids(saved, capsys):
    folder, m, tok, _ = saved
    assert main(["attributions", str(folder / "text.keras"), "--input", str(folder / "tok.npy"),
                 "--json", "-", "--n-steps", "8"]) == 0  # fmt: skip
    got = json.loads(capsys.readouterr().out)[0]
    want = rnnscope.attributions(m, tok, n_steps=8)
    assert got["settings"]["embedding"] == "emb"
    np.testing.assert_allclose(np.array(got["values"]), want.values, rtol=1e-5, atol=1e-9)


def test_many_sources_attribute_the_first_and_last_three(saved):
    from rnnscope._report_attributions import attributions_section

    folder = saved[0]
    bad = [folder / f"w{k}.weights.h5" for k in range(8)]  # listed, never loaded
    html_ = attributions_section(bad, saved[2], folder / "m.html", str, explorer=False)
    assert "2 of the 8 sources: the section attributes the first 3 and the last 3" in html_
    assert [n for n in ("w0", "w2", "w3", "w4", "w5", "w7") if f"<li>{n}.weights" in html_] == [
        "w0", "w2", "w5", "w7"
    ]  # fmt: skip
