"""Gate traces of Keras ``ConvLSTM1D/2D/3D`` layers in numpy.

The cell is Keras's: ``i, f, o = recurrent_activation(conv(x, W) + b + conv(h, U))``, ``g =
activation(...)``, ``c = f c + i g``, ``h = o activation(c)``, where the input convolution takes
the layer's ``padding``, ``strides`` and ``dilation_rate`` and the recurrent one ``padding="same"``,
stride 1, no dilation. Convolutions are matrix products over gathered patches: the input one for
every timestep at once, the recurrent one per step. ``"same"`` pads ``max((out - 1) * stride +
(k - 1) * dilation + 1 - size, 0)`` in total, the smaller half before (TensorFlow's rule, which
Keras uses on every backend). Refused, each with a message: ``data_format="channels_first"``,
masks, and weights read from a file (the settings come from the live layer).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._activations import apply_inplace, get_activation
from ._errors import InputError, UnsupportedError
from ._model import LayerWeights
from ._trace import Trace, to_numpy

__all__ = ["conv_settings", "trace_convlstm"]

_GATES = ("input", "forget", "cell", "output")


def conv_settings(layer: Any, name: str) -> dict[str, Any]:
    """The settings a trace needs, from a live Keras ConvLSTM layer's ``get_config()``."""
    if layer is None:
        raise UnsupportedError(
            f"layer '{name}': a ConvLSTM is traced from a live Keras model only (its padding, "
            "strides and dilation are read from the layer); load the model with Keras",
            layer=name,
        )
    cfg = layer.get_config()
    if cfg.get("data_format") not in (None, "channels_last"):
        raise UnsupportedError(
            f"layer '{name}': ConvLSTM traces take data_format='channels_last'; the layer has "
            f"{cfg.get('data_format')!r}",
            layer=name,
        )
    rank = len(tuple(cfg["kernel_size"]))

    def tup(key: str) -> tuple[int, ...]:
        v = cfg.get(key, 1)
        return tuple(int(a) for a in (v if isinstance(v, (list, tuple)) else [v] * rank))

    padding = str(cfg.get("padding", "valid")).lower()
    if padding not in ("valid", "same"):
        raise UnsupportedError(f"layer '{name}': padding {padding!r} is not traced", layer=name)
    return {
        "strides": tup("strides"),
        "dilation": tup("dilation_rate"),
        "padding": padding,
        "activation": _name(cfg.get("activation", "tanh")),
        "recurrent_activation": _name(cfg.get("recurrent_activation", "sigmoid")),
        "go_backwards": bool(cfg.get("go_backwards", False)),
    }


def _name(act: Any) -> str:
    if isinstance(act, Mapping):  # a serialised activation
        act = act.get("config", {}).get("name", act.get("class_name"))
    return str(act)


