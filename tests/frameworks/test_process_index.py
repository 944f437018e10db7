"""process_index: which process of a distributed run writes, per framework (and Keras backend)."""

from __future__ import annotations

import json

import pytest

from rnnscope._frameworks import KERAS, TF_KERAS, TORCH
from tests.conftest import has

TF_CONFIGS = [
    ({}, (True, 0)),
    ({"task": {"type": "chief", "index": 0}}, (True, 0)),
    ({"task": {"type": "worker", "index": 0}}, (True, 0)),
    ({"task": {"type": "worker", "index": 2}}, (False, 2)),
    ({"task": {"type": "ps", "index": 0}}, (False, 0)),
]


@pytest.mark.skipif(not has("torch"), reason="torch is not installed")
def test_torch_outside_a_process_group_writes():
    import torch  # noqa: F401  (the framework object works on an imported framework)

    assert TORCH.process_index() == (True, 0)


@pytest.mark.skipif(not has("tf_keras"), reason="tf_keras is not installed")
@pytest.mark.parametrize(("config", "expected"), TF_CONFIGS)
def test_tf_keras_reads_tf_config(monkeypatch, config, expected):
    import tf_keras  # noqa: F401

    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    assert TF_KERAS.process_index() == expected


@pytest.mark.skipif(not has("keras"), reason="keras is not installed")
@pytest.mark.parametrize(("config", "expected"), TF_CONFIGS)
def test_keras_asks_its_backend(monkeypatch, config, expected):
    import keras

    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    backend = keras.backend.backend()
    assert KERAS.backend() == backend
    if backend == "tensorflow":
        assert KERAS.process_index() == expected
    elif backend == "jax":
        import jax

        assert KERAS.process_index() == (jax.process_index() == 0, jax.process_index())
    else:  # torch: no process group here, so this process writes whatever TF_CONFIG says
        assert KERAS.process_index() == (True, 0)
