"""rnnscope.explore: the page's numbers against torch and numpy, driven in headless Chromium.

The expected side never passes through rnnscope: h, c and the gates come from the float64 numpy
cells over torch's raw parameters (``tests/oracles/raw.py``, itself checked against torch's own
output here), and the selection and the matches are recomputed in numpy below.
"""

from __future__ import annotations

import base64
import html
import json
import re

import numpy as np
import pytest

import rnnscope
from rnnscope import InputError
from tests.oracles import raw
from tests.test_report import browser  # noqa: F401  (the shared fixture)

torch = pytest.importorskip("torch")
pytest.importorskip("bokeh")

SAMPLES, TIME, FEATURES, UNITS = 5, 24, 3, 6


@pytest.fixture(scope="module")
def lstm():
    """A bidirectional torch LSTM, an input batch, and every gate by the raw-weight oracle."""
    torch.manual_seed(7)
    model = torch.nn.LSTM(FEATURES, UNITS, batch_first=True, bidirectional=True)
    x = np.random.default_rng(7).normal(size=(SAMPLES, TIME, FEATURES)).astype(np.float32)
    p = {k: v.detach().numpy() for k, v in model.named_parameters()}

    def run(xx, sfx):
        return raw.torch_lstm(
            xx, *(p[f"{n}_l0{sfx}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        )

    gates = {"forward": run(x, ""), "backward": raw.flip(run(x[:, ::-1], "_reverse"))}
    with torch.no_grad():
        out = model(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(gates["forward"]["h"], out[..., :UNITS], atol=1e-5)
    np.testing.assert_allclose(gates["backward"]["h"], out[..., UNITS:], atol=1e-5)
    return model, x, gates


def selected(v: np.ndarray, s: int, t0: int, t1: int, thr: float) -> list[int]:
    """Units of sample s above thr at every step t0..t1 (v: float32 values, compared in float64)."""
    return np.flatnonzero((v[s, t0 : t1 + 1].astype(np.float64) > thr).all(axis=0)).tolist()


def matches(v: np.ndarray, units: list[int], length: int, thr: float) -> list[tuple]:
    """(score, sample, start, end, units on) of every maximal run where all units are above thr."""
    on = v.astype(np.float64) > thr
    found = []
    for s in range(v.shape[0]):
        together = on[s][:, units].all(axis=1)
        t = 0
        while t < v.shape[1]:
            if not together[t]:
                t += 1
                continue
            end = t
            while end + 1 < v.shape[1] and together[end + 1]:
                end += 1
            n_on = int(on[s, t : end + 1].all(axis=0).sum())
            span = end - t + 1
            score = len(units) / n_on * min(span, length) / max(span, length)
            found.append((score, s, t, end, n_on))
            t = end + 1
    return sorted(found, key=lambda f: (-f[0], f[1], f[2]))


# ------------------------------------------------------------------------------ in the browser
MODEL = "(name) => Bokeh.documents[0].get_model_by_name(name)"
ROWS = '[data-rnnscope="matches"] tr[data-row]'  # the match list's rows


def get(page, name, attr):
    return page.evaluate(f"([n, a]) => ({MODEL})(n)[a]", [name, attr])


def said(page, box: str) -> str:
    """The HTML of one of the page's text boxes ("count", "match-title"; outside Bokeh)."""
    return page.evaluate(f"() => document.querySelector('[data-rnnscope=\"{box}\"]').innerHTML")


def put(page, name, attr, value):
    """Set a Bokeh model's property through BokehJS, which runs the page's own callbacks."""
    page.evaluate(f"([n, a, v]) => {{ ({MODEL})(n)[a] = v; }}", [name, attr, value])


def drawn(page, source: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """The unit lines of one source: unit -> (timesteps, values)."""
    data = get(page, source, "data")
    out = {}
    for u, x, y in zip(data["unit"], data["xs"], data["ys"], strict=True):
        x, y = (list(v.values()) if isinstance(v, dict) else v for v in (x, y))
        out[u] = (np.array(x, dtype=np.float64), np.array(y, dtype=np.float64))
    return out


def shown(page) -> tuple[list[int], np.ndarray]:
    """Every unit line drawn (blue and red), each over every step: (units, values (units, time))."""
    lines = {**drawn(page, "rnnscope-others-src"), **drawn(page, "rnnscope-lines-src")}
    units = sorted(lines)
    for u in units:
        assert lines[u][0].tolist() == list(range(len(lines[u][0]))), u  # every step, in order
    return units, np.array([lines[u][1] for u in units])


def lines_box(page) -> dict[str, float]:
    """Where the unit-lines plot's frame is on the screen, and its x scale at two timesteps."""
    return page.evaluate(
        """() => {
          const plot = Bokeh.documents[0].get_model_by_name('rnnscope-lines');
          let pv = null;
          for (const v of Bokeh.index) { pv = pv || v.owner.find_one(plot); }
          const r = pv.canvas_view.el.getBoundingClientRect(), f = pv.frame.bbox;
          return {left: r.left, top: r.top + f.top + f.height / 2,
                  at: [4, 9].map((t) => pv.frame.x_scale.compute(t))};
        }"""
    )


def open_page(browser, path, ready=True):  # noqa: F811
    """A page opened offline, with every request and console problem recorded from the start."""
    record = {"requests": [], "problems": []}
    context = browser.new_context(offline=True, viewport={"width": 1400, "height": 1000})
    context.on("request", lambda r: record["requests"].append(r.url))
    page = context.new_page()
    page.set_default_timeout(8000)
    page.on(
        "console", lambda m: m.type in ("error", "warning") and record["problems"].append(m.text)
    )
    page.on("pageerror", lambda e: record["problems"].append(str(e)))
    page.goto(path.as_uri(), wait_until="load")
    if ready:
        page.wait_for_function("() => window.__rnnscopeExplore !== undefined")
    return context, page, record


def listed(page) -> list[tuple]:
    """The match list's rows as shown: (rank, label, start, end, units on, score as printed)."""
    rows = page.locator(ROWS)
    cells = [rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())]
    return [(int(c[0]), c[1], int(c[2]), int(c[3]), int(c[4]), c[5]) for c in cells]


def check_listed(page, want, names, first=0) -> None:
    """The page of the list from row ``first`` shows the next PAGE_ROWS of ``want``, in order."""
    from rnnscope._explore import PAGE_ROWS

    rows = want[first : first + PAGE_ROWS]
    expect = [
        (first + i + 1, names[s], a, b, n, f"{sc:.3f}") for i, (sc, s, a, b, n) in enumerate(rows)
    ]
    assert expect and listed(page) == expect


def hover(page, t: int, u: int) -> tuple[int, int, str]:
    """Hover the heatmap's cell (unit u, timestep t): the tooltip's unit, timestep and value."""
    at = page.evaluate(
        """([t, u]) => {
          const plot = Bokeh.documents[0].get_model_by_name('rnnscope-heatmap');
          let pv = null;
          for (const v of Bokeh.index) { pv = pv || v.owner.find_one(plot); }
          const r = pv.canvas_view.el.getBoundingClientRect();
          return [r.left + pv.frame.x_scale.compute(t), r.top + pv.frame.y_scale.compute(u)];
        }""",
        [t, u],
    )
    page.mouse.move(at[0] - 30, at[1] - 10)
    page.mouse.move(*at, steps=4)
    tip = page.locator(".bk-tooltip-content").first.inner_text()
    unit, step, value = re.fullmatch(
        r"unit:\s*(\d+)\s*t:\s*(\d+)\s*value:\s*(\S+)", tip.strip()
    ).groups()
    return int(unit), int(step), value


def heatmap_image(page) -> dict:
    """The heatmap's image as drawn, (units, columns), with its left edge and width in steps."""
    d = get(page, "rnnscope-img-src", "data")
    flat = d["image"][0]
    flat = np.array([flat[str(i)] for i in range(len(flat))] if isinstance(flat, dict) else flat)
    return {"x": d["x"][0], "dw": d["dw"][0], "image": flat.reshape(int(d["dh"][0]), -1)}


def check_selection(page, v, thr):
    t0, t1 = get(page, "rnnscope-range", "value")
    s = int(get(page, "rnnscope-sample", "value"))
    units = list(get(page, "rnnscope-selected", "data")["unit"])
    assert units == selected(v, s, int(t0), int(t1), thr), (s, t0, t1, thr)
    assert f"<b>{len(units)}</b> of {UNITS} units" in said(page, "count")
    return units, int(t0), int(t1)


def test_explorer_in_chromium(browser, lstm, tmp_path):  # noqa: F811
    model, x, gates = lstm
    labels = [f"seq <{i}>" for i in range(SAMPLES)]
    out = rnnscope.explore(model, x, labels=labels, out=tmp_path / "e.html", threshold=0.05)
    assert out.encoding == "f32" and out.left_out == ()
    context, page, record = open_page(browser, out.path)
    h_f, h_b = gates["forward"]["h"], gates["backward"]["h"]

    # first view: sample 0, h, forward, drawn to float32 precision
    units, values = shown(page)
    assert units == list(range(UNITS))
    np.testing.assert_allclose(values, h_f[0].T, atol=1e-6)

    # brush a time range with the mouse on the unit lines
    box = lines_box(page)
    page.mouse.move(box["left"] + box["at"][0], box["top"])
    page.mouse.down()
    page.mouse.move(box["left"] + box["at"][1], box["top"], steps=6)
    page.mouse.up()
    page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('rnnscope-range').value[0] == 4"
    )
    assert get(page, "rnnscope-range", "value") == [4, 9]
    check_selection(page, h_f, 0.05)

    # set a threshold and a range where some units stay on, through the widgets' models
    thr = 0.0
    put(page, "rnnscope-threshold", "value", thr)
    put(page, "rnnscope-range", "value", [7, 7])  # one step: its last step counts too
    assert 0 < len(check_selection(page, h_f, thr)[0]) < UNITS
    put(page, "rnnscope-range", "value", [15, 20])
    units, t0, t1 = check_selection(page, h_f, thr)
    assert units == [1, 3, 5]  # the fixture's: 15 matches, 12 of them with more units on

    # the matches: every run in every sample, ranked by the documented score
    want = matches(h_f, units, t1 - t0 + 1, thr)
    got = get(page, "rnnscope-matches", "data")
    rows = zip(got["sample"], got["start"], got["end"], got["on"], strict=True)
    assert list(rows) == [w[1:] for w in want]
    np.testing.assert_allclose(got["score"], [w[0] for w in want], rtol=1e-12)
    assert f"<b>{len(want)}</b> place" in said(page, "match-title")
    check_listed(page, want, [f"{i}: {v}" for i, v in enumerate(labels)])

    # click a match in another sample: the view moves there
    row = next(i for i, w in enumerate(want) if w[1] != 0)
    _, s, a, b, _ = want[row]
    page.locator(ROWS).nth(row).click()
    page.wait_for_function(
        f"() => Bokeh.documents[0].get_model_by_name('rnnscope-sample').value == '{s}'"
    )
    xr = (get(page, "rnnscope-x", "start"), get(page, "rnnscope-x", "end"))
    assert xr[0] < a and b < xr[1] and xr != (-0.5, TIME - 0.5), (xr, a, b)
    assert get(page, "rnnscope-match-box", "visible")
    assert (get(page, "rnnscope-match-box", "left"), get(page, "rnnscope-match-box", "right")) == (
        a - 0.5,
        b + 0.5,
    )
    np.testing.assert_allclose(shown(page)[1], h_f[s].T, atol=1e-6)
    assert list(get(page, "rnnscope-selected", "data")["unit"]) == units  # the selection stays

    # switch direction and signal with the page's own menus
    page.get_by_label("direction").select_option("backward")
    page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('rnnscope-direction').value == 'backward'"
    )
    np.testing.assert_allclose(shown(page)[1], h_b[s].T, atol=1e-6)
    check_selection(page, h_b, thr)
    # two ranges whose match lists have the same length: the table must show the second list
    t0 = next(
        t
        for t in range(TIME - 3)
        if selected(h_b, s, t, t + 3, thr)
        and len(matches(h_b, selected(h_b, s, t, t + 3, thr), 4, thr))
        == len(matches(h_b, selected(h_b, s, t + 1, t + 3, thr), 3, thr))
    )
    for lo in (t0, t0 + 1):
        put(page, "rnnscope-range", "value", [lo, t0 + 3])
        units_b, a0, a1 = check_selection(page, h_b, thr)
        check_listed(
            page,
            matches(h_b, units_b, a1 - a0 + 1, thr),
            [f"{i}: {v}" for i, v in enumerate(labels)],
        )
    page.get_by_label("signal").select_option("forget")
    forget = gates["backward"]["forget"]
    np.testing.assert_allclose(shown(page)[1], forget[s].T, atol=1e-6)
    put(page, "rnnscope-threshold", "value", 0.5)
    check_selection(page, forget, 0.5)
    image = get(page, "rnnscope-img-src", "data")["image"][0]
    flat = np.array(
        [image[str(i)] for i in range(len(image))] if isinstance(image, dict) else image
    )
    np.testing.assert_allclose(flat.reshape(UNITS, TIME), forget[s].T, atol=1e-6)

    # hovering a heatmap cell shows its unit, timestep and value (t=a: the view is zoomed there)
    unit, step, value = hover(page, a, 2)
    assert (unit, step) == (2, a)
    assert abs(float(value) - forget[s, a, 2]) <= 5e-7 + 1e-6

    page.screenshot(path=str(tmp_path / "explore.png"), full_page=True)
    context.close()
    assert record["problems"] == []
    assert record["requests"] == [out.path.as_uri()]  # the file itself, nothing else


def test_quantised_page_of_a_wide_layer(browser, tmp_path, monkeypatch):  # noqa: F811
    """50 units at 8 bits: values within half a step; 40 selected and some others drawn as lines
    over a band that spans every unit; the match list a page of 4 rows at a time."""
    from rnnscope import _explore

    monkeypatch.setattr(_explore, "PAGE_ROWS", 4)
    torch.manual_seed(3)
    model = torch.nn.RNN(FEATURES, 50, batch_first=True)
    x = np.random.default_rng(3).normal(size=(SAMPLES, TIME, FEATURES)).astype(np.float32)
    p = {k: v.detach().numpy() for k, v in model.named_parameters()}
    h = raw.torch_rnn(x, p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"])
    h = h["h"]
    with torch.no_grad():
        np.testing.assert_allclose(h, model(torch.from_numpy(x))[0].numpy(), atol=1e-5)
    with pytest.raises(InputError, match=r"max_mb=0.001: even the first signal 'h'"):
        rnnscope.explore(model, x, out=tmp_path / "q.html", max_mb=0.001)
    out = rnnscope.explore(model, x, out=tmp_path / "q.html", max_mb=0.01, threshold=-0.9)
    assert out.encoding == "u8" and out.signals == (("h", "forward"),)
    context, page, record = open_page(browser, out.path)
    half = (h.max() - h.min()) / 255 / 2 + 1e-6
    band = get(page, "rnnscope-band-src", "data")
    for key, want in (("lo", h[0].min(axis=1)), ("hi", h[0].max(axis=1))):
        got = band[key].values() if isinstance(band[key], dict) else band[key]
        assert np.abs(np.array(list(got), dtype=float) - want).max() <= half
    low = np.sort(h[0, 3])
    put(page, "rnnscope-threshold", "value", float(low[5] + low[6]) / 2)  # 44 units above it
    put(page, "rnnscope-range", "value", [3, 3])
    picked = get(page, "rnnscope-selected", "data")["unit"]
    assert len(picked) == 44
    red, blue = drawn(page, "rnnscope-lines-src"), drawn(page, "rnnscope-others-src")
    assert len(red) == 40 and set(red) <= set(picked) and len(blue) == 40
    units, values = shown(page)
    assert np.abs(values - h[0].T[units]).max() <= half
    assert "40 of them drawn in red" in said(page, "count")
    # 50 units are two 32-bit words of the page's masks: selection and matches against numpy
    # on the values as stored (8 bits: exact to the stored precision)
    stored = unpack(page_data(out.path)["signals"]["h|forward"])
    assert np.abs(stored - h).max() <= half
    thr = float(np.median(stored))
    put(page, "rnnscope-threshold", "value", thr)
    seen = set()
    for t0, t1 in ((2, 4), (10, 11), (17, 17)):
        put(page, "rnnscope-range", "value", [t0, t1])
        units = list(get(page, "rnnscope-selected", "data")["unit"])
        assert units == selected(stored, 0, t0, t1, thr)
        seen |= set(units)
        want = matches(stored, units, t1 - t0 + 1, thr)
        got = get(page, "rnnscope-matches", "data")
        rows = zip(got["sample"], got["start"], got["end"], got["on"], strict=True)
        assert list(rows) == [w[1:] for w in want][:200] and want
        np.testing.assert_allclose(got["score"], [w[0] for w in want][:200], rtol=1e-12)
    assert min(seen) < 32 <= max(seen)  # both words of the masks were used
    # a list longer than a page (4 rows here): the next page and back with its buttons
    names = [f"sample {i}" for i in range(SAMPLES)]
    for t, k in ((t, k) for t in range(TIME) for k in (1, 2, 3)):  # few units, found often
        top = np.sort(stored[0, t])
        thr = float(top[-k - 1] + top[-k]) / 2
        if len(matches(stored, selected(stored, 0, t, t, thr), 1, thr)) > 8:
            break
    put(page, "rnnscope-threshold", "value", thr)
    put(page, "rnnscope-range", "value", [t, t])
    want = matches(stored, selected(stored, 0, t, t, thr), 1, thr)
    check_listed(page, want, names)
    page.get_by_role("button", name="next").click()
    check_listed(page, want, names, first=4)
    assert f"rows 5\u20138 of {min(200, len(want))}" in said(page, "matches")
    page.keyboard.press("Enter")  # the focus stayed on "next": the keyboard turns pages too
    check_listed(page, want, names, first=8)
    page.locator(ROWS).nth(0).click()  # a row of a later page jumps too
    page.wait_for_function(f"() => ({MODEL})('rnnscope-match-box').visible")
    assert get(page, "rnnscope-match-box", "left") == want[8][2] - 0.5
    assert page.locator(ROWS).nth(0).get_attribute("class") == "on"
    page.get_by_role("button", name="previous").click()
    check_listed(page, want, names, first=4)
    title = page.evaluate(f"() => ({MODEL})('rnnscope-lines').title.text")
    assert "40 of the 50 units (blue) and at most 40 of the selected (red)" in title
    context.close()
    assert record["problems"] == []


def test_lines_thinned_beyond_the_point_budget_and_every_step_when_zoomed(
    browser,  # noqa: F811
    lstm,
    tmp_path,
    monkeypatch,
):
    """Past MAX_POINTS each line is the lowest and highest value of each bucket of steps, in
    time order (real points); zoomed in, every step of the visible range and around it."""
    from rnnscope import _explore

    model, x, gates = lstm
    monkeypatch.setattr(_explore, "MAX_POINTS", 60)
    monkeypatch.setattr(_explore, "MAX_COLUMNS", 8)
    out = rnnscope.explore(model, x, out=tmp_path / "z.html", signals=["h"], threshold=0.0)
    context, page, record = open_page(browser, out.path)
    h = gates["forward"]["h"][0]  # (time, units)
    red, blue = drawn(page, "rnnscope-lines-src"), drawn(page, "rnnscope-others-src")
    assert sorted(blue) == list(range(UNITS))
    per = 60 // (len(red) + len(blue))
    bucket = -(-2 * TIME // per)
    assert 1 < bucket < TIME
    for lines in (red, blue):
        for u, (xs, ys) in lines.items():
            want = []
            for b0 in range(0, TIME, bucket):
                part = h[b0 : b0 + bucket, u]
                want += sorted({b0 + int(np.argmin(part)), b0 + int(np.argmax(part))})
            assert xs.tolist() == want, u
            np.testing.assert_allclose(ys, h[want, u], atol=1e-6)
    title = page.evaluate(f"() => ({MODEL})('rnnscope-lines').title.text")
    assert f"highest value of every {bucket} steps" in title
    # the heatmap: 24 steps > 8 columns, so each column is the mean of 3 steps (float32 values)
    img = heatmap_image(page)
    assert img["x"] == -0.5 and img["dw"] == TIME and img["image"].shape == (UNITS, 8)
    np.testing.assert_allclose(
        img["image"], h.astype(np.float32).T.reshape(UNITS, 8, 3).mean(axis=2), atol=1e-6
    )
    unit, step, value = hover(page, 7, 4)  # hover: the step's own value, not its column's mean
    assert (unit, step) == (4, 7) and value == f"{np.float32(h[7, 4]):.6f}"
    assert abs(float(value) - img["image"][4, 2]) > 1e-3  # (the mean differs)
    page.evaluate(f"() => ({MODEL})('rnnscope-x').setv({{start: 9.5, end: 11.5}})")
    xs, ys = drawn(page, "rnnscope-others-src")[2]
    assert xs.tolist() == list(range(8, 14))  # steps 10-11 shown, as many again each side
    np.testing.assert_allclose(ys, h[8:14, 2], atol=1e-6)
    assert "highest" not in page.evaluate(f"() => ({MODEL})('rnnscope-lines').title.text")
    img = heatmap_image(page)  # zoomed in: every step of steps 8-13, at full resolution
    assert img["x"] == 7.5 and img["dw"] == 6
    np.testing.assert_allclose(img["image"], h[8:14].T, atol=1e-6)
    unit, step, value = hover(page, 11, 1)
    assert (unit, step) == (1, 11) and value == f"{np.float32(h[11, 1]):.6f}"
    context.close()
    assert record["problems"] == []


def test_first_view_is_in_the_file_before_bokeh_starts(lstm, tmp_path):
    """Sample 0 of the first signal (and of the features) comes before Bokeh's start, which no
    longer waits for the whole file; every other block comes after it."""
    model, x, _ = lstm
    out = rnnscope.explore(model, x, out=tmp_path / "f.html", signals=["h", "c"])
    text = out.path.read_text(encoding="utf-8")
    data = page_data(out.path)
    start = text.index("root.Bokeh.embed.embed_items(")
    assert 'addEventListener("DOMContentLoaded", fn)' not in text
    # the page's script once, before Bokeh's start (not a copy in each callback)
    assert text.count("function rnnscopeExplorer(") == 1
    assert text.index("function rnnscopeExplorer(") < start
    first = [data["signals"]["h|forward"]["blocks"][0], data["features"]["blocks"][0]]
    for p in [*data["signals"].values(), data["features"]]:
        for block in p["blocks"]:
            at = text.index(f'id="{block}"')
            assert (at < start) == (block in first), block


def serve_in_two_parts(text: str, cut: int):
    """A local server sending ``text[:cut]`` at once and the rest when ``go`` is set."""
    import http.server
    import threading

    body, go = text.encode("utf-8"), threading.Event()
    head = len(text[:cut].encode("utf-8"))

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:head])
            self.wfile.flush()
            go.wait(60)
            self.wfile.write(body[head:])

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, go


def test_selection_while_the_page_is_still_loading(browser, lstm, tmp_path):  # noqa: F811
    """Before the other samples have arrived, a selection on the first sample is right, the
    match list waits (and says so), other samples say they are loading; once the rest arrives,
    the matches of that selection over every sample equal numpy's."""
    model, x, gates = lstm
    out = rnnscope.explore(model, x, out=tmp_path / "l.html", signals=["h"], threshold=0.0)
    text = out.path.read_text(encoding="utf-8")
    start = text.index("root.Bokeh.embed.embed_items(")
    server, go = serve_in_two_parts(text, text.index('<script type="application/octet', start))
    url = f"http://127.0.0.1:{server.server_address[1]}/l.html"
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    requests, problems = [], []
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    page.set_default_timeout(8000)
    page.on("console", lambda m: m.type in ("error", "warning") and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        page.goto(url, wait_until="commit")
        page.wait_for_function(
            "() => window.__rnnscopeExplore && Object.values(window.__rnnscopeExplore)[0].view"
        )
        assert page.evaluate("() => document.readyState") == "loading"
        h = gates["forward"]["h"]
        np.testing.assert_allclose(shown(page)[1], h[0].T, atol=1e-6)  # the first view is there
        put(page, "rnnscope-range", "value", [15, 20])
        units, t0, t1 = check_selection(page, h, 0.0)
        assert units == [1, 3, 5]
        assert said(page, "match-title") == "searching every sample once the page has loaded"
        assert (
            page.locator(ROWS).count() == 0 and get(page, "rnnscope-matches", "data")["rank"] == []
        )
        put(page, "rnnscope-sample", "value", "3")  # not read yet: says so, draws nothing new
        assert said(page, "count") == "sample 3 is still loading"
        go.set()
        page.wait_for_function("() => document.readyState !== 'loading'")
        page.wait_for_function(f"() => ({MODEL})('rnnscope-matches').data.rank.length > 0")
        want = matches(h, units, t1 - t0 + 1, 0.0)  # the selection made on sample 0
        got = get(page, "rnnscope-matches", "data")
        rows = zip(got["sample"], got["start"], got["end"], got["on"], strict=True)
        assert list(rows) == [w[1:] for w in want]
        assert f"<b>{len(want)}</b> place" in said(page, "match-title")
        np.testing.assert_allclose(shown(page)[1], h[3].T, atol=1e-6)  # sample 3 drawn now
        assert list(get(page, "rnnscope-selected", "data")["unit"]) == units
    finally:
        go.set()
        context.close()
        server.shutdown()
    assert problems == [] and requests == [url]


# ------------------------------------------------------------------------------ without a browser
def test_tokens_labels_and_errors(lstm, tmp_path):
    model, x, _ = lstm
    tokens = [[f"w{s}_{t}</script>" for t in range(TIME)] for s in range(SAMPLES)]
    out = rnnscope.explore(model, x, tokens=tokens, out=tmp_path / "t.html")
    page = out.path.read_text()
    assert "w0_0\\u003c/script>" in page and "w0_0</script>" not in page
    with pytest.raises(InputError, match=r"tokens: sample 2 has 23 tokens; expected .* \(24\)"):
        bad = [list(r) for r in tokens]
        bad[2] = bad[2][:-1]
        rnnscope.explore(model, x, tokens=bad, out=tmp_path / "t.html")
    with pytest.raises(InputError, match=r"labels: expected one label per sample \(5\); got 2"):
        rnnscope.explore(model, x, labels=["a", "b"], out=tmp_path / "t.html")
    with pytest.raises(InputError, match=r"signals: expected some of .*; got \['q'\]") as err:
        rnnscope.explore(model, x, signals=["q"], out=tmp_path / "t.html")
    assert err.value.argument == "signals"
    with pytest.raises(InputError, match="max_mb=1e-06: even the first signal 'h'"):
        rnnscope.explore(model, x, max_mb=1e-6, out=tmp_path / "t.html")
    with pytest.warns(
        RuntimeWarning,
        match=r"keeps h \(forward\), h \(backward\), c \(forward\) at 8 bits.*"
        r"left out: c \(backward\), input",
    ):
        left = rnnscope.explore(model, x, out=tmp_path / "t.html", max_mb=0.004)
    assert left.encoding == "u8" and left.left_out[0] == ("c", "backward")
    assert sorted(page_data(left.path)["signals"]) == ["c|forward", "h|backward", "h|forward"]
    with pytest.raises(InputError, match=r"out: folder .* does not exist"):
        rnnscope.explore(model, x, out=tmp_path / "no" / "t.html")


def test_jupyter_shows_the_same_page(browser, lstm, tmp_path):  # noqa: F811
    model, x, gates = lstm
    out = rnnscope.explore(model, x, out=tmp_path / "j.html", signals=["h"])
    frame = out._repr_html_()
    srcdoc = re.search(r'srcdoc="([^"]*)"', frame).group(1)
    assert html.unescape(srcdoc) == out.path.read_text()
    assert out.signals == (("h", "forward"), ("h", "backward"))
    # the notebook's HTML output, as a page: the explorer runs inside its frame
    notebook = tmp_path / "notebook.html"
    notebook.write_text(f"<!doctype html><title>notebook</title><body>{frame}</body>")
    context, page, record = open_page(browser, notebook, ready=False)
    inner = page.frames[1]
    inner.wait_for_function("() => window.__rnnscopeExplore !== undefined")
    ys = inner.evaluate(f"() => ({MODEL})('rnnscope-others-src').data.ys[0]")
    ys = list(ys.values()) if isinstance(ys, dict) else ys
    unit0 = inner.evaluate(f"() => ({MODEL})('rnnscope-others-src').data.unit[0]")
    np.testing.assert_allclose(ys, gates["forward"]["h"][0, :, unit0], atol=1e-6)
    context.close()
    assert record["problems"] == [] and record["requests"] == [notebook.as_uri()]


def test_16_bit_page_is_within_half_a_step(lstm, tmp_path):
    model, x, gates = lstm
    out = rnnscope.explore(model, x, out=tmp_path / "w.html", max_mb=0.03)
    assert out.encoding == "u16" and out.left_out == ()
    data = page_data(out.path)
    for d in ("forward", "backward"):
        want = gates[d]["c"]
        got = unpack(data["signals"][f"c|{d}"])
        assert np.abs(got - want).max() <= (want.max() - want.min()) / 65535 / 2 + 1e-7


def page_data(path) -> dict:
    """An explorer page's JSON description, each array's base64 text put back from its block."""
    text = path.read_text(encoding="utf-8")
    found = re.search(
        r'<script type="application/json" id="(rnnscope-explore-[0-9a-f]+)">(.*?)'
        r"</script>",
        text,
        re.S,
    )
    data = json.loads(found.group(2))
    for p in [*data["signals"].values(), data["features"]]:
        if p is not None:
            assert len(p["blocks"]) == p["shape"][0]  # one block per sample
            p["raw"] = b"".join(
                base64.b64decode(
                    re.search(
                        f'<script type="application/octet-stream" id="{block}">'
                        r"([A-Za-z0-9+/=]*)</script>",
                        text,
                    ).group(1)
                )
                for block in p["blocks"]
            )
    return data


def unpack(p: dict) -> np.ndarray:
    dtype = {"f32": "<f4", "u16": "<u2", "u8": "u1"}[p["enc"]]
    stored = np.frombuffer(p["raw"], dtype=dtype).reshape(p["shape"])
    return p["lo"] + p["step"] * stored.astype(np.float64)


def test_cli_explores_a_checkpoint_with_tokens(lstm, tmp_path, capsys):
    from safetensors.torch import save_file

    from rnnscope._cli import main

    model, x, gates = lstm
    save_file(model.state_dict(), str(tmp_path / "lstm.safetensors"))
    np.save(tmp_path / "x.npy", x)
    rows = [" ".join(f"w{s}.{t}" for t in range(TIME)) for s in range(SAMPLES)]
    (tmp_path / "tokens.txt").write_text("\n".join(rows) + "\n")
    (tmp_path / "labels.txt").write_text("".join(f"label {s}\n" for s in range(SAMPLES)))
    out = tmp_path / "e.html"
    argv = [str(tmp_path / "lstm.safetensors"), "--input", str(tmp_path / "x.npy"), "-o", str(out)]
    code = main(
        [
            "explore",
            *argv,
            "--tokens",
            str(tmp_path / "tokens.txt"),
            "--labels",
            str(tmp_path / "labels.txt"),
            "--signals",
            "h,forget",
        ]
    )
    assert code == 0 and f"wrote {out}" in capsys.readouterr().out
    data = page_data(out)
    assert data["tokens"][3][5] == "w3.5" and data["labels"][2] == "2: label 2"
    assert sorted(data["signals"]) == [
        "forget|backward",
        "forget|forward",
        "h|backward",
        "h|forward",
    ]
    for d in ("forward", "backward"):  # from the file, equal to the raw-weight oracle
        np.testing.assert_allclose(unpack(data["signals"][f"h|{d}"]), gates[d]["h"], atol=1e-6)
        np.testing.assert_allclose(
            unpack(data["signals"][f"forget|{d}"]), gates[d]["forget"], atol=1e-6
        )
    rows[3] = rows[3].rsplit(" ", 1)[0]
    (tmp_path / "tokens.txt").write_text("\n".join(rows) + "\n")
    assert main(["explore", *argv, "--tokens", str(tmp_path / "tokens.txt")]) == 2
    err = capsys.readouterr().err
    assert "--tokens" in err and "line 4 has 23 token(s); expected one per timestep" in err
    assert main(["explore", *argv, "--signals", "h,nope"]) == 2
    assert "signals: expected some of input, forget, cell, output, c, h" in capsys.readouterr().err


def test_report_hook_links_the_explorer_relatively(tmp_path):
    from rnnscope._explore import explorer_section

    (tmp_path / "sub").mkdir()
    fragment = explorer_section(tmp_path / "sub" / 'a "b" <c>.html', tmp_path / "report.html")
    assert 'href="sub/a &quot;b&quot; &lt;c&gt;.html"' in fragment
    assert ">a &quot;b&quot; &lt;c&gt;.html</a>" in fragment