def _pads(size: int, k: int, stride: int, dilation: int, padding: str) -> tuple[int, int, int]:
    """``(before, after, out)`` of one spatial axis."""
    span = (k - 1) * dilation + 1
    if padding == "valid":
        return 0, 0, max((size - span) // stride + 1, 0)
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2, out


def _patches(
    x: np.ndarray, ks: tuple[int, ...], strides: tuple[int, ...], dil: tuple[int, ...], padding: str
) -> tuple[np.ndarray, tuple[int, ...]]:
    """``(n * prod(out), prod(ks) * channels)`` patches of ``x (n, *space, channels)``, kernel
    positions row-major then channels, as a Keras kernel ``(*ks, channels, f)`` flattens."""
    rank = len(ks)
    pads = [_pads(x.shape[1 + a], ks[a], strides[a], dil[a], padding) for a in range(rank)]
    out = tuple(p[2] for p in pads)
    if any(p[0] or p[1] for p in pads):
        x = np.pad(x, [(0, 0), *[(p[0], p[1]) for p in pads], (0, 0)])
    cols = []
    for pos in itertools.product(*(range(k) for k in ks)):
        idx = tuple(
            slice(pos[a] * dil[a], pos[a] * dil[a] + (out[a] - 1) * strides[a] + 1, strides[a])
            for a in range(rank)
        )
        key = (slice(None), *idx)
        cols.append(x[key])
    n, c = x.shape[0], x.shape[-1]
    p = np.stack(cols, axis=-2)  # (n, *out, positions, channels)
    return p.reshape(n * int(np.prod(out, dtype=np.int64)), len(cols) * c), out


def _matrix(rec: LayerWeights, part: str) -> np.ndarray | None:
    names = [f"{part}/{g}" for g in _GATES]
    if not all(n in rec.weights for n in names):
        return None
    blocks = [np.asarray(rec.weights[n]) for n in names]
    return np.concatenate([b.reshape(-1, b.shape[-1]) for b in blocks], axis=-1)


def _states(initial_state: Any, shape: tuple[int, ...], dtype: Any, name: str) -> list[np.ndarray]:
    if initial_state is None:
        return [np.zeros(shape, dtype), np.zeros(shape, dtype)]
    given = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
    arrays = [to_numpy(s, what="initial_state").astype(dtype) for s in given]
    if len(arrays) != 2 or any(a.shape != shape for a in arrays):
        raise InputError(
            f"initial_state for layer '{name}' (ConvLSTM): expected [h, c], each of shape "
            f"{shape}; got {[a.shape for a in arrays]}",
            layer=name,
            argument="initial_state",
        )
    return arrays


def trace_convlstm(
    rec: LayerWeights, settings: Mapping[str, Any], x: Any, initial_state: Any = None
) -> Trace:
    """Trace a ConvLSTM over ``x (batch, time, *space, channels)``; gates ``(batch, time,
    *out_space, filters)`` from :meth:`Trace.get`."""
    kernel, rk, bias = (_matrix(rec, p) for p in ("kernel", "recurrent_kernel", "bias"))
    assert kernel is not None and rk is not None
    shape = rec.weights["kernel/input"].shape
    ks, channels, f = tuple(shape[:-2]), shape[-2], shape[-1]
    xa = to_numpy(x)
    if xa.ndim != len(ks) + 3 or xa.shape[-1] != channels or xa.shape[1] == 0:
        raise InputError(
            f"x for layer '{rec.name}' ({rec.kind}): expected shape (batch, time, "
            f"{', '.join('space' for _ in ks)}, {channels}) with at least one timestep, got "
            f"{xa.shape}",
            layer=rec.name,
            argument="x",
        )
    dtype = np.result_type(kernel.dtype, np.float32)
    xa = np.asarray(xa, dtype)
    b, t = xa.shape[:2]
    back = bool(settings["go_backwards"])
    if back:
        xa = xa[:, ::-1]
    act = get_activation(settings["activation"], {}, layer=rec.name)
    ract = get_activation(settings["recurrent_activation"], {}, layer=rec.name)
    frames = np.ascontiguousarray(xa.swapaxes(0, 1)).reshape(t * b, *xa.shape[2:])
    px, out = _patches(frames, ks, settings["strides"], settings["dilation"], settings["padding"])
    xp = (px @ kernel.astype(dtype)).reshape(t, b, *out, 4 * f)
    if bias is not None:
        xp += bias.astype(dtype)
    h, c = _states(initial_state, (b, *out, f), dtype, rec.name)
    gates = np.empty((t, b, *out, 4 * f), dtype)
    cs, hs = np.empty((t, b, *out, f), dtype), np.empty((t, b, *out, f), dtype)
    ones = (1,) * len(ks)
    u = rk.astype(dtype)
    for s in range(t):
        ph, _ = _patches(h, ks, ones, ones, "same")
        z = gates[s]
        z[...] = (ph @ u).reshape(z.shape)
        z += xp[s]
        apply_inplace(ract, z[..., : 2 * f])
        apply_inplace(act, z[..., 2 * f : 3 * f])
        apply_inplace(ract, z[..., 3 * f :])
        np.multiply(z[..., f : 2 * f], c, out=cs[s])
        cs[s] += z[..., :f] * z[..., 2 * f : 3 * f]
        c = cs[s]
        tc = c.copy()
        apply_inplace(act, tc)
        np.multiply(z[..., 3 * f :], tc, out=hs[s])
        h = hs[s]
    data = {(g, "forward"): gates[..., k * f : (k + 1) * f] for k, g in enumerate(_GATES)}
    data.update({("c", "forward"): cs, ("h", "forward"): hs})
    if back:  # back to input order
        data = {k: v[::-1] for k, v in data.items()}
    return Trace(rec.name, rec.kind, ("forward",), data, None, back)
