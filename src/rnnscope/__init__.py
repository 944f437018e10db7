"""rnnscope: see inside recurrent neural networks, gate by gate.

Importing rnnscope imports numpy only; frameworks, h5py and matplotlib are imported when a
function needs them.

Example:
    >>> import torch, rnnscope
    >>> w = rnnscope.rnn_weights(torch.nn.LSTM(3, 4))
    >>> w.gates
    ('input', 'forget', 'cell', 'output')
"""

from ._activations import ACTIVATIONS
from ._api import layers, rnn_weights, trace, weights
from ._capture import activations, gradients
from ._demo import demo_path
from ._errors import (
    FormatError,
    InputError,
    LayerError,
    MissingDependencyError,
    RnnscopeError,
    UnsupportedError,
)
from ._flags import Thresholds
from ._io import Checkpoint, load
from ._model import GATES, PARTS, LayerInfo, LayerWeights, RNNWeights
from ._monitor._history import history
from ._report import report
from ._summary import Summary, SummaryRow, summary
from ._tables import compare, stats
from ._trace import Trace

__version__ = "0.1.0"

_SUBPACKAGES = (
    "compat",
    "keras",
    "plot",
    "tf_keras",
    "torch",
)  # imported on first use (matplotlib, frameworks)


def __getattr__(name: str) -> object:
    if name in _SUBPACKAGES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'rnnscope' has no attribute {name!r}")


__all__ = [
    "ACTIVATIONS",
    "GATES",
    "PARTS",
    "Checkpoint",
    "FormatError",
    "InputError",
    "LayerError",
    "LayerInfo",
    "LayerWeights",
    "MissingDependencyError",
    "RNNWeights",
    "RnnscopeError",
    "Summary",
    "SummaryRow",
    "Thresholds",
    "Trace",
    "UnsupportedError",
    "activations",
    "compare",
    "demo_path",
    "gradients",
    "history",
    "layers",
    "load",
    "report",
    "rnn_weights",
    "stats",
    "summary",
    "trace",
    "weights",
]
