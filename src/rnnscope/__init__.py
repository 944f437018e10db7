"""rnnscope: see inside recurrent neural networks, gate by gate.

Importing rnnscope loads its error classes only; each public name loads its module (numpy,
then h5py, a framework or matplotlib as the function needs them) on first use.

Example:
    >>> import torch, rnnscope
    >>> w = rnnscope.rnn_weights(torch.nn.LSTM(3, 4))
    >>> w.gates
    ('input', 'forget', 'cell', 'output')
"""

import typing as _typing

from ._errors import (
    FormatError,
    InputError,
    LayerError,
    MissingDependencyError,
    RnnscopeError,
    UnsupportedError,
)
from ._version import __version__ as __version__

# Every other public name lives in a private module that is imported on first use, so that
# ``import rnnscope`` costs little more than ``import numpy`` (bench/bench_import.py).
_LAZY = {
    "ACTIVATIONS": "_activations",
    "GATES": "_model",
    "PARTS": "_model",
    "LayerInfo": "_model",
    "LayerWeights": "_model",
    "RNNWeights": "_model",
    "Checkpoint": "_io",
    "CacheNote": "_cache",
    "load": "_io",
    "Summary": "_summary",
    "SummaryRow": "_summary",
    "summary": "_summary",
    "Thresholds": "_flags",
    "flags": "_tables",
    "Trace": "_trace",
    "activations": "_capture",
    "Attribution": "_attributions",
    "attributions": "_attributions",
    "GateAttribution": "_attributions_gates",
    "gate_attributions": "_attributions_gates",
    "gradients": "_capture",
    "masks": "_capture",
    "compare": "_tables",
    "stats": "_tables",
    "demo_path": "_demo",
    "history": "_monitor._history",
    "layers": "_api",
    "rnn_weights": "_api",
    "trace": "_api",
    "weights": "_api",
    "report": "_report",
    "read_metrics": "_metrics",
    "Explorer": "_explore",
    "explore": "_explore",
}
_SUBPACKAGES = ("compat", "keras", "plot", "tf_keras", "torch")  # matplotlib, frameworks

if _typing.TYPE_CHECKING:  # what type checkers and editors see; at run time, __getattr__ below
    from ._activations import ACTIVATIONS
    from ._api import layers, rnn_weights, trace, weights
    from ._attributions import Attribution, attributions
    from ._attributions_gates import GateAttribution, gate_attributions
    from ._cache import CacheNote
    from ._capture import activations, gradients, masks
    from ._demo import demo_path
    from ._explore import Explorer, explore
    from ._flags import Thresholds
    from ._io import Checkpoint, load
    from ._metrics import read_metrics
    from ._model import GATES, PARTS, LayerInfo, LayerWeights, RNNWeights
    from ._monitor._history import history
    from ._report import report
    from ._summary import Summary, SummaryRow, summary
    from ._tables import compare, flags, stats
    from ._trace import Trace


def __getattr__(name: str) -> object:
    import importlib

    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'rnnscope' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ACTIVATIONS",
    "GATES",
    "PARTS",
    "Attribution",
    "CacheNote",
    "Checkpoint",
    "Explorer",
    "FormatError",
    "GateAttribution",
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
    "attributions",
    "compare",
    "demo_path",
    "explore",
    "flags",
    "gate_attributions",
    "gradients",
    "history",
    "layers",
    "load",
    "masks",
    "read_metrics",
    "report",
    "rnn_weights",
    "stats",
    "summary",
    "trace",
    "weights",
]
