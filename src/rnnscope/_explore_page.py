"""The explorer's Bokeh page: widgets, three linked plots, the match list and their callbacks.

Every callback is one ``CustomJS`` calling ``templates/explore.js`` (inline in the page once)
with an action name; the data lives in inline blocks the script decodes on first use. Bokeh's
JavaScript is inlined. The texts that change with each selection and the match list are plain
HTML boxes of the page's template, filled by the same script (see ``build_page``).
"""

from __future__ import annotations

import json
import re
import uuid
from importlib import resources
from typing import Any

__all__ = ["build_page"]

_GATE_PALETTE = "viridis"
_SIGNED_PALETTE = "rdbu"


def _palettes() -> dict[str, list[str]]:
    from bokeh.palettes import RdBu11, Viridis256

    return {_GATE_PALETTE: list(Viridis256), _SIGNED_PALETTE: list(reversed(RdBu11))}


def _view_scale(meta: dict[str, Any]) -> None:
    """Each signal's colour scale: 0 to 1 for values inside it (gates), else symmetric around 0."""
    for p in list(meta["signals"].values()) + ([meta["features"]] if meta["features"] else []):
        lo, hi = p["min"], p["max"]
        if lo >= 0.0 and hi <= 1.0:
            p["lo_view"], p["hi_view"], p["palette"] = 0.0, 1.0, _GATE_PALETTE
        else:
            top = max(abs(lo), abs(hi)) or 1.0
            p["lo_view"], p["hi_view"], p["palette"] = -top, top, _SIGNED_PALETTE
    meta["palettes"] = _palettes()


def _data_scripts(uid: str, meta: dict[str, Any]) -> tuple[str, str]:
    """The data blocks: the JSON description and what the first view needs; then the rest.

    Each sample of each array is its own ``<script type="application/octet-stream">`` (not run,
    not parsed), read by id when the page first needs it. The first part (the description,
    sample 0 of the first signal and of the features) goes before Bokeh's start, the rest after
    it, so the first view is drawn while the browser still reads the other samples.
    """
    meta = dict(meta, signals={k: dict(v) for k, v in meta["signals"].items()})
    arrays = list(meta["signals"].values()) + ([meta["features"]] if meta["features"] else [])
    if meta["features"]:
        meta["features"] = arrays[-1] = dict(meta["features"])
    first_signal = arrays[0]
    front: list[str] = []
    back: list[str] = []
    for i, p in enumerate(arrays):
        p["blocks"] = [f"{uid}-{i}-{s}" for s in range(len(p["b64"]))]
        for s, (block, text) in enumerate(zip(p["blocks"], p.pop("b64"), strict=True)):
            first = s == 0 and (p is first_signal or p is meta["features"])
            (front if first else back).append(
                f'<script type="application/octet-stream" id="{block}">{text}</script>'
            )
    text = json.dumps(meta, separators=(",", ":"), allow_nan=False)
    text = text.replace("<", "\\u003c")  # nothing in the block can end or open a tag
    head = f'<script type="application/json" id="{uid}">{text}</script>'
    return "\n".join([head, *front]), "\n".join(back)


# Bokeh's page starts its document on DOMContentLoaded, i.e. once the whole file is parsed; the
# explorer's start needs only the blocks above it, so it starts at once (see ``_data_scripts``).
_ON_LOAD = re.compile(
    r'if \(document\.readyState != "loading"\) fn\(\);\s*'
    r'else document\.addEventListener\("DOMContentLoaded", fn\);'
)


def _callback(models: dict[str, Any], action: str) -> Any:
    """A callback that calls the page's script (in the page once, see ``_script``)."""
    from bokeh.models import CustomJS

    names = ", ".join(models)
    return CustomJS(
        args=models, code=f"rnnscopeExplore({{{names}}}, cb_obj, {json.dumps(action)});"
    )


def _script() -> str:
    """``templates/explore.js`` as one inline script, run before Bokeh starts the document.

    Every callback calls its global ``rnnscopeExplore``: the browser parses and compiles the
    script once, where a copy in each ``CustomJS`` was parsed once per callback (nine copies).
    """
    code = resources.files("rnnscope").joinpath("templates/explore.js").read_text("utf-8")
    if "</script" in code.lower():
        raise RuntimeError("templates/explore.js must not contain '</script' (it is inlined)")
    return f"<script>\n{code}</script>"


