"""Flags calibrated against the standard initialisations, checked on layers the frameworks draw.

Each initialiser's facts are verified here from fresh layers (singular values with numpy, bounds
from the documented formulas), then the flags of the same layers are checked: one "untrained"
note and nothing else. A layer nudged off its initialisation raises no warning; the size-aware
recurrent bound, saturated and dead units are checked against the frameworks' own forward
passes; every output lists flags most serious first, each with what to look at next.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import rnnscope
from rnnscope._flags import RULES, Thresholds, flags_for
from rnnscope._model import RNNWeights
from tests.conftest import requires_keras, requires_torch

T = Thresholds()
SEV = {"error": 0, "warning": 1, "note": 2}


def _flags(obj: object) -> list:
    return flags_for(rnnscope.stats(obj).to_dict("records"), T)


def _serious(flags: list) -> list:
    return [(f.severity, f.where, f.message) for f in flags if f.severity != "note"]


# ------------------------------------------------------------ the initialisations themselves


@requires_keras
@pytest.mark.parametrize("cell", ["LSTM", "GRU", "SimpleRNN"])
@pytest.mark.parametrize("units", [3, 16])
def test_keras_defaults_verified_and_one_untrained_note(cell: str, units: int) -> None:
    import keras

    keras.utils.set_random_seed(units)
    model = keras.Sequential(
        [keras.Input((5, 2)), getattr(keras.layers, cell)(units), keras.layers.Dense(2)]
    )
    kernel, rec, bias = (np.asarray(w) for w in model.layers[0].get_weights())
    gates = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}[cell]
    # orthogonal recurrent kernel: every singular value is 1 (Keras's recurrent initialiser)
    np.testing.assert_allclose(np.linalg.svd(rec, compute_uv=False), 1.0, atol=1e-5)
    # Glorot-uniform kernel: within sqrt(6 / (fan_in + fan_out)) of the whole (in, G*u) kernel
    assert np.abs(kernel).max() <= math.sqrt(6 / (2 + gates * units)) * (1 + 1e-6)
    # zero bias, with unit_forget_bias: the LSTM's forget block (second of i, f, c, o) is 1
    flat = bias.reshape(-1)
    if cell == "LSTM":
        np.testing.assert_array_equal(flat[units : 2 * units], 1.0)
        flat = np.concatenate([flat[:units], flat[2 * units :]])
    np.testing.assert_array_equal(flat, 0.0)
    # the old rules flagged this: sigma 1 "> 1", each zero bias "100% below 0.001"
    flags = _flags(model)
    assert [(f.severity, f.rule, f.where) for f in flags] == [("note", "untrained", "all layers")]
    assert flags[0].message.startswith("untrained (matches Keras defaults)")
    assert "recurrent_kernel orthogonal" in flags[0].message
    assert ("forget gate 1" in flags[0].message) == (cell == "LSTM")
    assert flags[0].hint and flags[0].value == 2.0


@requires_torch
@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("units", [3, 16])
def test_torch_defaults_verified_and_one_untrained_note(cell: str, units: int) -> None:
    import torch

    torch.manual_seed(units)
    model = torch.nn.ModuleDict(
        {"rnn": getattr(torch.nn, cell)(3, units), "head": torch.nn.Linear(units, 2)}
    )
    # torch draws every weight and bias of a recurrent layer from uniform(-1/sqrt(h), 1/sqrt(h))
    for name, p in model["rnn"].named_parameters():
        a = p.detach().numpy()
        assert np.abs(a).max() <= 1 / math.sqrt(units) * (1 + 1e-6), name
    # and nn.Linear's weight and bias from uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))
    for p in model["head"].parameters():
        assert np.abs(p.detach().numpy()).max() <= 1 / math.sqrt(units) * (1 + 1e-6)
    flags = _flags(model)
    values = sum(p.numel() for p in model.parameters())
    if values < 80:  # RNN(3 -> 3) and its head: 32 values prove nothing (rnnscope._inits)
        assert (cell, units, flags) == ("RNN", 3, [])
        return
    assert [(f.severity, f.rule, f.where) for f in flags] == [("note", "untrained", "all layers")]
    assert flags[0].message.startswith("untrained (matches torch defaults)")
    assert f"uniform(\N{PLUS-MINUS SIGN}1/\N{SQUARE ROOT}{units})" in flags[0].message


@requires_torch
@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
def test_one_optimiser_step_off_the_init_raises_no_warning_and_no_untrained_note(
    cell: str,
) -> None:
    import torch

    torch.manual_seed(1)
    rnn = getattr(torch.nn, cell)(4, 32, batch_first=True)
    opt = torch.optim.Adam(rnn.parameters(), lr=1e-3)
    out, _ = rnn(torch.randn(8, 6, 4))
    out.pow(2).mean().backward()
    opt.step()
    # before: torch's own init gave sigma_max > 1 ("1.15 > 1", "1.73 > 1" as the old rule said)
    sigma = np.linalg.svd(rnn.weight_hh_l0.detach().numpy().T, compute_uv=False)[0]
    assert sigma > 1.0
    flags = _flags(rnn)
    assert _serious(flags) == []
    assert not [f for f in flags if f.rule == "untrained"]


@requires_keras
def test_a_keras_layer_nudged_off_its_init_raises_no_warning() -> None:
    import keras

    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((5, 2)), keras.layers.LSTM(32)])
    rng = np.random.default_rng(0)
    model.set_weights([w + rng.normal(0, 1e-3, w.shape) for w in model.get_weights()])
    flags = _flags(model)
    assert _serious(flags) == [] and not [f for f in flags if f.rule == "untrained"]


# ------------------------------------------------------------ size-aware recurrent bound


@requires_torch
@requires_keras
def test_the_random_matrix_bound_holds_for_the_frameworks_draws() -> None:
    import keras
    import torch

    torch.manual_seed(0)
    for h in (16, 128):
        w = torch.nn.RNN(4, h).weight_hh_l0.detach().numpy()
        expected = (2 * math.sqrt(h)) / math.sqrt(3 * h)  # s (sqrt(m) + sqrt(n)), s = 1/sqrt(3h)
        assert np.linalg.svd(w, compute_uv=False)[0] == pytest.approx(expected, rel=0.2)
    keras.utils.set_random_seed(0)
    layer = keras.layers.SimpleRNN(128, recurrent_initializer="glorot_uniform")
    layer.build((None, 5, 4))
    rec = np.asarray(layer.get_weights()[1])
    assert np.linalg.svd(rec, compute_uv=False)[0] == pytest.approx(2.0, rel=0.1)  # s = 1/sqrt(h)


def _simple_rnn(recurrent: np.ndarray, bias: np.ndarray | None = None) -> RNNWeights:
    u = recurrent.shape[0]
    rng = np.random.default_rng(5)
    parts = {
        "kernel": rng.uniform(-0.3, 0.3, (3, u)),
        "recurrent_kernel": recurrent,
        "bias": rng.uniform(-0.1, 0.1, u) if bias is None else bias,
    }
    return RNNWeights.from_parts("rnn", "SimpleRNN", {(k, "forward"): v for k, v in parts.items()})


@pytest.mark.parametrize(("scale", "flagged"), [(3.9, False), (4.1, True)])
def test_simple_rnn_bound_is_twice_glorots_two(scale: float, flagged: bool) -> None:
    q, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(16, 16)))
    rec = _simple_rnn(q * scale)
    sigma = np.linalg.svd(q * scale, compute_uv=False)[0]
    got = [f for f in _flags(rec) if f.rule == "recurrent_norm"]
    if not flagged:
        assert got == []
        return
    assert [(f.severity, f.value) for f in got] == [("warning", pytest.approx(sigma))]
    assert "> 4 (2 x the 2 a standard initialisation of this 16x16 matrix gives)" in (
        got[0].message
    )


def _lstm(recurrent: np.ndarray) -> RNNWeights:
    u = recurrent.shape[0]
    rng = np.random.default_rng(6)
    parts = {
        "kernel": rng.uniform(-0.3, 0.3, (3, 4 * u)),
        "recurrent_kernel": recurrent,
        "bias": rng.uniform(-0.1, 0.1, 4 * u),
    }
    return RNNWeights.from_parts("lstm", "LSTM", {(k, "forward"): v for k, v in parts.items()})


@pytest.mark.parametrize("big", ["forget", "cell"])
def test_a_gated_cells_warning_weighs_each_gate_by_its_slope(big: str) -> None:
    # one LSTM(16) recurrent kernel (16 x 64, Keras's i, f, c, o column blocks), every block
    # orthogonal x 1 except one x 30: the same largest singular value, ~30, either way
    u = 16
    rng = np.random.default_rng(4)
    blocks = [np.linalg.qr(rng.normal(size=(u, u)))[0] for _ in range(4)]
    order = ["input", "forget", "cell", "output"]
    blocks[order.index(big)] = blocks[order.index(big)] * 30
    rec = np.concatenate(blocks, axis=1)
    sig = {g: np.linalg.svd(b, compute_uv=False)[0] for g, b in zip(order, blocks, strict=True)}
    assert np.linalg.svd(rec, compute_uv=False)[0] == pytest.approx(30, rel=1e-2)  # sqrt(900+3)
    # the bound on one step's gradient through the recurrent kernel: slope 1/4 for sigmoid
    # gates, 1 for the tanh candidate; against what Glorot gives each 16 x 16 block
    j = (sig["input"] + sig["forget"] + sig["output"]) / 4 + sig["cell"]
    block_ref = math.sqrt(2 / (u + 4 * u)) * 2 * math.sqrt(u)  # Glorot's s (sqrt m + sqrt u)
    j_ref = block_ref * (3 / 4 + 1)
    got = [f for f in _flags(_lstm(rec)) if f.rule == "recurrent_norm"]
    warned = j > T.gated_high * j_ref
    assert warned == (big == "cell")  # 30 x 1 in the candidate: yes; 30 / 4 in a gate: no
    assert [f.severity for f in got] == ["warning" if warned else "note"]
    if warned:
        assert got[0].value == pytest.approx(np.linalg.svd(rec, compute_uv=False)[0])
        assert f"gate-weighted recurrent bound {j:.3g} > {T.gated_high * j_ref:.3g}" in (
            got[0].message
        )


# ------------------------------------------------------------ saturated and dead units


@requires_torch
def test_saturated_unit_is_flat_in_torchs_own_forward_and_flagged() -> None:
    import torch

    torch.manual_seed(0)
    rnn = torch.nn.RNN(3, 6, batch_first=True)
    with torch.no_grad():
        rnn.bias_ih_l0[0] = 12.0  # beyond what the state and a standardised input can move
        rnn.bias_hh_l0[0] = 0.0
        rnn.bias_ih_l0[1] = 1.0  # the inputs still move it
    out, _ = rnn(torch.randn(64, 10, 3))
    h = out.detach().numpy()
    assert np.all(1 - h[..., 0] ** 2 < 1e-4)  # tanh' ~ 0: pinned at +1 whatever the input
    assert h[..., 1].std() > 0.01
    rows = rnnscope.stats(rnn).to_dict("records")
    assert {r["saturated_units"] for r in rows} == {1}
    flags = [f for f in flags_for(rows, T) if f.rule == "saturated_units"]
    assert [(f.severity, f.where, f.value) for f in flags] == [("warning", "l0", 1.0)]
    assert flags[0].message.startswith("1 of 6 units have a gate pinned at 0 or 1")


def test_a_forget_gate_pinned_open_is_memory_not_saturation() -> None:
    u = 4
    parts = {
        "kernel": np.zeros((2, 4 * u)) + 0.1,
        "recurrent_kernel": np.zeros((u, 4 * u)) + 0.1,
        "bias": np.zeros(4 * u),
    }
    parts["bias"][u] = 20.0  # forget gate of unit 0 open: kept
    keyed = {(k, "forward"): v for k, v in parts.items()}
    rows = rnnscope.stats(RNNWeights.from_parts("l", "LSTM", keyed)).to_dict("records")
    assert {r["saturated_units"] for r in rows} == {0}
    parts["bias"][u] = -20.0  # closed: the unit forgets at every step, no gradient through it
    rows = rnnscope.stats(RNNWeights.from_parts("l", "LSTM", keyed)).to_dict("records")
    assert {r["saturated_units"] for r in rows} == {1}


@requires_torch
def test_dead_unit_output_does_not_depend_on_the_input() -> None:
    import torch

    torch.manual_seed(0)
    gru = torch.nn.GRU(3, 5, batch_first=True)
    with torch.no_grad():
        for g in range(3):  # r, z, n rows of unit 0
            gru.weight_ih_l0[g * 5] = 0
            gru.weight_hh_l0[g * 5] = 0
    a, _ = gru(torch.randn(4, 7, 3))
    b, _ = gru(torch.randn(4, 7, 3))
    np.testing.assert_array_equal(a[..., 0].detach().numpy(), b[..., 0].detach().numpy())
    assert not np.allclose(a[..., 1].detach().numpy(), b[..., 1].detach().numpy())
    flags = [f for f in _flags(gru) if f.rule == "dead_units"]
    assert [(f.severity, f.where, f.value) for f in flags] == [("warning", "l0", 1.0)]


# ------------------------------------------------------------ order, rule, value, hint


@pytest.fixture
def sick_file(tmp_path):
    """A torch RNN checkpoint whose flags come out of the rules in the wrong order: a warning
    (a kernel weight of 20) in its first part, a note (a zero bias) next, an error (NaN) in its
    last part."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    rnn = torch.nn.RNN(2, 4)
    with torch.no_grad():
        rnn.weight_ih_l0[0, 0] = 20.0
        rnn.bias_ih_l0.zero_()
        rnn.bias_hh_l0[3] = float("nan")
    path = tmp_path / "sick.safetensors"
    save_file({k: v.contiguous() for k, v in rnn.state_dict().items()}, str(path))
    return path


