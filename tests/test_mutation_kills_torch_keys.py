"""torch state-dict keys read from real safetensors files, checked where the mutation run found
them unchecked: layer names, kinds, shapes, notes, records and every shape-error message.

The expected gate blocks are sliced here from the raw tensors by torch's documented layout
(``weight_ih_l{k}`` rows stacked (i, f, g, o) for an LSTM, (r, z, n) for a GRU)."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from rnnscope import FormatError

safetensors_np = pytest.importorskip("safetensors.numpy")

TORCH_ORDER = {
    "LSTM": ("input", "forget", "cell", "output"),
    "GRU": ("reset", "update", "new"),
    "SimpleRNN": ("hidden",),
}


def _save(tmp_path, tensors, name="m.safetensors"):
    path = tmp_path / name
    safetensors_np.save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path))
    return path


def _arr(rng, *shape):
    return rng.normal(size=shape).astype("f4")


def _block(w: np.ndarray, cell: str, gate: str) -> np.ndarray:
    """One gate's rows of a torch (gates * hidden, ...) tensor."""
    k = TORCH_ORDER[cell].index(gate)
    n = w.shape[0] // len(TORCH_ORDER[cell])
    return w[k * n : (k + 1) * n]


def test_layers_kinds_shapes_notes_and_records(tmp_path, rng):
    t = {  # a projected bidirectional LSTM, a GRU cell and an RNN cell, generic tensors
        "model.enc.weight_ih_l0": _arr(rng, 12, 2),
        "model.enc.weight_hh_l0": _arr(rng, 12, 1),
        "model.enc.bias_ih_l0": _arr(rng, 12),
        "model.enc.bias_hh_l0": _arr(rng, 12),
        "model.enc.weight_hr_l0": _arr(rng, 1, 3),
        "model.enc.weight_ih_l0_reverse": _arr(rng, 12, 2),
        "model.enc.weight_hh_l0_reverse": _arr(rng, 12, 1),
        "model.enc.weight_hr_l0_reverse": _arr(rng, 1, 3),
        "dec.cell.weight_ih": _arr(rng, 6, 1),
        "dec.cell.weight_hh": _arr(rng, 6, 2),
        "dec.cell.bias_hh": _arr(rng, 6),
        "model.head.weight": _arr(rng, 1, 2),
        "model.head.bias": _arr(rng, 1),
        "scale": _arr(rng, 3),
    }
    path = _save(tmp_path, t)
    ckpt = rnnscope.load(path)
    got = [(i.name, i.kind, dict(i.shapes), i.recurrent) for i in ckpt.layers()]
    assert got == [  # safetensors files keep their keys sorted
        ("dec.cell", "GRU", {"weight_ih": (6, 1), "weight_hh": (6, 2), "bias_hh": (6,)}, True),
        (
            "model.enc.l0",
            "LSTM",
            {
                "weight_ih_l0": (12, 2),
                "weight_hh_l0": (12, 1),
                "bias_ih_l0": (12,),
                "bias_hh_l0": (12,),
                "weight_hr_l0": (1, 3),
                "weight_ih_l0_reverse": (12, 2),
                "weight_hh_l0_reverse": (12, 1),
                "weight_hr_l0_reverse": (1, 3),
            },
            True,
        ),
        ("model.head", "tensors", {"weight": (1, 2), "bias": (1,)}, False),
        ("scale", "tensors", {"scale": (3,)}, False),
    ]
    assert list(ckpt.notes) == [
        "layer 'dec.cell': GRU inferred from torch key shapes (weight_hh (6, 2) = 3 gate blocks "
        "of 2 units)",
        "layer 'model.enc.l0': LSTM inferred from torch key shapes (weight_hh (12, 1) = 4 gate "
        "blocks of 3 units)",
    ]
    lstm = rnnscope.rnn_weights(path, "model.enc.l0")
    assert (lstm.cell, lstm.kind, lstm.units, lstm.proj_size, lstm.source) == (
        "LSTM",
        "LSTM",
        3,
        1,
        f"file:{path}",
    )
    assert lstm.directions == ("forward", "backward")
    for d, s in (("forward", ""), ("backward", "_reverse")):
        for gate in TORCH_ORDER["LSTM"]:
            want = _block(t[f"model.enc.weight_ih_l0{s}"], "LSTM", gate).T
            np.testing.assert_array_equal(lstm.array("kernel", gate, d), want)
            want = _block(t[f"model.enc.weight_hh_l0{s}"], "LSTM", gate).T
            np.testing.assert_array_equal(lstm.array("recurrent_kernel", gate, d), want)
        np.testing.assert_array_equal(
            lstm.array("projection", direction=d), t[f"model.enc.weight_hr_l0{s}"].T
        )
    gru = rnnscope.rnn_weights(path, "dec.cell")
    assert (gru.cell, gru.kind, gru.units, gru.reset_after, gru.source) == (
        "GRU",
        "GRU",
        2,
        True,
        f"file:{path}",
    )
    assert gru.parts == ("kernel", "recurrent_kernel", "recurrent_bias")
    for gate in TORCH_ORDER["GRU"]:
        np.testing.assert_array_equal(
            gru.array("kernel", gate), _block(t["dec.cell.weight_ih"], "GRU", gate).T
        )
        np.testing.assert_array_equal(
            gru.array("recurrent_bias", gate), _block(t["dec.cell.bias_hh"], "GRU", gate)
        )
    head = rnnscope.weights(path, "model.head")
    assert head.kind == "tensors" and head.names == ("bias", "weight")
    np.testing.assert_array_equal(head.array("weight"), t["model.head.weight"])
    assert rnnscope.weights(path, "scale").names == ("scale",)


