"""The report's run figures hold the numbers they claim: each heatmap cell is log2 of a gate
block's L2 norm (or the recurrent kernel's largest singular value) over its value at the first
checkpoint, each line is a gate block's L2 norm. The expected numbers come from the raw torch
tensors, sliced by torch's documented gate order (input, forget, cell, output rows) in the test."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope

pytest.importorskip("matplotlib")
safetensors_np = pytest.importorskip("safetensors.numpy")

from rnnscope.plot._runs import run_heatmap, run_lines  # noqa: E402

H, F, N = 3, 2, 5  # units, input features, checkpoints
GATES = ("input", "forget", "cell", "output")
SCALE = {0: 1.0, 1: 1.5, 2: 0.5, 3: 2.0, 4: 1.25}  # per checkpoint, on one gate of each kernel


def _run(folder):
    rng = np.random.default_rng(3)
    base = {
        "rnn.weight_ih_l0": rng.normal(0, 0.5, (4 * H, F)),
        "rnn.weight_hh_l0": rng.normal(0, 0.5, (4 * H, H)),
        "rnn.bias_ih_l0": rng.normal(0, 0.5, 4 * H),
        "rnn.bias_hh_l0": rng.normal(0, 0.5, 4 * H),
    }
    folder.mkdir()
    raw = []
    for i in range(N):
        t = {k: v.astype("f4") for k, v in base.items()}
        t["rnn.weight_ih_l0"][H : 2 * H] *= SCALE[i]  # forget rows of the input kernel
        t["rnn.weight_hh_l0"][3 * H :] *= 1 + 0.5 * i  # output rows of the recurrent kernel
        safetensors_np.save_file(t, str(folder / f"step{i * 10:03d}.safetensors"))
        raw.append(t)
    return raw


def _gate_l2(t, name, g):
    return float(np.linalg.norm(t[name][g * H : (g + 1) * H].astype(np.float64)))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runfig") / "ck"
    raw = _run(folder)
    table = rnnscope.stats(folder)
    names = [f"step{i * 10:03d}.safetensors" for i in range(N)]
    return raw, table, names


def test_heatmap_cells_are_log2_of_each_block_over_its_first_value(run):
    raw, table, names = run
    fig = run_heatmap(table, names, [float(i * 10) for i in range(N)])
    l2_ax, sigma_ax = fig.axes[0], fig.axes[1]  # the two panels (colour bars come after)
    rows = [t.get_text() for t in l2_ax.get_yticklabels()]
    grid = np.ma.getdata(l2_ax.collections[0].get_array()).reshape(len(rows), N)
    for part, key in (("kernel", "rnn.weight_ih_l0"), ("rec. kernel", "rnn.weight_hh_l0")):
        for g, gate in enumerate(GATES):
            r = rows.index(f"rnn.l0 / {part} / {gate}")
            want = [np.log2(_gate_l2(t, key, g) / _gate_l2(raw[0], key, g)) for t in raw]
            np.testing.assert_allclose(grid[r], want, atol=1e-5, err_msg=(part, gate))
    # the forget rows of the input kernel follow SCALE; the others do not move
    r = rows.index("rnn.l0 / kernel / forget")
    np.testing.assert_allclose(grid[r], np.log2([SCALE[i] for i in range(N)]), atol=1e-5)
    # sigma panel: the recurrent kernel's largest singular value per gate block
    sgrid = np.ma.getdata(sigma_ax.collections[0].get_array()).reshape(len(rows), N)
    r = rows.index("rnn.l0 / rec. kernel / output")
    sv = [np.linalg.svd(t["rnn.weight_hh_l0"][3 * H :].astype(np.float64), compute_uv=False)[0]
          for t in raw]  # fmt: skip
    np.testing.assert_allclose(sgrid[r], np.log2(np.array(sv) / sv[0]), atol=1e-5)


def test_lines_are_each_gate_blocks_l2_norm_and_the_kernels_sigma(run):
    raw, table, names = run
    steps = [float(i * 10) for i in range(N)]
    layer_fig, sigma_fig = run_lines(table, names, steps)
    panels = {ax.get_title(): ax for ax in layer_fig.axes}
    for title, key in (("kernel", "rnn.weight_ih_l0"), ("recurrent kernel", "rnn.weight_hh_l0")):
        lines = {ln.get_label(): ln for ln in panels[title].get_lines()}
        for g, gate in enumerate(GATES):
            x, y = lines[gate].get_data()
            np.testing.assert_allclose(x, steps)
            np.testing.assert_allclose(y, [_gate_l2(t, key, g) for t in raw], rtol=1e-5)
    (line,) = [ln for ln in sigma_fig.axes[0].get_lines() if ln.get_label() == "rnn.l0"]
    want = [np.linalg.svd(t["rnn.weight_hh_l0"].astype(np.float64), compute_uv=False)[0]
            for t in raw]  # fmt: skip
    np.testing.assert_allclose(line.get_data()[1], want, rtol=1e-5)


def test_ridgeline_bands_are_each_checkpoints_weight_histogram(run, tmp_path):
    """The report keeps each recurrent layer's weights (all of them, when fewer than the sample
    size) and draws one band per checkpoint: the histogram of those weights over a shared range,
    scaled to its own peak."""
    from rnnscope._report import model_section
    from rnnscope.plot._runs import ridgeline

    raw, _, names = run
    folder = tmp_path / "one"
    folder.mkdir()
    samples = []
    for i in (0, 3):
        path = folder / names[i]
        safetensors_np.save_file(raw[i], str(path))
        got = model_section(str(path), names[i], 1e-3, False, 20_000)["samples"]["rnn.l0"]
        # every weight and bias of the layer, as stored (order aside)
        want = np.concatenate([a.ravel() for a in raw[i].values()])
        np.testing.assert_array_equal(np.sort(got), np.sort(want))
        samples.append((names[i], got))
    fig = ridgeline(samples, "rnn.l0", bins=10)
    bands = fig.axes[0].collections
    assert len(bands) == 2
    lo, hi = np.percentile(np.concatenate([s for _, s in samples]), [0.1, 99.9])
    edges = np.linspace(lo, hi, 11)
    for k, (_, a) in enumerate(samples):
        counts, _ = np.histogram(np.clip(a, lo, hi), edges)
        top = bands[k].get_paths()[0].vertices[:, 1].max()
        assert top == pytest.approx(-k + 1.6)  # each band scaled to its own peak
        v = bands[k].get_paths()[0].vertices
        for j, c in enumerate(counts):  # a step starting at bin j's left edge, at its height
            at = v[np.isclose(v[:, 0], edges[j]), 1]
            assert np.isclose(at, -k + c / counts.max() * 1.6).any(), (k, j, at)


def test_variants_are_points_not_a_line_through_a_run(run, tmp_path):
    """Variants (seeds, widths) have no order: the same values, drawn as points with no line
    joining them, and titled as variants; a folder read as variants gets these in the report."""
    raw, table, names = run
    layer_fig, sigma_fig = run_lines(table, names, None, ordered=False)
    assert (
        "variant" in layer_fig.get_suptitle() and "through the run" not in layer_fig.get_suptitle()
    )
    panels = {ax.get_title(): ax for ax in layer_fig.axes}
    for g, gate in enumerate(GATES):
        (ln,) = [x for x in panels["kernel"].get_lines() if x.get_label() == gate]
        assert ln.get_linestyle() == "None" and ln.get_marker() == "o"
        want = [_gate_l2(t, "rnn.weight_ih_l0", g) for t in raw]
        np.testing.assert_allclose(ln.get_data()[1], want, rtol=1e-5)
    data = [x for x in sigma_fig.axes[0].get_lines() if x.get_label() == "rnn.l0"]
    assert data and all(x.get_linestyle() == "None" for x in data)
    heat = run_heatmap(table, names, None, ordered=False)
    assert "each variant against the first" in heat.get_suptitle()

    variants = tmp_path / "variants"
    variants.mkdir()
    for i, name in enumerate(("seed_a", "wide", "seed_b")):  # no numbers: read as variants
        safetensors_np.save_file(raw[i], str(variants / f"{name}.safetensors"))
    html = rnnscope.report(variants, out=tmp_path / "v.html", cache=False).read_text()
    assert "in each variant against the first" in html and "through the run" not in html