def _units(meta: dict[str, Any]) -> int:
    """The size of the first signal (units)."""
    return int(next(iter(meta["signals"].values()))["shape"][2])


def _placeholder() -> dict[str, Any]:
    """One 1x1 float32 image: the page takes Bokeh's 2D array type from it, then replaces it."""
    import numpy as np

    return {"image": [np.zeros((1, 1), np.float32)], "x": [0], "y": [0], "dw": [1], "dh": [1]}


def _plots(meta: dict[str, Any], width: int, uid: str) -> dict[str, Any]:
    from bokeh.models import (
        BasicTicker,
        BoxAnnotation,
        BoxSelectTool,
        ColumnDataSource,
        CustomJSHover,
        HoverTool,
        LinearColorMapper,
        Range1d,
        Span,
    )
    from bokeh.plotting import figure

    time = meta["time"]
    x = Range1d(-0.5, time - 0.5, bounds=(-0.5, time - 0.5), name="rnnscope-x")
    common = {"width": width, "x_range": x, "tools": "xpan,xwheel_zoom,reset,save"}
    lines = figure(height=250, y_range=Range1d(0, 1), title="units over time", **common)
    lines_src = ColumnDataSource({"xs": [], "ys": [], "unit": []}, name="rnnscope-lines-src")
    others_src = ColumnDataSource({"xs": [], "ys": [], "unit": []}, name="rnnscope-others-src")
    band_src = ColumnDataSource({"x": [], "lo": [], "hi": []}, name="rnnscope-band-src")
    lines.varea("x", "lo", "hi", source=band_src, fill_color="#1f77b4", fill_alpha=0.12)
    dim = 0.35 if _units(meta) <= 64 else 0.25
    o = lines.multi_line("xs", "ys", source=others_src, line_color="#1f77b4", line_alpha=dim)
    # the selected units on the overlay layer: a new selection repaints them, not the rest
    r = lines.multi_line(
        "xs",
        "ys",
        source=lines_src,
        line_color="#d62728",
        line_alpha=0.95,
        line_width=1.5,
        level="overlay",
    )
    brush = BoxSelectTool(dimensions="width", name="rnnscope-brush")
    lines.add_tools(
        brush, HoverTool(renderers=[o, r], tooltips=[("unit", "@unit"), ("t", "$x{0}")])
    )
    lines.toolbar.active_drag = brush
    lines.name = "rnnscope-lines"
    span = Span(
        location=0.5, dimension="width", line_color="#d62728", line_dash="dashed", level="overlay"
    )
    box = BoxAnnotation(fill_color="#ff7f0e", fill_alpha=0.15, name="rnnscope-box", level="overlay")
    match_box = BoxAnnotation(
        fill_color="#2ca02c", fill_alpha=0.2, name="rnnscope-match-box", level="overlay"
    )
    for p in (span, box, match_box):
        lines.add_layout(p)

    cmap = LinearColorMapper(
        palette=_palettes()[_GATE_PALETTE], low=0, high=1, name="rnnscope-cmap"
    )
    heatmap = figure(height=250, y_range=Range1d(-0.5, 0.5), title="units x time", **common)
    heatmap.name = "rnnscope-heatmap"
    img_src = ColumnDataSource(_placeholder(), name="rnnscope-img-src")
    img = heatmap.image("image", x="x", y="y", dw="dw", dh="dh", source=img_src, color_mapper=cmap)
    # the value under the mouse from the page's full-resolution data: a column of the image
    # may be the mean of several steps (see ``templates/explore.js``, ``heat``)
    exact = CustomJSHover(
        args={"uid": uid},
        code="const all = window.__rnnscopeExplore, E = all && all[uid];\n"
        "return E ? E.valueAt(special_vars.x, special_vars.y) : '';",
    )
    heatmap.add_tools(
        HoverTool(
            renderers=[img],
            tooltips=[("unit", "$y{0}"), ("t", "$x{0}"), ("value", "@image{custom}")],
            formatters={"@image": exact},
        )
    )
    sel_src = ColumnDataSource({"unit": [], "x": [], "w": []}, name="rnnscope-selected")
    heatmap.rect(
        "x",
        "unit",
        "w",
        1,
        source=sel_src,
        fill_alpha=0,
        line_color="#d62728",
        line_width=1.5,
        level="overlay",
    )
    heatmap.yaxis.axis_label = "unit"

    tokens = meta["tokens"] is not None
    inp = figure(
        height=90 if tokens else 150, title="input tokens" if tokens else "input features", **common
    )
    inp.name = "rnnscope-input"
    if tokens:
        input_src = ColumnDataSource({"x": [], "text": []}, name="rnnscope-input-src")
        inp.text(
            "x",
            0,
            text="text",
            source=input_src,
            text_align="center",
            text_baseline="middle",
            angle=1.5708 if time > 40 else 0,
            text_font_size="11px",
        )
        inp.y_range = Range1d(-1, 1)
        inp.yaxis.visible = False
    else:
        input_src = ColumnDataSource(_placeholder(), name="rnnscope-input-src")
        features = meta["features"]
        fmap = LinearColorMapper(
            palette=meta["palettes"][features["palette"]],
            low=features["lo_view"],
            high=features["hi_view"],
        )
        im = inp.image("image", x="x", y="y", dw="dw", dh="dh", source=input_src, color_mapper=fmap)
        inp.add_tools(
            HoverTool(
                renderers=[im],
                tooltips=[("feature", "$y{0}"), ("t", "$x{0}"), ("value", "@image{0.000000}")],
            )
        )
        inp.y_range = Range1d(-0.5, features["shape"][2] - 0.5)
        inp.yaxis.axis_label = "feature"
    inp.xaxis.axis_label = "timestep"
    for fig in (lines, heatmap, inp):  # timesteps, units and features are whole numbers
        fig.xaxis.ticker = BasicTicker(min_interval=1)
    for fig in (heatmap, inp):
        fig.yaxis.ticker = BasicTicker(min_interval=1)
    return {
        "x": x,
        "lines": lines,
        "band_src": band_src,
        "lines_src": lines_src,
        "others_src": others_src,
        "span": span,
        "box": box,
        "match_box": match_box,
        "cmap": cmap,
        "heatmap": heatmap,
        "img_src": img_src,
        "sel_src": sel_src,
        "input": inp,
        "input_src": input_src,
    }


