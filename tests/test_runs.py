"""Runs vs variants, step numbers in names, metrics matched to checkpoints, and the ranking.

No framework: checkpoints are safetensors files written here (and the bundled run); metrics
files are written by the test in the formats Keras writes (tests/test_metrics_keras.py checks
those formats on files Keras itself wrote).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import rnnscope
from rnnscope import FormatError, InputError
from rnnscope._cli import main
from rnnscope._runs import decide_mode, direction_of, read_steps

pd = pytest.importorskip("pandas")
safetensors_np = pytest.importorskip("safetensors.numpy")


@pytest.mark.parametrize(
    ("name", "numbers"),
    [
        ("ckpt-0005.h5", {"checkpoint": 5}),
        ("model.03-0.42.keras", {"epoch": 3}),  # ModelCheckpoint {epoch:02d}-{val_loss:.2f}
        ("weights.12-1.07.hdf5", {"epoch": 12}),
        ("model.05.weights.h5", {"epoch": 5}),
        ("step_1200.safetensors", {"step": 1200}),
        ("epoch=3-step=1500.ckpt", {"epoch": 3, "step": 1500}),
        ("epoch=02-val_loss=0.31.ckpt", {"epoch": 2}),
        ("lr1e-3_epoch5.keras", {"epoch": 5}),
        ("sub/epoch16.safetensors", {"epoch": 16}),
        ("iter_300.pt", {"step": 300}),
        ("0042.pt", {"number": 42}),
        ("seed1.keras", {}),
        ("width64.keras", {}),
        ("best.keras", {}),
    ],
)
def test_step_and_epoch_numbers_in_names(name, numbers):
    assert dict(read_steps(name).numbers) == numbers


def test_a_name_with_several_numbers_says_which_was_used():
    both = read_steps("epoch=3-step=1500.ckpt")
    assert both.step == 1500 and both.kind == "step"
    assert "also gives epoch 3" in both.note
    keras_name = read_steps("model.03-0.42.keras")
    assert keras_name.step == 3 and "0.42 read as metric values" in keras_name.note
    assert "other numbers ignored: 2" in read_steps("run2_epoch5.pt").note


def test_run_or_variants():
    run = decide_mode(["ckpt-0010.h5", "ckpt-0002.h5", "ckpt-0005.h5"])
    assert run.mode == "run" and run.order == ["ckpt-0002.h5", "ckpt-0005.h5", "ckpt-0010.h5"]
    assert "checkpoint numbers" in run.describe()
    variants = decide_mode(["seed1.keras", "seed2.keras", "wide.keras"])
    assert variants.mode == "variants" and "no step or epoch number" in variants.reason
    mixed = decide_mode(["epoch1.keras", "final.keras"])
    assert mixed.mode == "variants" and "1 of 2 names carries" in mixed.reason
    same = decide_mode(["a_epoch1.keras", "b_epoch1.keras"])
    assert same.mode == "variants" and "share epoch 1" in same.reason
    forced = decide_mode(["seed1.keras", "seed2.keras"], run=True)
    assert forced.mode == "run" and forced.order == ["seed1.keras", "seed2.keras"]
    assert decide_mode(["epoch1.keras", "epoch2.keras"], run=False).mode == "variants"
    with pytest.raises(InputError, match="run must be True, False or None"):
        decide_mode(["a"], run="yes")  # type: ignore[arg-type]


def test_direction_from_the_metric_name():
    assert direction_of("val_loss") == "min"
    assert direction_of("val_mean_absolute_error") == "min"
    assert direction_of("val_sparse_categorical_accuracy") == "max"
    assert direction_of("auc_1") == "max"
    assert direction_of("val_loss:max") == "max"
    with pytest.raises(InputError, match="write 'bleurgh:min' or 'bleurgh:max'"):
        direction_of("bleurgh")


def _ckpt(path, rng, scale=1.0, nan=False):
    t = {
        "rnn.weight_ih_l0": rng.normal(size=(24, 3)).astype("f4") * scale,
        "rnn.weight_hh_l0": rng.normal(size=(24, 6)).astype("f4") * scale,
        "rnn.bias_ih_l0": rng.normal(size=24).astype("f4"),
        "rnn.bias_hh_l0": rng.normal(size=24).astype("f4"),
    }
    if nan:
        t["rnn.weight_hh_l0"][0, 0] = np.nan
    safetensors_np.save_file(t, str(path))


@pytest.fixture
def variants(tmp_path, rng):
    d = tmp_path / "variants"
    d.mkdir()
    for name, scale in (("small", 1.0), ("wide", 3.0), ("seed2", 9.0)):
        _ckpt(d / f"{name}.safetensors", rng, scale)
    return d


def test_variants_get_no_changing_fast_flags_and_say_so(variants, capsys):
    df = rnnscope.compare(variants)
    assert df.attrs["mode"] == "variants"
    assert df["l2_norm_step_rel_change"].isna().all()
    assert (df["l2_norm_rel_change"].abs() > 1).any()  # they do differ from the baseline
    assert main(["compare", str(variants)]) == 0
    out = capsys.readouterr().out
    assert "read as a set of variants" in out and "changing fast" not in out
    assert main(["compare", str(variants), "--run"]) == 0  # the user says it is a run
    out = capsys.readouterr().out
    assert "read as a training run: asked for" in out and "changing fast" in out


def test_a_run_is_ordered_by_step_and_flagged_step_to_step(tmp_path, rng, capsys):
    d = tmp_path / "run"
    d.mkdir()
    for step in (1200, 300, 40):
        _ckpt(d / f"step_{step}.safetensors", rng, scale=1 + step / 100)
    df = rnnscope.compare(d)
    order = ["step_40.safetensors", "step_300.safetensors", "step_1200.safetensors"]
    assert df.attrs["mode"] == "run" and df.attrs["models"] == order
    assert df.attrs["baseline"] == "step_40.safetensors"
    assert df.groupby("model", sort=False)["step"].first().to_dict() == {
        "step_40.safetensors": 40,
        "step_300.safetensors": 300,
        "step_1200.safetensors": 1200,
    }
    rk = df[(df.part == "recurrent_kernel") & (df.gate == "input")].set_index("model")
    norm = rk["l2_norm"]
    expected = (norm[order[1]] - norm[order[0]]) / norm[order[0]]
    assert rk.at[order[1], "l2_norm_step_rel_change"] == pytest.approx(expected)
    assert main(["compare", str(d), "--variants"]) == 0
    out = capsys.readouterr().out
    assert "read as a set of variants: asked for" in out and "changing fast" not in out


def test_bundled_run_is_a_run_and_its_report_says_so(tmp_path):
    df = rnnscope.compare(rnnscope.demo_path("run"))
    assert df.attrs["mode"] == "run" and "epoch numbers" in df.attrs["mode_note"]
    html = rnnscope.report(
        rnnscope.demo_path("run"), tmp_path / "r.html", figures=False, run=False
    ).read_text()
    assert ">The variants (baseline: " in html and "changing fast" not in html


def _metrics_csv(path, rows):
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_epoch_matching_offset_and_unmatched_checkpoints(tmp_path, rng):
    d = tmp_path / "ck"
    d.mkdir()
    for e in (0, 1, 2, 3):  # epoch 0: saved before training, as the bundled run does
        _ckpt(d / f"epoch{e}.safetensors", rng)
    log = _metrics_csv(
        tmp_path / "log.csv", {"epoch": [0, 1, 2], "val_loss": [0.9, 0.5, 0.7], "loss": [1, 2, 3]}
    )
    df = rnnscope.compare(d, metrics=log)
    per = pd.DataFrame(df.attrs["checkpoints"]).set_index("model")["val_loss"]
    assert math.isnan(per["epoch0.safetensors"])  # no epoch -1 in the log
    assert per[["epoch1.safetensors", "epoch2.safetensors", "epoch3.safetensors"]].tolist() == [
        0.9,
        0.5,
        0.7,
    ]
    assert any("1 of 4 checkpoints have no metrics" in n for n in df.attrs["metrics_notes"])
    same = rnnscope.compare(d, metrics=log, metrics_offset=0)
    per = pd.DataFrame(same.attrs["checkpoints"]).set_index("model")["val_loss"]
    assert per.tolist()[:3] == [0.9, 0.5, 0.7] and math.isnan(per["epoch3.safetensors"])
    ranked = rnnscope.compare(d, metrics=log, rank_by="val_loss")
    assert ranked.attrs["keep"].startswith("keep epoch2.safetensors: lowest val_loss (0.5)")
    ranks = {r["model"]: r["rank"] for r in ranked.attrs["checkpoints"]}
    assert ranks == {
        "epoch2.safetensors": 1,
        "epoch3.safetensors": 2,
        "epoch1.safetensors": 3,
        "epoch0.safetensors": 4,  # no value: last
    }
    assert "1 checkpoint without a val_loss value last" in ranked.attrs["keep"]


def test_history_json_forms(tmp_path):
    h = tmp_path / "h.json"
    h.write_text(json.dumps({"loss": [3.0, 2.0], "val_loss": [2.5, 1.5]}))
    m = rnnscope.read_metrics(h)
    assert m["epoch"].tolist() == [0, 1] and m["val_loss"].tolist() == [2.5, 1.5]
    h.write_text(json.dumps([{"epoch": 4, "val_acc": 0.5}, {"epoch": 5, "val_acc": 0.75}]))
    assert rnnscope.read_metrics(h).set_index("epoch")["val_acc"].to_dict() == {4: 0.5, 5: 0.75}
    h.write_text(json.dumps({"loss": [1.0, 2.0], "val_loss": [1.0]}))
    with pytest.raises(FormatError, match=r"h\.json.*differ in length"):
        rnnscope.read_metrics(h)
    h.write_text(json.dumps("hello"))
    with pytest.raises(FormatError, match=r"h\.json.*expected a History dump"):
        rnnscope.read_metrics(h)


def test_health_breaks_ties_fewer_errors_then_fewer_warnings(tmp_path, rng):
    d = tmp_path / "v"
    d.mkdir()
    _ckpt(d / "broken.safetensors", rng, nan=True)  # an error: NaN
    _ckpt(d / "big.safetensors", rng, scale=40.0)  # warnings: |w| > 10
    _ckpt(d / "fine.safetensors", rng)
    scores = {"model": ["broken", "big", "fine"], "val_accuracy": [0.8, 0.8, 0.8]}
    log = _metrics_csv(tmp_path / "scores.csv", scores)
    df = rnnscope.compare(d, metrics=log, rank_by="val_accuracy")
    assert df.attrs["mode"] == "variants"
    recs = {r["model"]: r for r in df.attrs["checkpoints"]}
    assert recs["broken.safetensors"]["errors"] >= 1
    assert recs["big.safetensors"]["errors"] == 0 and recs["big.safetensors"]["warnings"] >= 1
    assert recs["fine.safetensors"]["warnings"] == 0
    ranks = {m: r["rank"] for m, r in recs.items()}
    assert ranks == {"fine.safetensors": 1, "big.safetensors": 2, "broken.safetensors": 3}
    assert df.attrs["keep"].startswith("keep fine.safetensors: highest val_accuracy (0.8)")
    assert "health breaks the tie" in df.attrs["keep"]
    scores["val_accuracy"] = [0.9, 0.8, 0.7]  # the metric comes first
    log = _metrics_csv(tmp_path / "scores.csv", scores)
    top = rnnscope.compare(d, metrics=log, rank_by="val_accuracy").attrs["checkpoints"]
    assert [r["model"] for r in sorted(top, key=lambda r: r["rank"])] == [
        "broken.safetensors",
        "big.safetensors",
        "fine.safetensors",
    ]


def test_bad_metrics_and_rank_arguments(variants, tmp_path):
    with pytest.raises(InputError, match=r"metrics '.*nope\.csv' does not exist") as err:
        rnnscope.compare(variants, metrics=tmp_path / "nope.csv")
    assert err.value.argument == "metrics"
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(FormatError, match=r"bad\.csv.*expected a column 'epoch'.*found a, b"):
        rnnscope.compare(variants, metrics=bad)
    with pytest.raises(InputError, match=r"column 'epoch' holds numbers that are not whole: 1\.5"):
        rnnscope.read_metrics(pd.DataFrame({"epoch": [0, 1.5], "val_loss": [1.0, 0.5]}))
    bad.write_text("Epoch,val_AUC\n0,0.5\n")  # key columns in any case; metric names kept
    assert list(rnnscope.read_metrics(bad).columns) == ["epoch", "step", "val_AUC"]
    empty = tmp_path / "tb"
    empty.mkdir()
    with pytest.raises(FormatError, match="without TensorBoard event files"):
        rnnscope.read_metrics(empty)
    log = _metrics_csv(tmp_path / "log.csv", {"epoch": [0], "val_loss": [1.0]})
    with pytest.raises(InputError, match="'val_acc' is not among the metrics; they are: val_loss"):
        rnnscope.compare(variants, metrics=log, rank_by="val_acc")
    with pytest.raises(InputError, match="needs metrics"):
        rnnscope.compare(variants, rank_by="val_loss")
    with pytest.raises(InputError, match="metrics_offset must be a whole number"):
        rnnscope.compare(variants, metrics=log, metrics_offset=0.5)  # type: ignore[arg-type]


def test_cli_options_are_checked(variants, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["compare", str(variants), "--metrics-offset", "one"])
    assert stop.value.code == 2
    assert "--metrics-offset: expected a whole number" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["compare", str(variants), "--run", "--variants"])
    assert "not allowed with argument" in capsys.readouterr().err
    assert main(["compare", str(variants), "--rank-by", "val_loss"]) == 2
    assert "rank_by 'val_loss' needs metrics" in capsys.readouterr().err


def test_a_torch_monitor_matches_step_numbered_checkpoints(tmp_path):
    torch = pytest.importorskip("torch")
    from rnnscope.torch import Monitor

    torch.manual_seed(0)
    net = torch.nn.LSTM(2, 3, batch_first=True)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    d = tmp_path / "ck"
    d.mkdir()
    norms = {}
    with Monitor(net, str(tmp_path / "run.db"), every=1) as mon:
        for done in range(1, 5):
            net(torch.randn(4, 3, 2))[0].square().mean().backward()
            mon.step()
            opt.step()
            opt.zero_grad()
            state = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
            if done % 2 == 0:  # saved after `done` updates, named by it
                safetensors_np.save_file(state, str(d / f"step_{done}.safetensors"))
                norms[f"step_{done}.safetensors"] = math.sqrt(
                    sum(float((v.astype(np.float64) ** 2).sum()) for v in state.values())
                )
    df = rnnscope.compare(d, metrics=tmp_path / "run.db")
    assert df.attrs["mode"] == "run" and any("by step" in n for n in df.attrs["metrics_notes"])
    got = {r["model"]: r["weight_norm"] for r in df.attrs["checkpoints"]}
    assert got["step_2.safetensors"] == pytest.approx(norms["step_2.safetensors"], rel=1e-6)
    # the monitor's last row (step 3) holds the weights before the 4th update: no step 4
    assert got["step_4.safetensors"] is None
    assert any("no step 4 in the metrics" in n for n in df.attrs["metrics_notes"])


def test_report_context_for_the_report_layout(tmp_path, monkeypatch):
    """What the report's layout reads: ``model_metrics`` indexed by model, ``rank_by``,
    ``ranking`` (best first)."""
    import rnnscope._report as report_module

    seen: dict = {}
    render = report_module._render
    monkeypatch.setattr(
        report_module, "_render", lambda name, ctx: seen.update(ctx) or render(name, ctx)
    )
    val = {e: 1.0 / (1 + abs(e - 6)) for e in range(16)}  # epoch index 6 scores best
    log = _metrics_csv(tmp_path / "log.csv", {"epoch": list(val), "val_auc": list(val.values())})
    rnnscope.report(
        rnnscope.demo_path("run"), tmp_path / "r.html", metrics=log, rank_by="val_auc",
        figures=False,
    )  # fmt: skip
    mm = seen["model_metrics"]
    assert mm.index.name == "model" and list(mm.columns) == ["step", "val_auc"]
    assert mm["step"].tolist() == [0, 1, 2, 4, 8, 16]
    assert mm.at["epoch8.safetensors", "val_auc"] == val[7]  # file epoch 8 = log epoch 7
    assert math.isnan(mm.at["epoch0.safetensors", "val_auc"])
    assert seen["rank_by"] == "val_auc"
    assert seen["ranking"][:2] == ["epoch8.safetensors", "epoch4.safetensors"]
    assert seen["ranking"][-1] == "epoch0.safetensors"


def _rnn_state(scale: float) -> dict[str, np.ndarray]:
    """A torch-named RNN(2 -> 4) state whose every tensor is ``scale`` times a fixed one."""
    base = np.random.default_rng(7).uniform(0.5, 1.0, (4, 4)).astype("float32")
    return {
        "rnn.weight_ih_l0": scale * base[:, :2].copy(),
        "rnn.weight_hh_l0": scale * base,
        "rnn.bias_ih_l0": scale * base[:, 0].copy(),
        "rnn.bias_hh_l0": scale * base[:, 1].copy(),
    }


def test_changing_fast_is_judged_per_the_runs_shortest_gap(tmp_path):
    # epochs 1, 2, 10, 11: the norm grows x1.7 in one epoch (1 -> 2), x2 over eight (2 -> 10:
    # 9% a epoch) and x1.6 in one (10 -> 11); the threshold is 50% per shortest gap (1 epoch)
    d = tmp_path / "run"
    d.mkdir()
    for epoch, scale in ((1, 1.0), (2, 1.7), (10, 3.4), (11, 3.4 * 1.6)):
        safetensors_np.save_file(_rnn_state(scale), str(d / f"epoch{epoch}.safetensors"))
    from rnnscope._flags import Thresholds, change_flags

    df = rnnscope.compare(d)
    flags = [
        f
        for f in change_flags(df.to_dict("records"), Thresholds())
        if f.where == "rnn.l0 / recurrent_kernel"
    ]
    assert [f.model for f in flags] == ["epoch2.safetensors", "epoch11.safetensors"]
    assert [f.value for f in flags] == pytest.approx([0.7, 0.6], rel=1e-5)
    # the change over the 8-epoch gap, spread evenly: 2 ** (1/8) - 1 per epoch, under 50%
    rk = df[(df.part == "recurrent_kernel")].set_index("model")["l2_norm_step_rel_change"]
    assert rk["epoch10.safetensors"] == pytest.approx(1.0, rel=1e-5)
    for thr in (0.08, 0.09):  # 2 ** (1/8) - 1 = 0.0905: flagged under a threshold below it only
        moved = [f.model for f in change_flags(df.to_dict("records"), Thresholds(growth=thr))]
        assert ("epoch10.safetensors" in moved) == (thr < 2 ** (1 / 8) - 1)
    flag10 = next(
        f
        for f in change_flags(df.to_dict("records"), Thresholds(growth=0.08))
        if f.model == "epoch10.safetensors" and f.where == "rnn.l0 / recurrent_kernel"
    )
    assert flag10.value == pytest.approx(2 ** (1 / 8) - 1, rel=1e-5)
    assert "grew 100% since the previous model, 9% per 1 steps" in flag10.message
