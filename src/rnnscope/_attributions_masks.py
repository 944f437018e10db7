"""Padded float inputs for attributions: one mask, computed once, held along every path.

Integrated gradients, smoothgrad and occlusion run the model on inputs that are not the real
one (``alpha * x``, noisy copies, windows replaced by a baseline). A mask recomputed from those
would be wrong: at ``alpha = 0`` a Keras ``Masking(0.0)`` masks every step. So the mask is
worked out once, from the real input (or taken from ``mask=``/``lengths=``/a torch
``PackedSequence``), and every pass is given that same mask:

- Keras 3 and tf-keras: each ``Masking`` layer's ``call`` is replaced, for one pass, by one that
  applies the fixed mask (zeroing masked steps, as ``Masking`` does) and hands it on to the
  layers after it; the mask itself comes from the layer's own ``compute_mask`` on what the layer
  receives in a real forward pass.
- torch: the model is given the mask in the form its ``forward`` takes: ``lengths=`` (a
  parameter of that name), ``mask=`` (a parameter of that name: booleans, any pattern), or else
  a ``PackedSequence`` packed from the rows with ``enforce_sorted=False`` (right padding).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import numpy as np

from ._errors import InputError, UnsupportedError

__all__ = [
    "check_torch_mask",
    "fixed_masks",
    "hold_mask",
    "hold_mask_arg",
    "keras_mask_check",
    "mask_takers",
    "maskings",
    "numpy_of",
    "replaced_call",
    "resolve_mask",
    "torch_call",
    "torch_mask_mode",
]


def resolve_mask(mask: Any, lengths: Any, batch: int, steps: int) -> np.ndarray | None:
    """A ``(batch, time)`` boolean mask (True: a real step) from ``mask=`` or ``lengths=``.

    Example:
        >>> resolve_mask(None, [2, 3], 2, 3).tolist()
        [[True, True, False], [True, True, True]]
    """
    if mask is not None and lengths is not None:
        raise InputError("give mask= or lengths=, not both", argument="mask")
    if lengths is not None:
        n = np.asarray(lengths)
        if n.dtype.kind not in "iu" or n.shape != (batch,):
            raise InputError(
                f"lengths: expected {batch} integers (one per sample); got {n.dtype} of shape "
                f"{n.shape}",
                argument="lengths",
            )
        if batch and (n.min() < 1 or n.max() > steps):
            raise InputError(
                f"lengths: each must be within 1..{steps} (the input has {steps} timesteps); "
                f"got {n.min()}..{n.max()}",
                argument="lengths",
            )
        return np.arange(steps)[None, :] < n[:, None]
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.shape != (batch, steps) or m.dtype.kind not in "bui":
        raise InputError(
            f"mask: expected ({batch}, {steps}) booleans (True: a real step) like x's (batch, "
            f"time); got {m.dtype} of shape {m.shape}",
            argument="mask",
        )
    if m.dtype.kind != "b" and not np.isin(m, (0, 1)).all():
        raise InputError("mask: expected booleans or 0/1", argument="mask")
    m = m.astype(bool)
    if batch and not m.any(axis=1).all():
        raise InputError(
            f"mask: sample {int(np.flatnonzero(~m.any(axis=1))[0])} has no real step",
            argument="mask",
        )
    return m


# -- Keras --------------------------------------------------------------------------------------


def maskings(model: Any) -> list[Any]:
    """The ``Masking`` layers of a Keras model (nested models included)."""
    layers = getattr(model, "_flatten_layers", None)
    return [la for la in (layers() if layers else []) if type(la).__name__ == "Masking"]


def numpy_of(t: Any) -> np.ndarray:
    """A framework tensor (Keras 3 on any backend, TensorFlow) as a numpy array."""
    if hasattr(t, "detach"):
        t = t.detach().cpu()
    if hasattr(t, "numpy"):
        return np.asarray(t.numpy())
    return np.asarray(importlib.import_module("keras").ops.convert_to_numpy(t))


@contextmanager
def replaced_call(layer: Any, call: Any, attr: str = "call") -> Iterator[None]:
    """Within the block, the Keras layer's ``call`` (or ``attr``) is ``call``; restored after."""
    had = attr in vars(layer)
    saved = vars(layer).get(attr)
    object.__setattr__(layer, attr, call)
    try:
        yield
    finally:
        if had:
            object.__setattr__(layer, attr, saved)
        else:
            object.__delattr__(layer, attr)


def fixed_masks(model: Any, run: Any, given: np.ndarray | None) -> dict[Any, np.ndarray]:
    """Each ``Masking`` layer's mask: its own rule on what it receives in one real forward pass
    (``run()``), or ``given`` for all of them; each checked to be ``(batch, time)`` of x."""
    found = maskings(model)
    seen: dict[Any, np.ndarray] = {}
    if given is not None:
        return dict.fromkeys(found, given)
    with ExitStack() as stack:
        for layer in found:
            original = type(layer).call.__get__(layer)

            def call(inputs: Any, *a: Any, _l: Any = layer, _o: Any = original, **k: Any) -> Any:
                seen[_l] = numpy_of(type(_l).compute_mask(_l, inputs)).astype(bool)
                return _o(inputs, *a, **k)

            stack.enter_context(replaced_call(layer, call))
        run()
    return seen


