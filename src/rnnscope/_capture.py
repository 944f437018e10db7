"""Activations and gradients of chosen layers, from one forward (and backward) pass.

``activations`` and ``gradients`` resolve layer names exactly as ``rnn_weights`` does, pick the
framework object, and return numpy arrays (or, for ``wrt="weights"``, records in the
canonical layout built by the same code that builds weight records). Each framework undoes
everything it does to the model (patched ``call`` methods, hooks, train/eval modes) in
``finally`` blocks.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

from ._api import LayerKey, resolve, select
from ._errors import InputError, UnsupportedError
from ._frameworks import Capture, find_framework, type_name
from ._refs import LayerRef

__all__ = ["Wrt", "activations", "gradients", "masks"]


class Wrt(str, enum.Enum):
    """What ``gradients`` differentiates with respect to."""

    OUTPUTS = "outputs"
    WEIGHTS = "weights"


def _wrt(value: Any) -> Wrt:
    try:
        return Wrt(value)
    except ValueError as err:
        raise InputError(
            f"wrt must be one of {', '.join(w.value for w in Wrt)}; got {value!r}"
        ) from err


def _chosen(model: Any, layers: LayerKey | Sequence[LayerKey]) -> list[LayerRef]:
    src = resolve(model)
    if not any(r.obj is not None for r in src.refs) and src.refs:
        raise UnsupportedError(
            f"{src.name} is not a live model: activations and gradients need the framework model "
            "(a file or record only holds weights)"
        )
    if layers is None:
        return list(src.refs)
    keys = [layers] if isinstance(layers, (str, int)) else list(layers)
    picked: list[LayerRef] = []
    for k in keys:
        ref = select(src.refs, k, src.name, recurrent=False)
        if ref not in picked:
            picked.append(ref)
    return picked


def _with_outputs(backend: Capture, refs: list[LayerRef], layers: Any) -> list[LayerRef]:
    """By default, only layers whose output the framework exposes (not lower stacked torch
    layers); layers asked for by name are kept, and the backend explains what it cannot do."""
    return refs if layers is not None else [r for r in refs if backend.has_output(r)]


def _backend(model: Any) -> Capture:
    """The capture of ``model``'s framework."""
    fw = find_framework(model)
    if fw is None:
        raise UnsupportedError(
            "activations and gradients need a Keras 3, tf-keras or torch model, or a flax.nnx "
            f"module; got {type_name(model)}"
        )
    return fw.capture


def activations(
    model: Any, x: Any, layers: LayerKey | Sequence[LayerKey] = None, training: bool = False
) -> dict[str, Any]:
    """Outputs of the chosen layers in one forward pass, keyed by layer name.

    Args:
        model: a Keras 3 (any backend), tf-keras, torch or flax.nnx model.
        x: the model's input: an array, or a list/dict of arrays for several inputs.
        layers: a layer key (name, name part, index) or a list of them; None for every layer
            with weights.
        training: run in training mode (dropout on); off by default.

    Returns:
        ``{layer name: numpy array}``; a layer returning several tensors (``return_state``, torch
        ``(output, (h, c))``) gives its first, the output sequence. Where the output has masked
        steps (a Keras layer given a mask, a torch ``PackedSequence``, which comes back padded
        batch-first in the given sample order), a ``numpy.ma.MaskedArray``: the framework's
        own values, the masked steps masked, so numpy's statistics leave them out.

    Example:
        >>> acts = rnnscope.activations(model, x, layers=["lstm", "dense"])
        >>> acts["lstm"].shape  # (samples, timesteps, units)
        (8, 5, 4)
    """
    backend = _backend(model)
    refs = _with_outputs(backend, _chosen(model, layers), layers)
    return dict(backend.activations(model, x, refs, bool(training)))


def gradients(
    model: Any,
    x: Any,
    y: Any,
    layers: LayerKey | Sequence[LayerKey] = None,
    wrt: str = "outputs",
    loss: Any = None,
    sample_weight: Any = None,
    training: bool = False,
) -> dict[str, Any]:
    """Gradients of the loss with respect to layer outputs or weights, keyed by layer name.

    Args:
        model: a Keras 3 (any backend), tf-keras, torch or flax.nnx model.
        x: the model's input (array, or list/dict of arrays).
        y: the targets, structured like the model's outputs.
        layers: a layer key or list of keys; None for every layer with weights.
        wrt: ``"outputs"`` (d loss / d layer output, shaped like the output: the per-timestep
            view with ``return_sequences=True``) or ``"weights"`` (records shaped like
            :class:`RNNWeights` / :class:`LayerWeights`, so ``.array("recurrent_kernel",
            gate="forget")`` works on gradients too).
        loss: Keras: None uses the compiled loss (regularisation included); otherwise a loss
            name, ``keras.losses.Loss`` or callable ``(y_true, y_pred)``. torch: a callable
            ``(prediction, target)`` such as ``nn.MSELoss()`` (required).
        sample_weight: per-sample weights, ``(batch,)``; the weighted loss is
            ``sum(w_i * loss_i) / batch`` as in Keras.
        training: run in training mode (dropout on); off by default.

    Output gradients of layers with masked steps are ``numpy.ma.MaskedArray``, as in
    :func:`activations`.

    Example:
        >>> g = rnnscope.gradients(model, x, y, layers="lstm")
        >>> abs(g["lstm"]).mean(axis=(0, 2)).shape  # gradient reaching each of 5 timesteps
        (5,)
    """
    mode = _wrt(wrt)
    backend = _backend(model)
    refs = _chosen(model, layers)
    if mode == Wrt.OUTPUTS:
        refs = _with_outputs(backend, refs, layers)
    out = backend.gradients(
        model, x, y, refs, mode == Wrt.WEIGHTS, loss, sample_weight, bool(training)
    )
    return dict(out)


def masks(model: Any, x: Any, layers: LayerKey | Sequence[LayerKey] = None) -> dict[str, Any]:
    """The ``(batch, time)`` mask each chosen layer receives in one forward pass of ``x``.

    True marks a real step. Keras: the ``mask`` argument the layer's call receives (from a
    ``Masking`` layer, ``Embedding(mask_zero=True)``, or a ``mask=`` passed to a call); torch:
    the lengths of a ``PackedSequence`` input. None for a layer that receives no mask. Pass it
    to :func:`trace` as ``mask=`` with the layer's own input.

    Args:
        model: a Keras 3 (any backend), tf-keras, torch or flax.nnx model.
        x: the model's input.
        layers: a layer key or a list of them; None for every layer with weights.

    Example:
        >>> m = rnnscope.masks(model, x, "lstm")["lstm"]  # (samples, timesteps) booleans or None
        >>> m is None  # this model has no Masking layer
        True
        >>> t = rnnscope.trace(model, x, "lstm", mask=m)
    """
    backend = _backend(model)
    refs = _chosen(model, layers)
    return dict(backend.masks(model, x, refs))
