"""Public entry points over any source: live models, layers, checkpoint files, records."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ._errors import UnsupportedError, redact
from ._frameworks import find_framework, type_name
from ._io import Checkpoint, is_remote, open_checkpoint
from ._layouts import CONVLSTM_KINDS
from ._model import LayerInfo, LayerWeights, RNNWeights
from ._refs import LayerRef
from ._select import LayerKey as LayerKey
from ._select import pick, pick_rnn
from ._select import select as select
from ._trace import Trace, trace_masked

__all__ = ["layers", "rnn_weights", "trace", "weights"]


def _record_ref(rec: RNNWeights | LayerWeights) -> LayerRef:
    if isinstance(rec, RNNWeights):
        shapes = {
            f"{p}/{d}" if rec.bidirectional else p: a.shape for (p, d), a in rec.arrays.items()
        }
        info = LayerInfo(rec.name, rec.kind, shapes, recurrent=True)
    else:
        info = LayerInfo(rec.name, rec.kind, {k: a.shape for k, a in rec.weights.items()}, False)
    return LayerRef(info, lambda: rec)


@dataclass(frozen=True)
class Source:
    """Any source, resolved: a name for messages, its layers in order, reader notes, its file."""

    name: str
    refs: list[LayerRef]
    notes: tuple[str, ...] = ()
    path: str | None = None


def resolve(obj: Any) -> Source:
    """The layers with weights of a model, layer, record, checkpoint or path."""
    if isinstance(obj, (RNNWeights, LayerWeights)):
        return Source(f"record '{obj.name}'", [_record_ref(obj)])
    if isinstance(obj, (str, os.PathLike)) or is_remote(obj):
        obj = open_checkpoint(obj)
    if isinstance(obj, Checkpoint):
        return Source(f"file '{redact(obj.path)}'", obj.layer_refs(), obj.notes, obj.path)
    fw = find_framework(obj)
    if fw is None:
        raise UnsupportedError(
            f"cannot read weights from an object of type {type_name(obj)}; expected a Keras 3, "
            "tf-keras, torch or flax.nnx model or layer, a checkpoint path, or an rnnscope "
            "RNNWeights/LayerWeights"
        )
    return Source(fw.source_name(obj), fw.layer_refs(obj))


def layers(obj: Any) -> list[LayerInfo]:
    """Every layer with weights: name, kind, weight shapes.

    Args:
        obj: a Keras 3 / tf-keras / torch model or layer, a checkpoint path or
            :class:`Checkpoint`.

    Example:
        >>> import torch, rnnscope
        >>> [(i.name, i.kind) for i in rnnscope.layers(torch.nn.LSTM(3, 4, num_layers=2))]
        [('l0', 'LSTM'), ('l1', 'LSTM')]
    """
    return [r.info for r in resolve(obj).refs]


def weights(obj: Any, layer: LayerKey = None) -> RNNWeights | LayerWeights:
    """One layer's weights: :class:`RNNWeights` for recurrent layers, :class:`LayerWeights` else.

    Example:
        >>> import torch, rnnscope
        >>> rnnscope.weights(torch.nn.Linear(3, 2)).names
        ('weight', 'bias')
    """
    src = resolve(obj)
    return pick(src.refs, layer, src.name, src.path)


def rnn_weights(obj: Any, layer: LayerKey = None) -> RNNWeights:
    """One recurrent layer's weights in the canonical layout.

    Args:
        obj: a model, layer, checkpoint path or :class:`RNNWeights`.
        layer: exact name, unique name substring, or index into :func:`layers`; None picks the
            only recurrent layer.

    Example:
        >>> import torch, rnnscope
        >>> w = rnnscope.rnn_weights(torch.nn.GRU(3, 5, bidirectional=True))
        >>> w.array("recurrent_kernel", gate="reset", direction="backward").shape
        (5, 5)
    """
    src = resolve(obj)
    return pick_rnn(src.refs, layer, src.name, src.path)


def trace(
    obj: Any,
    x: Any,
    layer: LayerKey = None,
    initial_state: Any = None,
    *,
    mask: Any = None,
    lengths: Any = None,
) -> Trace:
    """Run one recurrent layer in numpy and record every gate at every timestep.

    Args:
        obj: a model, layer, checkpoint path or :class:`RNNWeights`.
        x: the layer's input, ``(batch, time, features)``, numpy or a framework tensor
            (batch first whatever the framework's ``batch_first`` / ``time_major``), or a torch
            ``PackedSequence`` (its lengths become the mask), or a ``numpy.ma.MaskedArray``
            from :func:`activations` (a step masked in every feature is a masked step).
        layer: as in :func:`rnn_weights`.
        initial_state: None (zeros), a list in Keras order (``[h, c]`` per direction, forward
            first), or ``{"forward": [h, c], "backward": [...]}``; each ``(batch, size)``.
        mask: ``(batch, time)`` booleans, True for a real step (Keras's convention; any
            pattern: right or left padding, holes). Masked steps keep the state. ``False``
            traces every step even where the model would mask.
        lengths: ``(batch,)`` real steps per sample, right padding (torch's convention).

    Raises:
        InputError: the layer receives a mask in its Keras model and neither ``mask=`` nor
            ``lengths=`` was given (``.argument == "mask"``).

    Example:
        >>> import numpy as np, torch, rnnscope
        >>> t = rnnscope.trace(torch.nn.LSTM(3, 4), np.zeros((2, 5, 3), np.float32))
        >>> t.get("forget").shape
        (2, 5, 4)
    """
    src = resolve(obj)
    ref = select(src.refs, layer, src.name, recurrent=True, path=src.path)
    if ref.info.kind in CONVLSTM_KINDS:
        return _trace_conv(ref, x, initial_state, mask, lengths)
    w = pick_rnn(src.refs, layer, src.name, src.path)
    fw = find_framework(obj)
    rule = fw.capture.mask_rule(obj, ref) if fw is not None and ref.obj is not None else None
    return trace_masked(w, x, initial_state, mask, lengths, rule)


def _trace_conv(ref: LayerRef, x: Any, initial_state: Any, mask: Any, lengths: Any) -> Trace:
    """A ConvLSTM's trace (masks refused: a masked ConvLSTM step is not proven)."""
    from ._conv_trace import conv_settings, trace_convlstm
    from ._trace import is_packed

    name = ref.info.name
    if mask is not None or lengths is not None or is_packed(x) or _is_masked(x):
        raise UnsupportedError(
            f"layer '{name}' ({ref.info.kind}): masks and lengths are not traced for a ConvLSTM; "
            "pass the unpadded input",
            layer=name,
            argument="mask",
        )
    settings = conv_settings(ref.obj, name)
    rec = ref.extract()
    assert isinstance(rec, LayerWeights)
    return trace_convlstm(rec, settings, x, initial_state)


def _is_masked(x: Any) -> bool:
    import numpy as np

    return bool(np.ma.isMaskedArray(x))
