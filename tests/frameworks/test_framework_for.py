"""framework_for: the framework object of real Keras 3, tf-keras and torch objects; a clear error
for anything else; and no framework imported to find out."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import rnnscope
from rnnscope import _frameworks
from rnnscope._frameworks import KERAS, TF_KERAS, TORCH, find_framework, framework_for
from tests.conftest import has

SRC = str(Path(rnnscope.__file__).parents[1])
FRAMEWORK_MODULES = ("torch", "keras", "tensorflow", "tf_keras", "jax")


def _imported_after(code: str) -> str:
    """The framework modules imported after running ``code`` in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": SRC}
    tail = f"\nimport sys\nprint(','.join(m for m in {FRAMEWORK_MODULES!r} if m in sys.modules))\n"
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code) + tail],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(not has("torch"), reason="torch is not installed")
def test_torch_objects_pick_torch():
    import torch

    class Net(torch.nn.Module):  # a user's subclass, defined outside torch
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(2, 3)

    for obj in (torch.nn.LSTM(2, 3), Net(), torch.zeros(2), torch.nn.Parameter(torch.ones(1))):
        assert framework_for(obj) is TORCH
        assert TORCH.handles(obj) and not KERAS.handles(obj) and not TF_KERAS.handles(obj)


@pytest.mark.skipif(not has("keras"), reason="keras is not installed")
def test_keras_lstm_picks_keras_on_its_backend():
    import keras

    layer = keras.layers.LSTM(3)
    model = keras.Sequential([keras.Input((4, 2)), layer])
    # On the torch backend a Keras layer is also a torch.nn.Module: Keras comes first.
    for obj in (layer, model, model.weights[0]):
        assert framework_for(obj) is KERAS, type(obj).__mro__
        assert KERAS.handles(obj) and not TORCH.handles(obj)


@pytest.mark.skipif(not has("tf_keras"), reason="tf_keras is not installed")
def test_tf_keras_lstm_picks_tf_keras():
    import tf_keras

    layer = tf_keras.layers.LSTM(3)
    model = tf_keras.Sequential([tf_keras.Input((4, 2)), layer])
    assert framework_for(layer) is TF_KERAS
    assert framework_for(model) is TF_KERAS
    assert not KERAS.handles(layer)


@pytest.mark.parametrize(
    ("obj", "name"),
    [(np.zeros(3), "numpy.ndarray"), ("model.keras", "builtins.str"), ({}, "builtins.dict")],
)
def test_other_objects_get_an_error_naming_their_type(obj, name):
    assert find_framework(obj) is None
    with pytest.raises(rnnscope.UnsupportedError) as err:
        framework_for(obj)
    assert str(err.value) == (
        f"no framework handles an object of type {name}; "
        "expected a Keras 3, tf-keras, torch or flax.nnx model, layer or tensor"
    )


@pytest.mark.skipif(not has("flax"), reason="flax is not installed")
def test_flax_nnx_modules_and_params_pick_flax():
    from flax import nnx

    from rnnscope._frameworks import FLAX

    rnn = nnx.RNN(nnx.eval_shape(lambda: nnx.GRUCell(2, 3, rngs=nnx.Rngs(0))))
    for obj in (rnn, rnn.cell, rnn.cell.dense_i.kernel):
        assert framework_for(obj) is FLAX, type(obj).__mro__
    assert find_framework(np.zeros(2)) is None
    assert FLAX.process_index() == (True, 0)


def test_answers_are_remembered_per_type():
    class Thing:
        pass

    assert find_framework(Thing()) is None
    assert _frameworks._BY_TYPE[Thing] is None


@pytest.mark.skipif(not has("torch"), reason="torch is not installed")
def test_torch_answer_is_remembered_per_type():
    import torch

    class Mine(torch.nn.Linear):
        pass

    assert Mine not in _frameworks._BY_TYPE
    assert framework_for(Mine(1, 1)) is TORCH
    assert _frameworks._BY_TYPE[Mine] is TORCH


def test_no_framework_is_imported_to_find_out():
    out = _imported_after(
        """
        import numpy as np
        import rnnscope
        from rnnscope._frameworks import find_framework, framework_for
        for obj in (np.zeros(3), "model.keras", b"x", 1.5, object()):
            assert find_framework(obj) is None
            try:
                framework_for(obj)
            except rnnscope.UnsupportedError:
                pass
            else:
                raise AssertionError(obj)
        """
    )
    assert out == ""


@pytest.mark.skipif(not has("torch"), reason="torch is not installed")
def test_a_torch_model_imports_no_other_framework():
    out = _imported_after(
        """
        import torch
        from rnnscope._frameworks import TORCH, framework_for
        assert framework_for(torch.nn.LSTM(2, 3)) is TORCH
        import rnnscope
        rnnscope.layers(torch.nn.GRU(2, 3))
        """
    )
    assert out == "torch"
