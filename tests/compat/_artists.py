"""What a figure draws, as plain data, so two figures can be compared artist by artist."""

from __future__ import annotations

from typing import Any

import numpy as np


def _arr(a: Any) -> np.ndarray:
    return np.asarray(np.ma.filled(np.ma.asarray(a, dtype=float), np.nan))


def axes_facts(ax: Any, lines: bool = True) -> dict[str, Any]:
    """Everything an axes draws: bars, images, lines, scatter points, limits and texts."""
    facts: dict[str, Any] = {
        "label": ax.get_label(),
        "xlim": tuple(float(v) for v in ax.get_xlim()),
        "ylim": tuple(float(v) for v in ax.get_ylim()),
        "title": ax.get_title(),
        "xlabel": ax.get_xlabel(),
        "ylabel": ax.get_ylabel(),
        "frame_on": ax.get_frame_on(),
        "n_xticks": len(ax.get_xticks()),
        "n_yticks": len(ax.get_yticks()),
        "texts": [
            (
                t.get_text(),
                tuple(np.round(t.xy, 6)) if hasattr(t, "xy") else None,
                t.get_color(),
                t.get_fontsize(),
            )
            for t in ax.texts
        ],
        "spines": [(s.get_linewidth(), s.get_edgecolor()) for s in ax.spines.values()],
        "bars": bars(ax),
        "images": [
            (
                _arr(im.get_array()),
                im.get_cmap().name,
                tuple(im.get_clim()),
                im.get_interpolation(),
                ax.get_aspect(),
            )
            for im in ax.images
        ],
        "scatter": [
            (
                _arr(c.get_offsets()),
                _arr(c.get_facecolors()),
                _arr(c.get_sizes()),
                _arr(c.get_linewidths()),
            )
            for c in ax.collections
            if hasattr(c, "get_sizes") and c.get_gid() != BARS
        ],
        "collections": [type(c).__name__ for c in ax.collections if c.get_gid() != BARS],
    }
    if lines:
        facts["lines"] = line_facts(ax)
    return facts


BARS = "histogram-bars"  # the gid of the compat layer's one-artist histogram


def bars(ax: Any) -> list[tuple[float, float, float, tuple[float, ...]]]:
    """Every bar an axes draws as ``(left, right, height, facecolor)``, whether drawn as one
    Rectangle patch per bar (``ax.hist``, See RNN) or as the rectangles of one PolyCollection
    with gid ``'histogram-bars'`` (the compat layer); read from the artists' own geometry."""
    out = [
        (
            float(p.get_x()),
            float(p.get_bbox().x1),
            float(p.get_height()),
            tuple(np.round(p.get_facecolor(), 6)),
        )
        for p in ax.patches
    ]
    for c in ax.collections:
        if c.get_gid() != BARS:
            continue
        paths = c.get_paths()
        faces = np.broadcast_to(c.get_facecolor(), (len(paths), 4))
        for path, face in zip(paths, faces, strict=True):
            v = path.vertices  # (left, 0), (left, h), (right, h), (right, 0), closing vertex
            assert v[0, 1] == v[3, 1] == 0 and v[1, 1] == v[2, 1], "not an upright bar"
            out.append((float(v[0, 0]), float(v[2, 0]), float(v[1, 1]), tuple(np.round(face, 6))))
    return out


def line_facts(ax: Any) -> list[Any]:
    return [
        (_arr(ln.get_xdata()), _arr(ln.get_ydata()), str(ln.get_color()), ln.get_linewidth())
        for ln in ax.lines
    ]


def figure_facts(fig: Any, lines: bool = True) -> dict[str, Any]:
    sup = fig._suptitle
    return {
        "size": tuple(np.round(fig.get_size_inches(), 6)),
        "dpi": fig.dpi,
        "suptitle": None if sup is None else (sup.get_text(), sup.get_fontsize()),
        "n_axes": len(fig.axes),
        "axes": [axes_facts(ax, lines) for ax in fig.axes],
    }


def assert_same(a: Any, b: Any, path: str = "") -> None:
    """Deep equality with NaN == NaN and exact array values; the path names the difference."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{path}: keys {list(a)} != {list(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{path}: {a!r} != {b!r}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        x, y = np.asarray(a), np.asarray(b)
        assert x.shape == y.shape, f"{path}: shape {x.shape} != {y.shape}"
        if x.dtype.kind in "fc" or y.dtype.kind in "fc":
            assert np.array_equal(x, y, equal_nan=True), f"{path}: arrays differ"
        else:
            assert np.array_equal(x, y), f"{path}: arrays differ"
    elif isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def assert_density_histogram(ax: Any, values: np.ndarray) -> None:
    """The bars drawn on ``ax`` are numpy's density histogram of ``values`` over equal bins
    from their minimum to their maximum (what ``ax.hist(values, bins=n, density=True)`` draws),
    each bar as wide as its bin."""
    drawn = bars(ax)
    assert drawn, "no bars drawn"
    values = np.ravel(values)
    want_edges = np.histogram_bin_edges(values, bins=len(drawn))
    want, _ = np.histogram(values, bins=want_edges, density=True)
    np.testing.assert_allclose([b[0] for b in drawn], want_edges[:-1], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose([b[1] for b in drawn], want_edges[1:], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose([b[2] for b in drawn], want, rtol=1e-5)
