"""rnnscope.report: one self-contained, escaped HTML file, checked as text and in a real
headless Chromium with the network off; at 100 checkpoints, findings grouped across the run
(checked against counts made from the ``stats``/``compare`` frames), full sections only where
they matter, a searchable index and multi-page output. One Chromium session for the module."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import math
import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest

import rnnscope
from rnnscope import InputError
from rnnscope._flags import Flag
from rnnscope._report import _columns_of
from rnnscope._report_groups import group_flags, select_detail, step_of, steps_of

pytest.importorskip("jinja2")
pytest.importorskip("matplotlib")
safetensors_np = pytest.importorskip("safetensors.numpy")

EVIL = '<img src=x onerror="alert(1)">'


def _lstm_tensors(rng, hidden=6, prefix="rnn", scale=1.0):
    return {
        f"{prefix}.weight_ih_l0": rng.normal(size=(4 * hidden, 3)).astype("f4") * scale,
        f"{prefix}.weight_hh_l0": rng.normal(size=(4 * hidden, hidden)).astype("f4") * scale,
        f"{prefix}.bias_ih_l0": rng.normal(size=4 * hidden).astype("f4"),
        f"{prefix}.bias_hh_l0": rng.normal(size=4 * hidden).astype("f4"),
        "head.weight": rng.normal(size=(1, hidden)).astype("f4"),
        "head.bias": np.zeros(1, "f4"),
    }


@pytest.fixture
def checkpoints(tmp_path, rng):
    good = tmp_path / "epoch1.safetensors"
    safetensors_np.save_file(_lstm_tensors(rng), str(good))
    grown = _lstm_tensors(rng, scale=3.0)
    grown["rnn.weight_hh_l0"][6:11, :3] = np.nan  # in the forget gate (torch order i, f, g, o)
    grown["rnn.weight_ih_l0"][:, 2] = 0.0
    for g in range(4):  # unit 5: no incoming weight in any gate
        grown["rnn.weight_ih_l0"][g * 6 + 5] = 0.0
        grown["rnn.weight_hh_l0"][g * 6 + 5] = 0.0
    bad = tmp_path / "epoch2.safetensors"
    safetensors_np.save_file(grown, str(bad))
    evil_dir = tmp_path / "evil"
    evil_dir.mkdir()
    evil = evil_dir / "<b>bold&<i>.safetensors"
    safetensors_np.save_file(_lstm_tensors(rng, prefix=EVIL.replace(".", "")), str(evil))
    return good, bad, evil


def test_report_is_self_contained_and_flags_problems(checkpoints, tmp_path):
    good, bad, _ = checkpoints
    out = rnnscope.report([good, bad], out=tmp_path / "r.html")
    html = out.read_text()
    assert html.startswith("<!doctype html>")
    # no resource from anywhere: every src is inline data, no external link or script
    assert set(re.findall(r'src="([a-z]+):', html)) == {"data"}
    assert not re.search(r"(href|src)=\"(https?:)?//", html)
    assert "<link" not in html
    _assert_only_hashed_script(html)
    # per model: heatmap and histograms of the LSTM (one direction) and the Dense head's figure;
    # the run: every gate block, per-gate L2 norms, recurrent singular values, and the LSTM's
    # histograms at both checkpoints stacked
    assert html.count('<img src="data:image/webp;base64,') == 2 * 3 + 4
    assert "epoch1.safetensors" in html and "epoch2.safetensors" in html
    flags = re.findall(r'<span class="sev (\w+)">', html)
    assert "error" in flags and "warning" in flags
    assert "15 NaN and 0 Inf of 36 values" in html  # forget gate of the recurrent kernel
    assert "1 of 6 units have every incoming weight below 0.001" in html
    assert "L2 norm grew" in html and "weights changing fast" in html  # x3 since epoch1
    assert "The run (baseline: epoch1.safetensors)" in html


def _assert_only_hashed_script(html: str) -> None:
    """One inline script, allowed by its SHA-256 in the CSP; nothing else may run."""
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert len(scripts) == 1 and html.count("<script") == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    csp = re.search(r'Content-Security-Policy" content="([^"]*)"', html).group(1)
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1]


def test_names_from_files_and_models_are_escaped(checkpoints, tmp_path):
    _, _, evil = checkpoints
    html = rnnscope.report(evil, out=tmp_path / "e.html").read_text()
    assert "<b>bold" not in html and "&lt;b&gt;bold&amp;&lt;i&gt;" in html
    assert "onerror=" not in html.replace("onerror=&#34;", "").replace("onerror=&quot;", "")
    assert "<img src=x" not in html and "&lt;img src=x" in html


def test_report_options_and_errors(checkpoints, tmp_path):
    good, _, _ = checkpoints
    html = rnnscope.report(good, out=tmp_path / "n.html", figures=False, title="Run 7").read_text()
    assert "<img" not in html and "<title>Run 7</title>" in html and "The run" not in html
    strict = rnnscope.Thresholds(abs_max=0.5)
    html = rnnscope.report(good, out=tmp_path / "s.html", thresholds=strict).read_text()
    assert "largest |weight|" in html
    with pytest.raises(InputError, match="cannot write the report"):
        rnnscope.report(good, out=tmp_path / "missing" / "r.html")


@dataclasses.dataclass
class Visit:
    """What a page did in the browser, from the first byte on."""

    requests: list[str]  # every URL the page asked for
    problems: list[str]  # console errors and warnings, uncaught exceptions
    dialogs: list[str]  # alert/confirm/prompt messages (each dismissed)
    images: list[list[float]] = dataclasses.field(default_factory=list)
    title: str = ""


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium driven by Playwright: a failure in CI when missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    missing = None if chromium else "chromium is not installed (scripts/test.sh installs it)"
    try:
        from playwright import sync_api
    except ImportError:
        missing = "playwright is not installed (it is in the test extra)"
    if missing:
        if _in_ci():
            pytest.fail(f"{missing}; CI runs the browser tests")
        pytest.skip(missing)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


def _visit(browser, path, screenshot=None) -> Visit:
    """Open ``path`` offline; every listener is attached before navigation, so whatever the page
    does while it loads (an inline script's dialog, a request, a console error) is seen."""
    visit = Visit([], [], [])
    context = browser.new_context(offline=True, viewport={"width": 1400, "height": 1000})
    context.on("request", lambda r: visit.requests.append(r.url))
    page = context.new_page()
    page.on("console", lambda m: m.type in ("error", "warning") and visit.problems.append(m.text))
    page.on("pageerror", lambda e: visit.problems.append(str(e)))

    def dialog(d):
        visit.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_load_state("networkidle")
    # figures below the first screen load lazily: ask for every one, then wait for it
    page.evaluate(
        "() => Promise.all([...document.images].map(i => "
        "{ i.loading = 'eager'; return i.decode().catch(() => null); }))"
    )
    visit.images = page.eval_on_selector_all(
        "img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])"
    )
    if screenshot is not None:
        page.screenshot(path=str(screenshot), full_page=True)
    visit.title = page.title()
    context.close()
    return visit


def _assert_quiet(visit: Visit) -> None:
    """No console problem, no dialog, no request leaving the file (file: and data: only)."""
    assert visit.problems == []
    assert visit.dialogs == []
    assert all(u.startswith(("file:", "data:")) for u in visit.requests), visit.requests


def test_report_renders_in_headless_chromium(browser, checkpoints, tmp_path):
    good, bad, evil = checkpoints
    page_path = rnnscope.report([good, bad, evil], out=tmp_path / "r.html")
    visit = _visit(browser, page_path, screenshot=tmp_path / "report.png")
    _assert_quiet(visit)  # the escaped onerror never ran; nothing was fetched
    assert visit.title == "rnnscope report"
    # 3 models x (LSTM heatmap, histograms, Dense head); the run: every gate block, per-gate
    # norms of 2 distinct LSTM layers, recurrent singular values, and a ridgeline per LSTM
    # layer found in two or more models (the evil model's layer is alone)
    images = visit.images
    assert len(images) == 3 * 3 + 1 + 2 + 1 + 1 and all(c and w > 0 and h > 0 for c, w, h in images)
    assert (tmp_path / "report.png").stat().st_size > 10_000


# Hostile pages for the harness itself (no CSP, unlike the report): each must be caught.
HOSTILE = {
    "dialog": ("<script>alert('hostile dialog')</script>", "dialogs", "hostile dialog"),
    "request": ('<img src="http://192.0.2.1/pixel.png">', "requests", "http://192.0.2.1/pixel.png"),
    "console": ("<script>console.error('hostile error')</script>", "problems", "hostile error"),
    "exception": ("<script>throw new Error('hostile throw')</script>", "problems", "hostile throw"),
}


def test_browser_harness_catches_what_a_page_does_on_load(browser, tmp_path):
    quiet = tmp_path / "quiet.html"
    quiet.write_text("<!doctype html><title>quiet</title><p>nothing happens here</p>")
    visit = _visit(browser, quiet)
    _assert_quiet(visit)  # the harness does not cry wolf
    assert visit.title == "quiet" and visit.requests == [quiet.as_uri()]
    for name, (body, channel, expected) in HOSTILE.items():
        page = tmp_path / f"{name}.html"
        page.write_text(f"<!doctype html><title>{name}</title>{body}")
        visit = _visit(browser, page)
        caught = getattr(visit, channel)
        assert any(expected in item for item in caught), (name, visit)
        with pytest.raises(AssertionError):
            _assert_quiet(visit)


# ---- the report at 100 checkpoints ----

H, N = 6, 100
NAN_AT, DEAD, JUMP = 77, range(40, 60), 90


def _write_run(folder):
    """100 checkpoints of a torch LSTM(6) + head; the recurrent kernel grows 5 % of its first
    value per checkpoint (its largest singular value passes the size-aware bound mid-run), unit
    1 is dead at 40-59, one NaN at 77 (and an Inf at 30 elsewhere), and the input kernel jumps x3
    at 90 and back at 91."""
    rng = np.random.default_rng(7)
    base = {
        "rnn.weight_ih_l0": rng.normal(0, 0.3, (4 * H, 3)),
        "rnn.weight_hh_l0": rng.normal(0, 0.1, (4 * H, H)),
        "rnn.bias_ih_l0": rng.normal(0, 0.3, 4 * H),
        "rnn.bias_hh_l0": rng.normal(0, 0.3, 4 * H),
        "head.weight": rng.normal(0, 0.3, (1, H)),
        # a trained-looking head: a zero bias and small weights would match torch's default
        # initialisation of a 6-input Linear (an "untrained" note the oracle does not model)
        "head.bias": np.full(1, 0.5),
    }
    folder.mkdir()
    for i in range(N):
        t = {k: v.astype("f4") for k, v in base.items()}
        t["rnn.weight_hh_l0"] *= 1 + 0.05 * i
        if i in DEAD:
            for g in range(4):
                t["rnn.weight_ih_l0"][g * H + 1] = 0.0
                t["rnn.weight_hh_l0"][g * H + 1] = 0.0
        if i == NAN_AT:
            t["rnn.weight_hh_l0"][0, 0] = np.nan
        if i == 30:  # a second place for the same finding: the input kernel's forget gate
            t["rnn.weight_ih_l0"][H, 1] = np.inf
        if i == JUMP:
            t["rnn.weight_ih_l0"] *= 3
        safetensors_np.save_file(t, str(folder / f"step{i * 100:05d}.safetensors"))
    return folder


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return _write_run(tmp_path_factory.mktemp("run") / "ck")


def _where(*bits):
    return " / ".join(b for b in bits if b and b != "forward")


def _recurrent_bound():
    """The recurrent bound for the run's 6 x 24 recurrent kernel of 6 units (README, "How the
    flags are calibrated"): 1.5 x the largest singular value a standard initialisation gives that
    shape (Glorot's sqrt(2 / (m + n)) (sqrt m + sqrt n) here)."""
    m, n, units = H, 4 * H, H
    root = math.sqrt(m) + math.sqrt(n)
    ref = max(1.0, math.sqrt(2 / (m + n)) * root, root / math.sqrt(3 * units))
    return rnnscope.Thresholds().recurrent_high * ref


def _expected_groups(folder):
    """(rule, where) -> (count, first, last), counted from the stats and compare frames with the
    default thresholds (no flag code involved); and the stats frame."""
    t = rnnscope.Thresholds()
    high = _recurrent_bound()
    df = rnnscope.stats(folder).astype({"nan": float, "inf": float, "dead_units": float})
    df = df.fillna({"dead_units": 0.0, "matrix_spectral_norm": math.nan})
    cmp = rnnscope.compare(folder)
    hits: dict[tuple[str, str], list[str]] = {}

    def add(rule, where, model):
        models = hits.setdefault((rule, where), [])
        if model not in models:
            models.append(model)

    for r in df.itertuples():
        if r.nan + r.inf > 0:
            add("nonfinite", _where(r.layer, r.part, r.gate, r.direction), r.model)
        if r.dead_units > 0:
            add("dead_units", _where(r.layer, r.direction), r.model)
        if r.frac_near_zero > t.near_zero_fraction:
            add("near_zero", _where(r.layer, r.part, r.gate, r.direction), r.model)
        if r.abs_max > t.abs_max:
            add("large_weights", _where(r.layer, r.part, r.gate, r.direction), r.model)
        sigma = r.matrix_spectral_norm
        if r.part == "recurrent_kernel" and (sigma > high or sigma < t.recurrent_low):
            add("recurrent_norm", _where(r.layer, r.part, "", r.direction), r.model)
    step = cmp["l2_norm_step_rel_change"].abs()
    moved = cmp["present"].astype(bool) & (step > t.growth) & (cmp["size"].astype(float) >= 8)
    for r in cmp[moved.fillna(False)].itertuples():
        add("growth", _where(r.layer, r.part, "", r.direction), r.model)
    order = list(dict.fromkeys(df["model"]))
    groups = {
        k: (len(v), min(v, key=order.index), max(v, key=order.index)) for k, v in hits.items()
    }
    return groups, df


def test_grouped_findings_picker_and_pages_in_chromium(browser, run, tmp_path):
    out = rnnscope.report(run, out=tmp_path / "r.html", figures=False, detail=["step050*"])
    html = out.read_text()
    _assert_only_hashed_script(html)
    expected, df = _expected_groups(run)
    # the designed story is there: NaN once, dead units 40-59, sigma > 1 from early on with a
    # gap at the NaN, the kernel's jump and fall
    names = [f"step{i * 100:05d}.safetensors" for i in range(N)]
    assert expected[("nonfinite", "rnn.l0 / recurrent_kernel / input")] == (1,) + (names[77],) * 2
    assert expected[("nonfinite", "rnn.l0 / kernel / forget")] == (1,) + (names[30],) * 2
    assert expected[("dead_units", "rnn.l0")] == (20, names[40], names[59])
    assert expected[("growth", "rnn.l0 / kernel")] == (2, names[90], names[91])
    sigma = expected[("recurrent_norm", "rnn.l0 / recurrent_kernel")]
    assert 5 < sigma[0] < 99 and sigma[2] == names[-1]  # late (2 x sigma_ref), to the end

    visit_rows, trios = {}, {}
    context = browser.new_context(offline=True, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    problems = []
    page.on("console", lambda m: m.type in ("error", "warning") and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(out.as_uri(), wait_until="load")
    for r in page.eval_on_selector_all(
        "#groups tbody tr",
        "rows => rows.map(r => [r.dataset.rule, r.dataset.where, +r.dataset.count, "
        "r.dataset.first, r.dataset.last, r.dataset.severity, r.dataset.values])",
    ):
        visit_rows[(r[0], r[1])] = tuple(r[2:5])
        trios[(r[0], r[1])] = [float(v) for v in r[6].split()]
        if r[0] == "nonfinite":
            assert r[5] == "error"
    assert visit_rows == expected
    # the recurrent kernel's largest singular value at the first, worst and last checkpoint
    # where it is above the bound, from the stats frame
    rk = df[df["part"] == "recurrent_kernel"].drop_duplicates("model").set_index("model")
    sigma = rk["matrix_spectral_norm"].astype(float)
    above = sigma[sigma > _recurrent_bound()]
    want = [above.iloc[0], above.max(), above.iloc[-1]]
    np.testing.assert_allclose(trios[("recurrent_norm", "rnn.l0 / recurrent_kernel")], want)
    # the picker: typing filters the index, Enter on a name with a full section jumps to it
    page.fill("#pick", "step077")
    visible = page.eval_on_selector_all(
        "#index tbody tr:not([hidden])", "rs => rs.map(r => r.dataset.name)"
    )
    assert visible == [names[77]]
    assert page.inner_text("#pick-status") == f"1 of {N} checkpoints"
    page.press("#pick", "Enter")
    assert page.evaluate("location.hash") == "#model-78"  # the NaN's checkpoint is in full
    page.fill("#pick", "")
    assert page.eval_on_selector_all("#index tbody tr:not([hidden])", "rs => rs.length") == N
    assert problems == []
    context.close()

    # full sections: first, last, the worst of each finding, where each appears or stops, and
    # the one picked; not the other ~90
    sections = re.findall(r'<h2 id="model-(\d+)">([^<]+)</h2>', html)
    shown = [name for _, name in sections]
    for must in (names[0], names[-1], names[77], names[40], names[60], names[90], names[50]):
        assert must in shown
    assert len(shown) < 15

    # one page per model shown in full, relative links, each self-contained
    from rnnscope._cli import main as cli

    pages = tmp_path / "pages"
    assert cli(["report", str(run), "-o", f"{pages}/", "--no-figures", "--detail", "*05000*"]) == 0
    index = pages / "index.html"
    links = re.findall(r'<a class="detail" href="([^"]+)"', index.read_text())
    assert links and all(re.fullmatch(r"model-\d+\.html", x) for x in links)
    assert all((pages / x).is_file() for x in links)
    assert sorted(p.name for p in pages.glob("model-*.html")) == sorted(links)
    assert "model-51.html" in links  # picked on the command line
    csv = pd.read_csv(pages / "flags.csv")
    assert len(csv) == sum(c for c, _, _ in expected.values())
    visit = _visit(browser, pages / links[-1])
    _assert_quiet(visit)
    assert visit.title.endswith("rnnscope report")


def _flag(model, value, rule="recurrent_norm", where="lstm / recurrent_kernel", sev="note"):
    return Flag(sev, model, where, f"value {value}", rule, value)


def test_group_flags_ranges_worst_and_transitions():
    names = [f"e{i}" for i in range(8)]
    flags = [_flag(f"e{i}", v) for i, v in ((1, 1.2), (2, 1.9), (3, 1.4), (6, 1.1))]
    flags += [_flag("e2", 0.5, "nonfinite", "lstm / kernel / input", "error")]
    groups = group_flags(flags, names)
    assert [g.rule for g in groups] == ["nonfinite", "recurrent_norm"]  # errors first
    g = groups[1]
    assert g.models == [1, 2, 3, 6] and g.runs == [(1, 3), (6, 6)]
    assert g.flags[g.worst].value == 1.9 and g.severity == "note"
    assert g.transitions(8) == [
        (1, "appears"),
        (4, "disappears"),
        (6, "appears"),
        (7, "disappears"),
    ]
    chosen = select_detail(names, groups)
    assert chosen == {
        "e0": ["first"],
        "e1": ["recurrent_norm at lstm / recurrent_kernel appears"],
        "e2": [
            "worst nonfinite at lstm / kernel / input",
            "nonfinite at lstm / kernel / input appears",
            "worst recurrent_norm at lstm / recurrent_kernel",
        ],
        "e3": ["nonfinite at lstm / kernel / input disappears"],
        "e4": ["recurrent_norm at lstm / recurrent_kernel disappears"],
        "e6": ["recurrent_norm at lstm / recurrent_kernel appears"],
        "e7": ["last", "recurrent_norm at lstm / recurrent_kernel disappears"],
    }
    with pytest.raises(InputError, match=r"flags of rule 'recurrent_norm'.*not in model order"):
        group_flags(flags[::-1], names)


def test_detail_best_by_metric_and_picks():
    names = ["run-a.keras", "run-b.keras", "run-c.keras", "run-d.keras"]
    metrics = pd.DataFrame(
        {
            "step": [10, 20, 30, 40],
            "val_loss": [0.9, 0.4, 0.5, 0.7],
            "accuracy": [0.5, 0.6, 0.9, 0.8],
        },
        index=names,
    )
    by_loss = select_detail(names, [], metrics=metrics, rank_by="val_loss")
    assert by_loss["run-b.keras"] == ["best val_loss (0.4, lowest)"]
    by_acc = select_detail(names, [], metrics=metrics, rank_by="accuracy")
    assert by_acc["run-c.keras"] == ["best accuracy (0.9, highest)"]
    assert steps_of(names, metrics) == [10.0, 20.0, 30.0, 40.0]
    assert steps_of(names) is None  # no digits in the names
    assert step_of("ckpt-epoch3-step1200.safetensors") == 1200.0 and math.isnan(step_of("x.pt"))
    assert list(select_detail(names, [], detail=["*-c*"])) == names[:1] + names[2:]
    assert list(select_detail(names, [], detail=["all"])) == names
    with pytest.raises(InputError, match=r"detail: 'nope\*' matches none of the 4 models") as e:
        select_detail(names, [], detail=["nope*"])
    assert e.value.argument == "detail"
    with pytest.raises(InputError, match="rank_by: no metric 'bleu'; the metrics have: step"):
        select_detail(names, [], metrics=metrics, rank_by="bleu")


def test_alpha_column_hidden_only_when_empty_everywhere():
    empty = [{"alpha": math.nan, "alpha_note": "fewer than 50 eigenvalues"}] * 3
    cols, why = _columns_of(empty)
    assert "alpha" not in dict(cols) and why == "fewer than 50 eigenvalues"
    cols, why = _columns_of([*empty, {"alpha": 3.1, "alpha_note": ""}])
    assert "alpha" in dict(cols) and why == ""


def test_figures_of_non_recurrent_layers_flatten_per_output_channel(tmp_path):
    """Conv kernels drawn one row per output channel; the oracle slices the framework's own
    tensor by its documented layout (torch Conv: (out, in, k...))."""
    torch = pytest.importorskip("torch")
    from rnnscope.plot._common import offscreen
    from rnnscope.plot._layers import as_matrix, layer_figure

    torch.manual_seed(0)
    model = torch.nn.ModuleDict(
        {
            "conv": torch.nn.Conv2d(2, 5, (3, 4)),
            "emb": torch.nn.Embedding(40, 8),
            "rnn": torch.nn.LSTM(8, H),
        }
    )
    path = tmp_path / "mixed.safetensors"
    tensors = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    safetensors_np.save_file(tensors, str(path))
    conv = tensors["conv.weight"]
    with offscreen():
        fig = layer_figure(rnnscope.weights(path, "conv"))
    drawn = {ax.get_title(): ax.images[0].get_array() for ax in fig.axes if ax.images}
    image = np.asarray(drawn["weight (5x2x3x4)"])
    assert image.shape == (5, 24)
    for c in range(5):  # row c: output channel c, its (in, kh, kw) block in C order
        np.testing.assert_array_equal(image[c], conv[c].reshape(-1))
    keras_kernel = np.moveaxis(conv, (0, 1), (3, 2))  # Keras Conv2D layout: (kh, kw, in, out)
    m, rows, _ = as_matrix("kernel", keras_kernel)
    assert rows == "output channel"
    for c in range(5):
        np.testing.assert_array_equal(m[c], keras_kernel[..., c].reshape(-1))
    html = rnnscope.report(path, out=tmp_path / "m.html").read_text()
    for caption in ("conv: weights", "emb: weights", "rnn.l0: heatmap", "rnn.l0: histograms"):
        assert f'alt="{caption}"' in html