def _order(severities: list[str]) -> bool:
    return [SEV[s] for s in severities] == sorted(SEV[s] for s in severities)


def test_flags_are_ordered_and_every_one_names_its_rule_value_and_next_step(sick_file):
    flags = _flags(str(sick_file))
    sev = [f.severity for f in flags]
    assert {"error", "warning", "note"} <= set(sev) and _order(sev)
    rows = rnnscope.stats(str(sick_file)).to_dict("records")
    by_row = [f.severity for r in rows for f in flags_for([r], T)]
    assert not _order(by_row)  # the rows alone give them unsorted: the order is made
    names = {rule.__name__.removesuffix("_rule") for rule, _ in RULES}
    for f in flags:
        assert f.rule in names and f.hint and not math.isnan(f.value)


def test_cli_stats_prints_flags_most_serious_first_with_next_steps(sick_file, capsys):
    from rnnscope._cli import main

    assert main(["stats", str(sick_file), "--json", "-"]) == 0
    err = capsys.readouterr().err.splitlines()
    lines = [ln for ln in err if re.match(r"(error|warning|note): ", ln)]
    assert _order([ln.split(":")[0] for ln in lines]) and len(lines) >= 3
    for i, ln in enumerate(err):  # each flag line is followed by its next step
        if ln in lines:
            assert err[i + 1].startswith("  next: ")


