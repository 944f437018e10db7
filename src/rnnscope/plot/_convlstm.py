"""ConvLSTM1D/2D/3D weights as the per-gate heatmaps and histograms of a recurrent layer.

A ConvLSTM's per-gate blocks (``kernel/forget``: ``(*kernel_size, in, filters)``) are drawn by
:func:`rnnscope.plot.rnn_heatmap` and :func:`rnnscope.plot.rnn_histogram` like an LSTM's, once
flattened: each part becomes ``block.reshape(-1, filters)``, one row per kernel position and
input channel (row-major: row ``position * in + channel``, the kernel position itself
row-major over ``kernel_size``) and one column per filter, the four gates side by side in
Keras's order ``input, forget, cell, output``. This is the matrix the statistics use, and the
transpose of the one-row-per-output-channel matrix the report draws for other convolutions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._errors import LayerError
from .._layouts import CONVLSTM_KINDS
from .._model import GATES, Block, LayerWeights
from ._common import PlotMode, rnn_record
from ._common import _mode as plot_mode

__all__ = ["ConvLSTMView", "convlstm_view", "draw_record", "is_convlstm"]

_PARTS = ("kernel", "recurrent_kernel", "bias")


def is_convlstm(rec: Any) -> bool:
    """True for the :class:`LayerWeights` of a Keras ConvLSTM (weights or weight gradients)."""
    return isinstance(rec, LayerWeights) and rec.kind in CONVLSTM_KINDS


@dataclass(frozen=True)
class ConvLSTMView:
    """A ConvLSTM's weights flattened to ``(rows, 4 * filters)`` matrices, read by the
    recurrent figures as a one-direction LSTM record (the attributes they use)."""

    name: str
    cell: str
    units: int
    kernel_size: tuple[int, ...]
    channels: Mapping[str, int]
    arrays: Mapping[tuple[str, str], np.ndarray] = field(repr=False)
    directions: tuple[str, ...] = ("forward",)
    gates: tuple[str, ...] = GATES["LSTM"]
    bidirectional: bool = False

    @property
    def n_gates(self) -> int:
        """Four: ``input, forget, cell, output``."""
        return len(self.gates)

    @property
    def parts(self) -> tuple[str, ...]:
        """The parts present, in display order."""
        return tuple(p for p in _PARTS if (p, "forward") in self.arrays)

    def expected_shape(self, part: str) -> tuple[int, ...]:
        """The flattened shape of ``part``."""
        return tuple(self.arrays[(part, "forward")].shape)

    def gate_slice(self, gate: str) -> slice:
        """The columns of ``gate``."""
        k = self.gates.index(gate)
        return slice(k * self.units, (k + 1) * self.units)

    def blocks(self) -> Iterator[Block]:
        """``(direction, part, gate, block)`` as :meth:`RNNWeights.blocks` yields them."""
        for p in self.parts:
            a = self.arrays[(p, "forward")]
            for g in self.gates:
                yield "forward", p, g, a[..., self.gate_slice(g)]

    def items(self) -> Iterator[Block]:
        """The same as :meth:`blocks`."""
        return self.blocks()

    def rows_label(self, part: str) -> str:
        """What a heatmap row of ``part`` is, e.g. ``"kernel\\n(3x3 x 2 ch)"``."""
        k = "x".join(map(str, self.kernel_size))
        what = "kernel" if part == "kernel" else "recurrent kernel"
        return f"{what}\n({k} x {self.channels[part]} ch)"


def convlstm_view(rec: LayerWeights) -> ConvLSTMView:
    """The flattened view of a ConvLSTM's per-gate blocks (``kernel/input``, ...)."""
    arrays: dict[tuple[str, str], np.ndarray] = {}
    kernel_size: tuple[int, ...] = ()
    channels: dict[str, int] = {}
    filters = 0
    for part in _PARTS:
        names = [f"{part}/{g}" for g in GATES["LSTM"]]
        if not all(n in rec.weights for n in names):
            continue
        blocks = [np.asarray(rec.weights[n]) for n in names]
        filters = blocks[0].shape[-1]
        if part != "bias":
            kernel_size = tuple(int(d) for d in blocks[0].shape[:-2])
            channels[part] = int(blocks[0].shape[-2])
        arrays[(part, "forward")] = np.concatenate([b.reshape(-1, filters) for b in blocks], -1)
        if part == "bias":
            arrays[(part, "forward")] = arrays[(part, "forward")].reshape(-1)
    if ("kernel", "forward") not in arrays or ("recurrent_kernel", "forward") not in arrays:
        raise LayerError(
            f"layer '{rec.name}' ({rec.kind}): expected the per-gate blocks kernel/input ... "
            f"recurrent_kernel/output; it has: {', '.join(rec.names) or 'none'}",
            layer=rec.name,
        )
    return ConvLSTMView(rec.name, rec.kind, filters, kernel_size, channels, arrays)


def draw_record(
    source: Any,
    layer: Any,
    mode: Any,
    x: Any,
    y: Any,
    loss: Any = None,
    sample_weight: Any = None,
) -> tuple[Any, PlotMode]:
    """:func:`rnn_record`, or the flattened view of a ConvLSTM where the layer is one."""
    m = plot_mode(mode)
    if is_convlstm(source):
        return convlstm_view(source), m
    if isinstance(source, Mapping):  # gradients() results
        if layer is None and len(source) == 1:
            layer = next(iter(source))
        if isinstance(layer, str) and is_convlstm(source.get(layer)):
            return convlstm_view(source[layer]), PlotMode.GRADS
        return rnn_record(source, layer, mode, x, y, loss, sample_weight)
    try:
        return rnn_record(source, layer, mode, x, y, loss, sample_weight)
    except LayerError as err:
        from .._api import weights

        try:
            rec = weights(source, layer)
        except LayerError:
            raise err from None
        if not is_convlstm(rec):
            raise
    assert isinstance(rec, LayerWeights)
    if m is PlotMode.WEIGHTS:
        return convlstm_view(rec), m
    from .._capture import gradients

    grads = gradients(
        source, x, y, layers=rec.name, wrt="weights", loss=loss, sample_weight=sample_weight
    )[rec.name]
    assert isinstance(grads, LayerWeights)
    return convlstm_view(grads), m
