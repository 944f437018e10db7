"""Figures of recurrent layers: per-gate heatmaps and histograms, feature plots, gate traces.

Every function returns the matplotlib Figure (or one per direction), accepts ``fig=`` and
``savepath=``, and never calls ``plt.show()``. New figures are pyplot figures, so ``plt.show()``
and notebooks display them; close them with ``plt.close(fig)`` when drawing many.

Example:
    >>> from rnnscope import plot
    >>> fig = plot.rnn_heatmap("model.keras", "lstm")
"""

from ._attributions import attributions
from ._features import features_0d, features_1d, features_2d, features_hist
from ._gate_attributions import gate_attributions
from ._history import history
from ._rnn import rnn_heatmap, rnn_histogram
from ._trace_plot import trace_plot

__all__ = [
    "attributions",
    "features_0d",
    "features_1d",
    "features_2d",
    "features_hist",
    "gate_attributions",
    "history",
    "rnn_heatmap",
    "rnn_histogram",
    "trace_plot",
]