def test_report_lists_errors_then_warnings_then_notes(sick_file, tmp_path):
    pytest.importorskip("jinja2")
    out = rnnscope.report(str(sick_file), out=tmp_path / "r.html", figures=False)
    html = out.read_text(encoding="utf-8")
    section = html[html.index('id="flags"') :]
    section = section[: section.index("</table>")] if "</table>" in section else section
    sev = re.findall(r'class="sev (error|warning|note)"', section)
    assert len(sev) >= 3 and _order(sev)


@requires_torch
def test_a_large_bias_the_recurrent_input_can_undo_is_not_saturation() -> None:
    import torch

    torch.manual_seed(0)
    rnn = torch.nn.RNN(1, 2, batch_first=True)
    with torch.no_grad():
        rnn.weight_ih_l0[:] = torch.tensor([[0.01], [2.0]])  # unit 1 follows the input
        rnn.weight_hh_l0[:] = torch.tensor([[-4.0, -4.0], [0.0, 0.0]])
        rnn.bias_ih_l0[:] = torch.tensor([8.0, 0.0])  # 8 > 6, but the state can take 8 off
        rnn.bias_hh_l0.zero_()
    out, _ = rnn(torch.randn(64, 10, 1))
    h0 = out.detach().numpy()[..., 0]
    assert (1 - h0**2).max() > 1e-2  # torch's own forward: unit 0 leaves the flat part
    rows = rnnscope.stats(rnn).to_dict("records")
    assert {r["saturated_units"] for r in rows} == {0}


