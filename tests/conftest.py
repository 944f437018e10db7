"""Shared test helpers: framework availability markers, seeded data, tolerances."""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


requires_torch = pytest.mark.skipif(not has("torch"), reason="torch is not installed")
requires_keras = pytest.mark.skipif(not has("keras"), reason="keras is not installed")
requires_tf_keras = pytest.mark.skipif(
    not (has("tf_keras") and has("tensorflow")), reason="tf-keras is not installed"
)
requires_h5py = pytest.mark.skipif(not has("h5py"), reason="h5py is not installed")

ATOL = 1e-5  # float32 agreement with the frameworks' own outputs


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@pytest.fixture(autouse=True)
def _close_figures():
    """Every figure a test opens is closed after it (pyplot keeps them otherwise)."""
    yield
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")
