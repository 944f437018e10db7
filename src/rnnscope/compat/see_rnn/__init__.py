"""See RNN 1.15.1's public functions, on Keras 3 (every backend), tf-keras and torch.

Code written for See RNN runs by importing from here instead of ``see_rnn``: every public name
of See RNN 1.15.1 is here with its arguments, defaults and return structures (``(figs, axes)``
from the figure functions, flat weight lists, ``weights_norm``'s nested statistics), plus the
names of the answer that preceded it (``get_rnn_gradients``, ``show_features_0D/1D/2D``).
Weights, gradients and outputs come from rnnscope's adapters and capture; figures are never
shown (call ``plt.show()`` where See RNN showed them).

``_id`` forms: a layer index into ``model.layers`` (torch: into rnnscope's layers with weights),
a layer name or part of one (the earliest match is taken, with a warning if several match),
``'layer/weight'`` for single weights, ``(layer_index, weight_index)``, ``'*'`` for every layer,
or a list mixing them. Older keyword names from See RNN's README (``xy_ticks``, ``y_zero``,
``title_mode``, ``bias``) are accepted; an unknown keyword raises ``TypeError`` naming it.

Example:
    >>> from rnnscope.compat.see_rnn import rnn_histogram, get_gradients
    >>> figs, axes = rnn_histogram(model, "lstm", equate_axes=2)
"""

from __future__ import annotations

from ._answer import show_features_0D, show_features_1D, show_features_2D
from ._common import scalefig
from ._data import get_gradients, get_outputs, get_rnn_gradients, get_weight_penalties, weight_loss
from ._features import features_0D, features_1D, features_2D
from ._hists import features_hist, features_hist_v2, hist_clipped
from ._rnn_figures import rnn_heatmap, rnn_histogram
from ._weights import (
    detect_nans,
    get_full_name,
    get_layer,
    get_rnn_weights,
    get_weights,
    rnn_summary,
    weights_norm,
)

__all__ = [
    "detect_nans",
    "features_0D",
    "features_1D",
    "features_2D",
    "features_hist",
    "features_hist_v2",
    "get_full_name",
    "get_gradients",
    "get_layer",
    "get_outputs",
    "get_rnn_gradients",
    "get_rnn_weights",
    "get_weight_penalties",
    "get_weights",
    "hist_clipped",
    "rnn_heatmap",
    "rnn_histogram",
    "rnn_summary",
    "scalefig",
    "show_features_0D",
    "show_features_1D",
    "show_features_2D",
    "weight_loss",
    "weights_norm",
]