def test_cli_next_steps_name_the_real_file_quoted_and_escaped(sick_file, capsys):
    import shlex

    from rnnscope._cli import main

    odd = sick_file.with_name("my run;\x1b[31m $x.safetensors")
    sick_file.rename(odd)
    assert main(["stats", str(odd), "--json", "-"]) == 0
    nexts = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("  next: ")]
    plots = [ln for ln in nexts if "rnnscope plot" in ln]
    assert plots and not any("FILE" in ln or "\x1b" in ln for ln in nexts)
    for ln in plots:  # the name as a shell reads it back (quoted), the escape shown as text
        words = shlex.split(ln.split("rnnscope plot ", 1)[1].split(":")[0])
        assert words[0] == "my run;\\x1b[31m $x.safetensors" and words[1:3] == ["--layer", "l0"]


def test_the_report_computes_each_models_flags_once_and_counts_those(tmp_path, monkeypatch):
    pytest.importorskip("jinja2")
    import rnnscope._flags as flags_module
    import rnnscope._report as report_module

    calls: list[str] = []
    real = flags_module.flags_for

    def counted(rows, t):
        calls.append(str(rows[0]["model"]) if rows else "")
        return real(rows, t)

    monkeypatch.setattr(flags_module, "flags_for", counted)
    monkeypatch.setattr(report_module, "flags_for", counted)
    run = rnnscope.demo_path("run")
    out = rnnscope.report(str(run), out=tmp_path / "r.html", figures=False)
    names = sorted(p.name for p in run.glob("*.safetensors"))
    assert sorted(calls) == names  # one call per model, none from compare's counts
    assert out.exists()


