"""Shared test helpers: framework availability markers, seeded data, tolerances."""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["RNNSCOPE_CACHE"] = "off"  # no results kept between tests; cache tests name their own


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


requires_torch = pytest.mark.skipif(not has("torch"), reason="torch is not installed")
requires_keras = pytest.mark.skipif(not has("keras"), reason="keras is not installed")
requires_tf_keras = pytest.mark.skipif(
    not (has("tf_keras") and has("tensorflow")), reason="tf-keras is not installed"
)
requires_h5py = pytest.mark.skipif(not has("h5py"), reason="h5py is not installed")

ATOL = 1e-5  # float32 agreement with the frameworks' own outputs

# The start of a command line for a process that a test stops with Ctrl-C (SIGINT to its group):
# Python with SIGINT at its default, as in a terminal, whatever the suite inherited. A suite
# started as a background job of a script (`cmd &`) inherits SIGINT ignored, and exec keeps
# that, so the process under test would never see the Ctrl-C it is sent.
IN_A_TERMINAL = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])",
]


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A Keras-backend leg must run on the backend it asks for, or fail before any test runs."""
    want = os.environ.get("KERAS_BACKEND")
    leg = "keras_backend" in (config.option.markexpr or "")  # the per-backend legs of CI
    if not want or not (leg or any(i.get_closest_marker("keras_backend") for i in items)):
        return
    try:
        import keras
    except ImportError as err:
        raise pytest.UsageError(f"KERAS_BACKEND={want}: Keras does not load ({err})") from err
    got = keras.backend.backend()
    if got != want:
        raise pytest.UsageError(f"KERAS_BACKEND={want} but Keras runs on {got!r}")
