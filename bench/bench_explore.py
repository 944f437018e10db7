"""The explorer page at 32 samples x 1,000 timesteps x 512 units in headless Chromium.

    python bench/bench_explore.py [--samples 32] [--time 1000] [--units 512] [--repeats 5]
                                  [--screenshot docs/images/explore.png]

An LSTM(512) with 16 inputs (random weights, torch key names, .safetensors) traces a random
input; ``rnnscope.explore`` writes the page with its default budget (``max_mb=64``). Chromium
(Debian's, driven by Playwright, network off) opens it and the page itself times, with
``performance.now()``, when the first data is painted (two animation frames after the explorer's
first callback has filled Bokeh's sources; BokehJS paints on the next frame) and how long each
update takes from setting a widget's value through BokehJS to the painted frame.
Goals: first paint <= 2 s, a selection update <= 200 ms; the file size is printed. Printed too:
the machine's load average, when the file had been read (navigation ``responseEnd``: the first
view is drawn before it) and when the match search over every sample had filled the list, where
the last time-range update's callback spent its time, and the first paint over a bare Bokeh page
opened in the same run (the ratio to report when the machine is loaded).
With ``--screenshot``, the bundled demo LSTM on its bundled inputs is drawn to that PNG instead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import rnnscope

INPUTS = 16
FRAME = "new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"

WATCH_FIRST_PAINT = """
(() => {
  function tick() {
    const all = window.__rnnscopeExplore, B = window.Bokeh;
    const ready = all ? Object.values(all).some((e) => e.view !== undefined)
      : document.title === "floor" && B !== undefined && B.index !== undefined &&
        [...B.index].length > 0;
    if (ready) {
      requestAnimationFrame(() => requestAnimationFrame(() => {
        window.__firstPaint = performance.now();
      }));
    } else {
      requestAnimationFrame(tick);
    }
  }
  requestAnimationFrame(tick);
})();
"""

UPDATE = (
    """async ([name, values]) => {
  const model = Bokeh.documents[0].get_model_by_name(name), times = [];
  for (const v of values) {
    const t = performance.now();
    model.value = v;
    await """
    + FRAME
    + """;
    times.push(performance.now() - t);
  }
  return times;
}"""
)

JUMP = (
    """async (rows) => {
  const src = Bokeh.documents[0].get_model_by_name('rnnscope-matches'), times = [];
  for (const i of rows) {
    const t = performance.now();
    src.selected.indices = [i];
    await """
    + FRAME
    + """;
    times.push(performance.now() - t);
  }
  return times;
}"""
)


def write_model(path: Path, units: int) -> None:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    s = 1.5 / np.sqrt(units)
    save_file(
        {
            "lstm.weight_ih_l0": rng.uniform(-s, s, (4 * units, INPUTS)).astype("f4"),
            "lstm.weight_hh_l0": rng.uniform(-s, s, (4 * units, units)).astype("f4"),
            "lstm.bias_ih_l0": rng.uniform(-s, s, 4 * units).astype("f4"),
            "lstm.bias_hh_l0": rng.uniform(-s, s, 4 * units).astype("f4"),
        },
        str(path),
    )


def launch(p):  # type: ignore[no-untyped-def]
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    return p.chromium.launch(
        executable_path=chromium,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
    )


def floor_page(path: Path) -> None:
    """The least Bokeh page with the explorer's parts: a plot, an image, a table, widgets."""
    from bokeh.embed import file_html
    from bokeh.layouts import column
    from bokeh.models import ColumnDataSource, DataTable, RangeSlider, Select, TableColumn
    from bokeh.plotting import figure
    from bokeh.resources import INLINE

    f = figure(width=900, height=250)
    f.line([0, 1, 2], [0, 1, 0])
    f.image([np.zeros((2, 2))], x=0, y=0, dw=1, dh=1)
    table = DataTable(source=ColumnDataSource({"a": [1]}), columns=[TableColumn(field="a")])
    layout = column(
        Select(options=["a"], value="a"), RangeSlider(start=0, end=1, value=(0, 1)), f, table
    )
    path.write_text(file_html(layout, resources=INLINE, title="floor"), encoding="utf-8")