# ------------------------------------------------------------ how much evidence a match needs


def _linear_file(tmp_path, fan_in: int, zero_bias: bool = False, seed: int = 0, bias=True):
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    head = torch.nn.Linear(fan_in, 1, bias=bias)
    if zero_bias:
        with torch.no_grad():
            head.bias.zero_()
    path = tmp_path / f"linear{fan_in}_{int(zero_bias)}_{int(bias)}.safetensors"
    save_file({f"head.{k}": v.contiguous() for k, v in head.state_dict().items()}, str(path))
    return path, head


@requires_torch
def test_a_few_values_within_an_initialisers_bound_are_no_evidence(tmp_path):
    from rnnscope._inits import min_uniform_values

    # power: with n values the variance test accepts a ratio within z sqrt(0.8 / n) of 1; it
    # can tell a ratio of 0.5 or 1.5 only when that is <= 0.5, i.e. n >= 0.8 (z / 0.5)^2
    need = math.ceil(0.8 * (T.init_z / 0.5) ** 2)
    assert need == 80 and min_uniform_values(T.init_z) == need
    assert T.init_z * math.sqrt(0.8 / (need - 1)) > 0.5 >= T.init_z * math.sqrt(0.8 / need)
    # a Linear(6 -> 1) head with a zero bias (the case that read "untrained"): 6 values inside
    # +-1/sqrt(6) are what a trained head has as well: no note
    path, head = _linear_file(tmp_path, 6, zero_bias=True)
    w = head.weight.detach().numpy()
    assert np.abs(w).max() <= 1 / math.sqrt(6)  # it is inside the bound: only the count differs
    assert [f.rule for f in _flags(str(path))] == ["near_zero"]  # the zero bias: a note
    # its fresh torch draw, too: 7 values prove nothing
    assert [f.rule for f in _flags(str(_linear_file(tmp_path, 6)[0]))] == []
    # one value short of the count: no note; at the count: the note (no bias: weights only)
    short = _linear_file(tmp_path, need - 1, seed=1, bias=False)[0]
    assert [f.rule for f in _flags(str(short))] == []
    at = _flags(str(_linear_file(tmp_path, need, seed=1, bias=False)[0]))
    assert [(f.rule, f.where) for f in at] == [("untrained", "head")]


