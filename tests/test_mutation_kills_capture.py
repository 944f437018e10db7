"""activations/gradients dispatch (rnnscope._capture) on torch, checked where the mutation run
found it unchecked: layer choice, training mode, argument errors. Expected values come from torch
itself (its own forward pass and autograd), never from rnnscope."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope
from rnnscope import _capture

torch = pytest.importorskip("torch")


def _mlp():
    """BatchNorm makes training mode visible in every output (batch statistics vs running)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1)
    )


X = np.random.default_rng(0).normal(size=(5, 3)).astype("f4")
Y = np.random.default_rng(1).normal(size=(5, 1)).astype("f4")


def _torch_outputs(model, training: bool) -> list[np.ndarray]:
    model.train(training)
    outs, h = [], torch.from_numpy(X)
    with torch.no_grad():
        for layer in model:
            h = layer(h)
            outs.append(h.numpy().copy())
    model.eval()
    return outs


@pytest.mark.parametrize("training", [False, True])
def test_activations_of_chosen_layers_in_either_mode(training):
    model = _mlp()
    want = _torch_outputs(model, training)
    kwargs = {"training": True} if training else {}
    got = rnnscope.activations(model, X, layers="1", **kwargs)
    assert list(got) == ["1"]
    np.testing.assert_allclose(got["1"], want[1], rtol=1e-5, atol=1e-6)
    every = rnnscope.activations(model, X, **kwargs)
    assert list(every) == ["0", "1", "2"]
    np.testing.assert_allclose(every["2"], want[2], rtol=1e-5, atol=1e-6)
    assert not model.training


@pytest.mark.parametrize("training", [False, True])
def test_output_gradients_of_a_chosen_layer_in_either_mode(training):
    model = _mlp()
    model.train(training)
    pred = model(torch.from_numpy(X))
    pred.retain_grad()
    torch.nn.functional.mse_loss(pred, torch.from_numpy(Y)).backward()
    want = pred.grad.numpy().copy()
    model.zero_grad()
    model.eval()
    kwargs = {"training": True} if training else {}
    got = rnnscope.gradients(model, X, Y, layers="2", loss=torch.nn.MSELoss(), **kwargs)
    assert list(got) == ["2"]
    np.testing.assert_allclose(got["2"], want, rtol=1e-5, atol=1e-7)


def test_a_lower_stacked_layer_asked_by_name_has_its_output_gradient():
    class Stacked(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.LSTM(3, 2, num_layers=2, batch_first=True)

        def forward(self, x):
            return self.rnn(x)[0]

    x, y = np.ones((2, 4, 3), "f4"), np.zeros((2, 4, 2), "f4")
    got = rnnscope.gradients(Stacked(), x, y, layers="rnn.l0", loss=torch.nn.MSELoss())
    assert list(got) == ["rnn.l0"] and got["rnn.l0"].shape == (2, 4, 2)
    assert np.abs(got["rnn.l0"]).max() > 0


def test_argument_errors_say_what_was_expected():
    model = _mlp()
    with pytest.raises(rnnscope.InputError) as err:
        rnnscope.gradients(model, X, Y, wrt="bias", loss=torch.nn.MSELoss())
    assert str(err.value) == "wrt must be one of outputs, weights; got 'bias'"
    with pytest.raises(rnnscope.UnsupportedError) as err:
        rnnscope.activations(np.zeros(3), X)
    assert str(err.value) == (
        "activations and gradients need a Keras 3, tf-keras or torch model, or a flax.nnx "
        "module; got numpy.ndarray"
    )
    with pytest.raises(rnnscope.LayerError) as err:
        rnnscope.activations(model, X, layers="nope")
    assert str(err.value) == (
        "layer 'nope' not found in torch module Sequential; layers with weights: 0 (Linear), "
        "1 (BatchNorm1d), 2 (Linear)"
    )


def test_a_record_is_not_a_live_model(tmp_path):
    model = _mlp()
    path = tmp_path / "m.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(rnnscope.UnsupportedError) as err:
        _capture._chosen(rnnscope.load(path), None)
    assert str(err.value).endswith(
        " is not a live model: activations and gradients need the framework model "
        "(a file or record only holds weights)"
    )
    assert str(path) in str(err.value)
