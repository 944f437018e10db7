"""rnnscope.report: one self-contained, escaped HTML file, checked as text and in a real
headless Chromium with the network off."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import re
import shutil

import numpy as np
import pytest

import rnnscope
from rnnscope import InputError

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