def build_page(
    meta: dict[str, Any], keys: list[tuple[str, str]], threshold: float, title: str
) -> str:
    """The explorer's HTML: Bokeh's inline resources, the layout and the data block."""
    from bokeh.document import Document
    from bokeh.embed import file_html
    from bokeh.layouts import column, row
    from bokeh.models import (
        ColumnDataSource,
        Div,
        RangeSlider,
        Select,
        Spinner,
    )
    from bokeh.resources import INLINE

    _view_scale(meta)
    uid = "rnnscope-explore-" + uuid.uuid4().hex[:12]
    time, width = meta["time"], 900
    names = list(dict.fromkeys(n for n, _ in keys))
    directions = list(dict.fromkeys(d for _, d in keys))
    start = min(time - 1, time // 2)
    widgets = {
        "sample": Select(
            title="sample",
            name="rnnscope-sample",
            value="0",
            options=[(str(i), v) for i, v in enumerate(meta["labels"])],
        ),
        "direction": Select(
            title="direction", name="rnnscope-direction", value=directions[0], options=directions
        ),
        "signal": Select(title="signal", name="rnnscope-signal", value=names[0], options=names),
        "threshold": Spinner(
            title="threshold", name="rnnscope-threshold", value=threshold, step=0.05, width=110
        ),
        "trange": RangeSlider(
            title="time range",
            name="rnnscope-range",
            start=0,
            end=max(1, time - 1),
            step=1,
            width=width,
            value=(start, min(time - 1, start + max(1, time // 20))),
        ),
    }
    match_src = ColumnDataSource(
        {k: [] for k in ("rank", "sample", "label", "start", "end", "length", "on", "score")},
        name="rnnscope-matches",
    )
    plots = _plots(meta, width, uid)
    models: dict[str, Any] = {
        **plots,
        **widgets,
        "match_src": match_src,
        "uid": uid,
    }
    w, p = widgets, plots
    for name in ("direction", "signal", "threshold", "trange"):
        w[name].js_on_change("value", _callback(models, "select"))
    w["sample"].js_on_change("value", _callback(models, "sample"))
    match_src.selected.js_on_change("indices", _callback(models, "jump"))
    p["lines"].js_on_event("selectiongeometry", _callback(models, "brush"))
    zoom = _callback(models, "zoom")
    p["x"].js_on_change("start", zoom)
    p["x"].js_on_change("end", zoom)
    header = Div(
        text=f"<h2 style='margin:4px 0'>{_esc(title)}</h2><p style='margin:0'>layer "
        f"<b>{_esc(meta['layer'])}</b> ({_esc(meta['cell'])}), {meta['samples']} samples x "
        f"{time} timesteps. Drag on the unit lines to brush a time range.</p>",
        width=width + 440,
    )
    # Two roots, not one layout: a root's change makes BokehJS lay out and repaint that whole
    # root. What changes with every selection besides the plots (the count, the match list and
    # its title) is not a Bokeh model at all but boxes of fixed size in the page's template
    # (``_TEMPLATE``), filled by the page's script: a new text in a Bokeh ``Div`` made BokehJS
    # measure the page again (about 60% of a time-range update's script time at 32 x 1,000 x
    # 512), and a ``DataTable`` cost 26 ms per new list and 0.3 MB of script to parse before the
    # first paint. ``match_src`` keeps the listed matches as data; a click on a row selects it.
    roots = {
        "controls": column(
            header,
            row(w["sample"], w["direction"], w["signal"], w["threshold"]),
            w["trange"],
            name="rnnscope-root-controls",
        ),
        "plots": column(p["lines"], p["heatmap"], p["input"], name="rnnscope-root-plots"),
    }
    doc = Document()
    for root in roots.values():
        doc.add_root(root)
    doc.js_on_event("document_ready", _callback(models, "init"))
    doc.title = title
    page = file_html(
        doc,
        resources=INLINE,
        title=title,
        template=_template(),
        template_variables={"uid": uid, "width": width, "table_width": 420},
    )
    head, sep, body = page.rpartition("</head>")  # Bokeh's own script holds "<body>" too
    if not sep or "<body>" not in body or not body.rstrip().endswith("</html>"):
        raise RuntimeError("bokeh's page template changed: no </head> followed by <body>")
    front, back = _data_scripts(uid, meta)
    front = _script() + "\n" + front
    # without the pattern (another Bokeh) the page still works, starting once fully parsed
    body = _ON_LOAD.sub("fn();", body, count=1).replace("<body>", "<body>\n" + front, 1)
    end = body.rindex("</body>")
    return head + sep + body[:end] + back + "\n" + body[end:]


_TEMPLATE = """{% extends base %}
{% block preamble %}<style>
.rnnscope-text{height:60px;overflow:auto;contain:strict;box-sizing:border-box;padding:4px 6px;
font:13px/1.35 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
.rnnscope-list{height:560px;overflow:auto;contain:strict;border:1px solid #ccc;
font:12px/1.3 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
.rnnscope-list table{border-collapse:collapse;table-layout:fixed;width:100%}
.rnnscope-list th{position:sticky;top:0;background:#f3f3f3;text-align:left;font-weight:600}
.rnnscope-list th,.rnnscope-list td{padding:2px 5px;white-space:nowrap;overflow:hidden;
text-overflow:ellipsis;border-bottom:1px solid #eee}
.rnnscope-list td.n{text-align:right}
.rnnscope-list tr[data-row]{cursor:pointer}
.rnnscope-list tr[data-row]:hover{background:#eef3fb}
.rnnscope-list tr.on,.rnnscope-list tr.on:hover{background:#cfe8cf}
.rnnscope-list .pager{padding:6px 5px;color:#444}
.rnnscope-list button{font:inherit;padding:1px 8px}
</style>{% endblock %}
{% block contents %}{% set roots = docs[0].roots %}
{{ embed(roots["rnnscope-root-controls"]) }}
<div style="display:flex;align-items:flex-start;gap:20px">
<div><div class="rnnscope-text" id="{{ uid }}-count" data-rnnscope="count"
 style="width:{{ width }}px"></div>{{ embed(roots["rnnscope-root-plots"]) }}</div>
<div><div class="rnnscope-text" id="{{ uid }}-match-title" data-rnnscope="match-title"
 style="width:{{ table_width }}px"></div><div class="rnnscope-list" id="{{ uid }}-matches"
 data-rnnscope="matches" style="width:{{ table_width }}px"></div></div>
</div>
{% endblock %}"""


def _template() -> Any:
    from jinja2 import Template

    return Template(_TEMPLATE)


def _esc(text: object) -> str:
    import html

    return html.escape(str(text), quote=True)