@contextmanager
def hold_mask(layer: Any, mask: Any) -> Iterator[None]:
    """A context in which ``Masking`` layer ``layer`` applies ``mask`` (a ``(rows, time)``
    boolean tensor) instead of computing one from its input (in ``call`` and, for the layers
    after it, in ``compute_mask``, which Keras consults as well)."""

    def compute_mask(*_a: Any, **_k: Any) -> Any:
        return mask

    with replaced_call(layer, compute_mask, "compute_mask"), _hold_call(layer, mask):
        yield


def _hold_call(layer: Any, mask: Any) -> Any:
    if type(layer).__module__.startswith("tf_keras"):
        tf = importlib.import_module("tensorflow")

        def tf_call(inputs: Any, *_a: Any, **_k: Any) -> Any:
            out = inputs * tf.cast(mask[..., None], inputs.dtype)
            out._keras_mask = mask
            return out

        return replaced_call(layer, tf_call)
    keras = importlib.import_module("keras")
    from keras.src.backend import set_keras_mask

    def call(inputs: Any, *_a: Any, **_k: Any) -> Any:
        out = keras.ops.where(keras.ops.expand_dims(mask, -1), inputs, 0)
        set_keras_mask(out, mask)
        return out

    return replaced_call(layer, call)


def mask_takers(model: Any) -> list[Any]:
    """The layers of a Keras model whose ``call`` takes a ``mask`` (``Masking`` aside)."""
    layers = getattr(model, "_flatten_layers", None)
    out = []
    for layer in layers() if layers else []:
        if layer is model or type(layer).__name__ == "Masking":
            continue
        try:
            params = inspect.signature(type(layer).call).parameters
        except (TypeError, ValueError):
            continue
        if "mask" in params:
            out.append(layer)
    return out


def hold_mask_arg(layer: Any, mask: Any) -> Any:
    """A context in which ``layer`` is given ``mask`` wherever it is given a mask: a Keras 3
    functional model records the mask its layers receive as its own graph computed from the
    input (``Masking``'s rule), beside the ``Masking`` layer, so that is replaced too."""
    original = vars(layer).get("call") or type(layer).call.__get__(layer)

    def call(*a: Any, **k: Any) -> Any:
        if k.get("mask") is not None:
            k["mask"] = mask
        return original(*a, **k)

    return replaced_call(layer, call)


def keras_mask_check(model: Any, masks: dict[Any, np.ndarray], shape: tuple[int, int]) -> None:
    """Masks a fixed-mask run can honour: every ``Masking`` layer's mask ``(batch, time)`` of
    x, and no mask passed inside a subclassed model's own ``call``."""
    from ._frameworks._keras_capture import _call_passes_mask

    why = _call_passes_mask(model)
    if why:
        raise UnsupportedError(
            f"model '{model.name}': {why}; attributions cannot hold that mask fixed along the "
            "integrated-gradients path (it would be recomputed from each scaled input). Use a "
            "Masking layer, or a functional/Sequential model",
        )
    for layer, m in masks.items():
        if m.shape != shape:
            raise UnsupportedError(
                f"Masking layer '{layer.name}' of model '{model.name}' masks {m.shape}, not the "
                f"input's (batch, time) {shape}: attributions hold a mask of the input's steps "
                "only",
                layer=layer.name,
            )


# -- torch --------------------------------------------------------------------------------------


def torch_mask_mode(model: Any) -> str:
    """How a torch model takes the mask: ``"lengths"`` or ``"mask"`` (a ``forward`` parameter
    of that name) or ``"packed"`` (a ``PackedSequence`` as its input)."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return "packed"
    for name in ("lengths", "mask"):
        if name in params:
            return name
    return "packed"


def torch_call(model: Any, x: Any, mask: np.ndarray, mode: str) -> Any:
    """``model`` on rows ``x`` with their mask, given as ``mode`` says."""
    torch = importlib.import_module("torch")
    if mode == "mask":
        return model(x, mask=torch.from_numpy(np.ascontiguousarray(mask)).to(x.device))
    lengths = torch.from_numpy(mask.sum(axis=1).astype(np.int64))
    if mode == "lengths":
        return model(x, lengths=lengths)
    rnn = importlib.import_module("torch.nn.utils.rnn")
    packed = rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    return model(packed)


def check_torch_mask(model: Any, mask: np.ndarray, mode: str) -> None:
    """Lengths and packed sequences hold right padding only: refuse any other pattern."""
    if mode == "mask":
        return
    right = np.arange(mask.shape[1])[None, :] < mask.sum(axis=1)[:, None]
    bad = np.flatnonzero((mask != right).any(axis=1))
    if bad.size:
        raise InputError(
            f"mask: torch model {type(model).__name__} takes "
            f"{'lengths' if mode == 'lengths' else 'a PackedSequence'}, which holds right "
            f"padding only; sample {int(bad[0])} has a real step after a padded one. Give the "
            "model's forward a mask parameter to take any pattern",
            argument="mask",
        )