def test_unprefixed_rnn_cell_and_stacked_rnn(tmp_path, rng):
    t = {
        "weight_ih": _arr(rng, 1, 3),
        "weight_hh": _arr(rng, 1, 1),  # RNNCell(3, 1)
        "weight_ih_l0": _arr(rng, 2, 3),
        "weight_hh_l0": _arr(rng, 2, 2),
    }  # RNN(3, 2)
    path = _save(tmp_path, t)
    ckpt = rnnscope.load(path)
    assert [(i.name, i.kind) for i in ckpt.layers()] == [("cell", "RNN"), ("l0", "RNN")]
    assert ckpt.notes[0] == (
        "layer 'cell': RNN inferred from torch key shapes (weight_hh (1, 1) = 1 gate blocks of 1 "
        "units); nonlinearity assumed tanh (a state dict does not record relu)"
    )
    for name, w_ih in (("cell", t["weight_ih"]), ("l0", t["weight_ih_l0"])):
        rec = rnnscope.rnn_weights(path, name)
        assert (rec.cell, rec.kind, rec.activation, rec.recurrent_activation) == (
            "SimpleRNN",
            "RNN",
            "tanh",
            None,
        )
        np.testing.assert_array_equal(rec.array("kernel"), w_ih.T)


def _message(tmp_path, tensors) -> str:
    path = _save(tmp_path, tensors)
    with pytest.raises(FormatError) as err:
        rnnscope.load(path)
    return str(err.value).replace(str(path), "PATH")


SHAPE_ERROR = (
    "'PATH': recurrent layer 'x.l0': weight_ih {} and weight_hh {} are not (g*hidden, in) and "
    "(g*hidden, hidden) for g in 1, 3, 4"
)


@pytest.mark.parametrize(
    ("ih", "hh", "hr"),
    [
        ((12, 2, 1), (12, 3), None),  # weight_ih not 2-D
        ((12, 2), (12, 3, 1), (3, 3)),  # weight_hh not 2-D, hidden known from weight_hr
        ((12, 2), (12,), None),  # weight_hh 1-D: no hidden size at all
        ((0, 2), (0, 0), None),  # hidden 0
        ((10, 2), (10, 3), None),  # 10 rows are no whole number of gate blocks of 3
        ((8, 2), (12, 3), None),  # weight_ih and weight_hh disagree on the gate rows
    ],
)
def test_shape_errors_name_both_shapes(tmp_path, rng, ih, hh, hr):
    t = {"x.weight_ih_l0": np.zeros(ih, "f4"), "x.weight_hh_l0": np.zeros(hh, "f4")}
    if hr:
        t["x.weight_hr_l0"] = np.zeros(hr, "f4")
    assert _message(tmp_path, t) == SHAPE_ERROR.format(ih, hh)


@pytest.mark.parametrize(
    ("hh", "hr", "g"),
    [((6, 3), None, 2), ((12, 2), (3, 3), 4)],  # 2 blocks; a projection that does not fit
)
def test_gate_count_errors(tmp_path, hh, hr, g):
    t = {"x.weight_ih_l0": np.zeros((hh[0], 2), "f4"), "x.weight_hh_l0": np.zeros(hh, "f4")}
    if hr:
        t["x.weight_hr_l0"] = np.zeros(hr, "f4")
    assert _message(tmp_path, t) == (
        f"'PATH': recurrent layer 'x.l0': {g} gate blocks in weight_hh {hh}; expected 4 (LSTM), "
        "3 (GRU) or 1 (RNN)"
    )


def test_hidden_size_one_is_valid(tmp_path, rng):
    path = _save(tmp_path, {"x.weight_ih_l0": _arr(rng, 4, 2), "x.weight_hh_l0": _arr(rng, 4, 1)})
    assert rnnscope.rnn_weights(path).units == 1


@pytest.mark.parametrize(
    ("keys", "found"),
    [(["weight_ih_l0", "bias_ih_l0"], "bias_ih, weight_ih"), (["weight_hh_l0"], "weight_hh")],
)
def test_missing_weight_errors(tmp_path, keys, found):
    t = {f"x.{k}": np.zeros((4, 2), "f4") for k in keys}
    assert _message(tmp_path, t) == (
        f"'PATH': recurrent layer 'x.l0' lacks weight_ih or weight_hh; found: {found}"
    )


def test_reverse_weights_only(tmp_path):
    t = {
        "x.weight_ih_l0_reverse": np.zeros((4, 2), "f4"),
        "x.weight_hh_l0_reverse": np.zeros((4, 1), "f4"),
    }
    assert _message(tmp_path, t) == "'PATH': recurrent layer 'x.l0' has _reverse weights only"