def first_paints(browser, page_path: Path, repeats: int) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        context = browser.new_context(offline=True, viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(120_000)
        page.add_init_script(WATCH_FIRST_PAINT)
        page.goto(page_path.as_uri(), wait_until="load")
        page.wait_for_function("() => window.__firstPaint !== undefined")
        times.append(page.evaluate("() => window.__firstPaint"))
        context.close()
    return times


def measure(page_path: Path, repeats: int, time_steps: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {
        "first paint": [],
        "match list of every sample filled": [],
        "file read (navigation responseEnd)": [],
    }
    with sync_playwright() as p:
        browser = launch(p)
        floor = page_path.with_name("floor.html")
        floor_page(floor)
        out["first paint, bare Bokeh page (floor)"] = []
        for i in range(repeats):  # the floor and the page in turn, under the same load
            out["first paint, bare Bokeh page (floor)"] += first_paints(browser, floor, 1)
            context = browser.new_context(offline=True, viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(120_000)
            problems: list[str] = []
            page.on("pageerror", lambda e, problems=problems: problems.append(str(e)))
            page.add_init_script(WATCH_FIRST_PAINT)
            page.goto(page_path.as_uri(), wait_until="load")
            page.wait_for_function("() => window.__firstPaint !== undefined")
            out["first paint"].append(page.evaluate("() => window.__firstPaint"))
            page.wait_for_function(
                "() => Object.values(window.__rnnscopeExplore)[0].matched !== undefined"
            )
            out["match list of every sample filled"].append(
                page.evaluate("() => Object.values(window.__rnnscopeExplore)[0].matched")
            )
            out["file read (navigation responseEnd)"].append(
                page.evaluate("() => performance.getEntriesByType('navigation')[0].responseEnd")
            )
            if i == 0:  # the updates, on the first page load
                mid = time_steps // 2
                ranges = [[mid + k, mid + k + 20] for k in range(0, 10 * repeats, 10)]
                out["selection (time range)"] = page.evaluate(UPDATE, ["rnnscope-range", ranges])
                parts = page.evaluate("() => Object.values(window.__rnnscopeExplore)[0].last")
                print(
                    "last time-range update, inside the callback:",
                    ", ".join(f"{k} {v:.0f} ms" for k, v in parts["parts"].items()),
                    f"(all {parts['ms']:.0f} ms)",
                )
                thresholds = [0.01 * (k + 1) for k in range(repeats)]
                out["selection (threshold)"] = page.evaluate(
                    UPDATE, ["rnnscope-threshold", thresholds]
                )
                parts = page.evaluate("() => Object.values(window.__rnnscopeExplore)[0].last")
                print(
                    "last threshold update, inside the callback:",
                    ", ".join(f"{k} {v:.0f} ms" for k, v in parts["parts"].items()),
                    f"(all {parts['ms']:.0f} ms)",
                )
                samples = [str(k % 7 + 1) for k in range(repeats)]
                out["switch sample"] = page.evaluate(UPDATE, ["rnnscope-sample", samples])
                # back to a selection with matches (not timed), then jump to its rows
                page.evaluate(UPDATE, ["rnnscope-threshold", [0.0]])
                page.evaluate(UPDATE, ["rnnscope-range", [[mid, mid + 20]]])
                listed = page.evaluate(
                    "() => Bokeh.documents[0].get_model_by_name('rnnscope-matches').data.rank"
                    ".length"
                )
                if listed < repeats + 1:
                    raise RuntimeError(f"only {listed} matches listed; cannot time the jumps")
                out["jump to a match"] = page.evaluate(JUMP, list(range(1, repeats + 1)))
                out["switch signal (first use decodes it)"] = page.evaluate(
                    UPDATE, ["rnnscope-signal", ["c", "h"] * ((repeats + 1) // 2)]
                )
                out["two animation frames (floor)"] = page.evaluate(
                    f"async (n) => {{ const ts = []; for (let i = 0; i < n; i++) "
                    f"{{ const t = performance.now(); await {FRAME}; "
                    f"ts.push(performance.now() - t); }} return ts; }}",
                    repeats,
                )
                out["matches listed"] = [
                    float(
                        page.evaluate("() => Object.values(window.__rnnscopeExplore)[0].matchCount")
                    )
                ]
            if problems:
                raise RuntimeError(f"the page reported errors: {problems}")
            context.close()
        browser.close()
    return out


def screenshot(target: Path) -> None:
    """The bundled demo LSTM on its bundled inputs, a selection made, drawn to ``target``."""
    from playwright.sync_api import sync_playwright

    x = np.load(rnnscope.demo_path("inputs"))["lstm"]
    with tempfile.TemporaryDirectory() as tmp:
        page_path = Path(tmp) / "demo.html"
        rnnscope.explore(rnnscope.demo_path("lstm"), x, out=page_path, threshold=0.2)
        with sync_playwright() as p:
            browser = launch(p)
            context = browser.new_context(offline=True, viewport={"width": 1360, "height": 900})
            page = context.new_page()
            page.goto(page_path.as_uri(), wait_until="load")
            page.wait_for_function("() => window.__rnnscopeExplore !== undefined")
            page.get_by_label("signal").select_option("c")
            doc = "Bokeh.documents[0].get_model_by_name"
            page.evaluate(
                f"async () => {{ {doc}('rnnscope-range').value = [3, 8]; await {FRAME}; }}"
            )
            # the second best match: the view moves there
            page.locator('[data-rnnscope="matches"] tr[data-row]').nth(1).click()
            page.evaluate(f"() => {FRAME}")
            page.screenshot(path=str(target), full_page=True)
            browser.close()
    print(f"wrote {target}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--time", type=int, default=1000)
    ap.add_argument("--units", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--screenshot", type=Path)
    args = ap.parse_args()
    if args.screenshot:
        screenshot(args.screenshot)
        return
    load = os.getloadavg()
    print(f"load average (1, 5, 15 min) at the start: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_model(folder / "lstm.safetensors", args.units)
        x = np.random.default_rng(1).normal(size=(args.samples, args.time, INPUTS))
        t0 = time.perf_counter()
        trace = rnnscope.trace(folder / "lstm.safetensors", x.astype("f4"))
        t1 = time.perf_counter()
        ex = rnnscope.explore(trace, x, out=folder / "big.html", threshold=0.0)
        t2 = time.perf_counter()
        size = ex.path.stat().st_size
        print(
            f"{args.samples} x {args.time} x {args.units}: trace {t1 - t0:.1f} s, page "
            f"{t2 - t1:.1f} s, {size / 1e6:.1f} MB ({ex.encoding}; signals "
            f"{', '.join(n for n, _ in ex.signals)}; left out {len(ex.left_out)})"
        )
        times = measure(ex.path, args.repeats, args.time)
        load = os.getloadavg()
    print(f"load average (1, 5, 15 min) at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    goals = {"first paint": 2000.0, "selection (time range)": 200.0, "selection (threshold)": 200.0}
    for what, values in times.items():
        if what == "matches listed":
            print(f"{what:40s} {values[0]:.0f}")
            continue
        if not values:
            continue
        goal = goals.get(what)
        note = (
            ""
            if goal is None
            else f"  goal <= {goal:.0f} ms: {'met' if max(values) <= goal else 'NOT met'}"
        )
        print(
            f"{what:40s} median {statistics.median(values):7.0f} ms  "
            f"(min {min(values):.0f}, max {max(values):.0f}){note}"
        )
    floor = statistics.median(times["first paint, bare Bokeh page (floor)"])
    print(f"first paint / bare Bokeh page: {statistics.median(times['first paint']) / floor:.2f}x")


if __name__ == "__main__":
    main()