@requires_torch
def test_a_small_layer_at_its_init_is_untrained_beside_one_with_evidence(tmp_path):
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(3)
    lstm, head = torch.nn.LSTM(2, 4), torch.nn.Linear(4, 1)  # 32+64+16+16 values; 4+1
    state = {f"rnn.{k}": v for k, v in lstm.state_dict().items()}
    state |= {f"head.{k}": v for k, v in head.state_dict().items()}
    path = tmp_path / "fresh.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    flags = _flags(str(path))
    assert [(f.rule, f.where) for f in flags] == [("untrained", "all layers")]
    # the LSTM trained away from its init (weights x3): the head alone proves nothing
    state = {k: (3 * v if k.startswith("rnn.") else v) for k, v in state.items()}
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    assert "untrained" not in [f.rule for f in _flags(str(path))]


def test_the_run_sigma_figure_draws_the_size_aware_bound_not_1():
    pytest.importorskip("matplotlib")
    from rnnscope.plot._runs import run_lines

    run = rnnscope.demo_path("run")
    table = rnnscope.stats(str(run))
    names = list(dict.fromkeys(table["model"]))
    fig = run_lines(table, names, None)[-1]
    (ax,) = fig.axes
    flat = [ln for ln in ax.get_lines() if len(set(ln.get_ydata())) == 1]
    # the bundled LSTM(32): a 32 x 128 recurrent kernel; Glorot's deviation gives the largest
    m, n = 32, 128
    ref = max(1.0, math.sqrt(2 / (m + n)) * (m**0.5 + n**0.5), (m**0.5 + n**0.5) / math.sqrt(96))
    assert [ln.get_ydata()[0] for ln in flat] == pytest.approx([T.recurrent_high * ref])
    curve = next(ln for ln in ax.get_lines() if ln not in flat)
    assert flat[0].get_color() == curve.get_color()
    assert any(t.get_text() == f"bound {T.recurrent_high * ref:.3g}" for t in ax.texts)


def test_the_checkpoint_index_counts_what_compare_counts_and_names_the_metric(tmp_path):
    pytest.importorskip("jinja2")
    run = rnnscope.demo_path("run")
    scores = tmp_path / "scores.csv"  # a val_loss per file, by name
    names = [f"epoch{e}.safetensors" for e in (0, 1, 2, 4, 8, 16)]
    scores.write_text(
        "model,val_loss\n" + "".join(f"{n},{0.9 - i / 10}\n" for i, n in enumerate(names))
    )
    out = rnnscope.report(
        str(run), out=tmp_path / "r.html", figures=False, metrics=scores, rank_by="val_loss"
    )
    html = out.read_text(encoding="utf-8")
    table = html[html.index("<th>\N{GREEK SMALL LETTER SIGMA} max (recurrent)</th>") :]
    assert table.split("</tr>")[0].endswith('<th>val_loss</th><th class="t">shown in full</th>')
    cmp = rnnscope.compare(str(run))
    for rec in cmp.attrs["checkpoints"]:
        row = re.search(rf'<tr data-name="{re.escape(rec["model"])}">(.*?)</tr>', html).group(1)
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
        # #, model, step, errors, warnings, notes
        assert [int(c) for c in cells[3:6]] == [rec["errors"], rec["warnings"], rec["notes"]]
    assert (
        next(r for r in cmp.attrs["checkpoints"] if r["model"] == "epoch1.safetensors")["warnings"]
        == 2
    )  # the two "changing fast" warnings of epoch 1 (kernel, bias): counted in both
    # epochs 8 and 16 grew over 4 and 8 epochs: judged per epoch (the shortest gap), under 50%
    rel = cmp.groupby("model")["l2_norm_step_rel_change"].max()
    for model, gap in (("epoch8.safetensors", 4), ("epoch16.safetensors", 8)):
        assert rel[model] > 0.5 and (1 + rel[model]) ** (1 / gap) - 1 < 0.5
        counted = next(r for r in cmp.attrs["checkpoints"] if r["model"] == model)
        assert counted["warnings"] == 0, model
    assert "epoch8.safetensors: L2 norm grew" not in html
