"""Conversions from each framework's stored layout to the canonical one (numpy only).

The facts behind them are in ``shared/LAYOUTS.md`` and are re-proven by the tests, which run
every cell in numpy from these arrays and compare with the framework's own output.
"""

from __future__ import annotations

import re

import numpy as np

from ._errors import UnsupportedError
from ._model import GATES

__all__ = [
    "CONVLSTM_KINDS",
    "TORCH_ROLES",
    "TORCH_STACKED_KEY",
    "canonical_from_cudnn",
    "canonical_from_flax",
    "canonical_from_keras",
    "canonical_from_onnx",
    "canonical_from_torch",
    "convlstm_gate_blocks",
    "keras_from_canonical",
    "torch_gate_order",
    "torch_stacked_key",
]

# torch stores GRU gates as (reset, update, new); the canonical order is (update, reset, new).
_TORCH_TO_CANONICAL = {"LSTM": (0, 1, 2, 3), "GRU": (1, 0, 2), "SimpleRNN": (0,)}


def _fresh(a: np.ndarray) -> np.ndarray:
    """Read-only when ``a`` is a new array; a view keeps its base's flag (never made writeable)."""
    if a.base is None:
        a.setflags(write=False)
    return a


TORCH_ROLES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
"""The tensors of one direction of one torch RNN layer, in the module's own order."""
_TORCH_SUFFIX = {"forward": "", "backward": "_reverse"}
TORCH_STACKED_KEY = re.compile(
    rf"^(?:(?P<prefix>.+)\.)?(?P<w>{'|'.join(TORCH_ROLES)})_l(?P<k>\d+)"
    rf"(?P<rev>{_TORCH_SUFFIX['backward']})?$"
)
"""A stacked RNN's ``state_dict`` key: module prefix, role, layer number, ``_reverse``."""


def torch_stacked_key(role: str, layer: int, direction: str) -> str:
    """The name torch gives a stacked RNN's tensor.

    Example:
        >>> torch_stacked_key("bias_hh", 1, "backward")
        'bias_hh_l1_reverse'
    """
    return f"{role}_l{layer}{_TORCH_SUFFIX[direction]}"


def torch_gate_order(cell: str) -> tuple[int, ...]:
    """Positions of the canonical gates inside torch's stacked blocks."""
    return _TORCH_TO_CANONICAL[cell]


def _reorder_rows(w: np.ndarray, cell: str) -> np.ndarray:
    """Gate blocks (stacked on axis 0) in canonical order; no copy when the order is the same."""
    return _reorder_blocks(w, _TORCH_TO_CANONICAL[cell])


def _reorder_blocks(w: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """The blocks of ``w`` (stacked on axis 0) at positions ``order``; no copy for the identity."""
    w = np.asarray(w)
    if order == tuple(range(len(order))):
        return w
    blocks = np.split(w, len(order), axis=0)
    return _fresh(np.concatenate([blocks[k] for k in order], axis=0))


def canonical_from_torch(
    cell: str,
    weight_ih: np.ndarray,
    weight_hh: np.ndarray,
    bias_ih: np.ndarray | None = None,
    bias_hh: np.ndarray | None = None,
    weight_hr: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Canonical parts from one direction of one torch RNN layer.

    torch computes ``x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh`` with gates stacked on
    the first axis; the canonical kernel is therefore the transpose, gate blocks reordered. The
    transposes are views (no copy), so each gate block stays contiguous in memory.
    """
    out = {
        "kernel": _reorder_rows(weight_ih, cell).T,
        "recurrent_kernel": _reorder_rows(weight_hh, cell).T,
    }
    if bias_ih is not None:
        out["bias"] = _reorder_rows(bias_ih, cell)
    if bias_hh is not None:
        out["recurrent_bias"] = _reorder_rows(bias_hh, cell)
    if weight_hr is not None:
        out["projection"] = np.asarray(weight_hr).T
    return out


def canonical_from_keras(
    cell: str,
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray | None,
    *,
    name: str = "",
) -> dict[str, np.ndarray]:
    """Canonical parts from a Keras (3 or 2) cell's kernel, recurrent kernel and bias.

    A GRU with ``reset_after=True`` stores its bias as ``(2, 3 * units)``: the input-side row and
    the recurrent-side row.
    """
    out = {"kernel": np.asarray(kernel), "recurrent_kernel": np.asarray(recurrent_kernel)}
    if bias is not None:
        bias = np.asarray(bias)
        if bias.ndim == 2:
            if cell != "GRU" or bias.shape[0] != 2:
                raise UnsupportedError(
                    f"layer '{name}': a 2-D bias is only expected for a GRU with reset_after=True "
                    f"(shape (2, 3*units)); got {cell} bias of shape {bias.shape}",
                    layer=name or None,
                )
            out["bias"], out["recurrent_bias"] = bias[0], bias[1]
        else:
            out["bias"] = bias
    return out


def keras_from_canonical(parts: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The inverse of :func:`canonical_from_keras` for one direction: kernel, recurrent kernel
    and, if any, the bias; a separate recurrent bias is stacked under the bias as a second row."""
    out = [parts["kernel"], parts["recurrent_kernel"]]
    if "recurrent_bias" in parts:
        out.append(np.stack([parts["bias"], parts["recurrent_bias"]]))
    elif "bias" in parts:
        out.append(parts["bias"])
    return out


def _cudnn_kernel_block(k: np.ndarray) -> np.ndarray:
    # The CuDNN layer flattens each (in, units) block row-major and cuDNN reads that buffer as its
    # own (units, in) weight matrix; the matrix used as ``x @ kernel`` is that one transposed.
    n_in, units = k.shape
    return k.reshape(-1).reshape(units, n_in).T


def canonical_from_cudnn(
    cell: str, kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray, *, name: str = ""
) -> dict[str, np.ndarray]:
    """Canonical parts from a tf-keras ``CuDNNLSTM`` / ``CuDNNGRU`` layer.

    Their gate blocks are in the Keras order, but each block is stored in cuDNN's memory layout:
    an input-kernel block holds cuDNN's ``(units, in)`` matrix in an ``(in, units)`` array, and a
    recurrent block is the transpose. The bias holds the input-side blocks followed by the
    recurrent-side blocks (``8 * units`` for an LSTM, ``6 * units`` for a GRU). This is the
    conversion tf-keras applies when it loads CuDNN weights into a CPU layer.
    """
    kernel, recurrent_kernel, bias = (np.asarray(a) for a in (kernel, recurrent_kernel, bias))
    n = len(GATES[cell]) if cell in ("LSTM", "GRU") else None  # CuDNN has no SimpleRNN
    width = kernel.shape[1] if kernel.ndim == 2 else -1
    if n is None or kernel.ndim != 2 or width % n or bias.shape != (2 * width,):
        raise UnsupportedError(
            f"layer '{name}': a CuDNN{cell} layer needs a 2-D kernel of width 4*units (LSTM) or "
            f"3*units (GRU) and a bias of twice that width; got kernel {kernel.shape}, "
            f"bias {bias.shape}",
            layer=name or None,
        )
    return {
        "kernel": _fresh(np.hstack([_cudnn_kernel_block(k) for k in np.hsplit(kernel, n)])),
        "recurrent_kernel": _fresh(np.hstack([k.T for k in np.hsplit(recurrent_kernel, n)])),
        "bias": bias[:width],
        "recurrent_bias": bias[width:],
    }


# ONNX stores LSTM gates as (input, output, forget, cell) and GRU gates as (update, reset, hidden);
# these are the positions of the canonical gates among ONNX's blocks.
_ONNX_TO_CANONICAL = {"LSTM": (0, 2, 3, 1), "GRU": (0, 1, 2), "SimpleRNN": (0,)}


def canonical_from_onnx(
    cell: str, w: np.ndarray, r: np.ndarray, b: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Canonical parts from one direction of an ONNX ``LSTM``/``GRU``/``RNN`` node.

    ONNX computes ``X @ W.T + H @ R.T + Wb + Rb`` with gate blocks stacked on the first axis of
    ``W`` ``(g * hidden, input)`` and ``R`` ``(g * hidden, hidden)``, in the order ``i, o, f, c``
    (LSTM) or ``z, r, h`` (GRU); ``B`` is ``[Wb; Rb]``, ``2 * g * hidden`` long. The kernel is the
    transpose with the blocks in canonical order, ``Wb`` the bias and ``Rb`` the recurrent bias.

    Example:
        >>> w = np.repeat(np.arange(4.0), 2)[:, None]  # gate blocks i, o, f, c of 2 units
        >>> canonical_from_onnx("LSTM", w, np.zeros((8, 2)))["kernel"]
        array([[0., 0., 2., 2., 3., 3., 1., 1.]])
    """
    order = _ONNX_TO_CANONICAL[cell]
    out = {
        "kernel": _reorder_blocks(w, order).T,
        "recurrent_kernel": _reorder_blocks(r, order).T,
    }
    if b is not None:
        half = np.asarray(b).shape[0] // 2
        out["bias"] = _reorder_blocks(b[:half], order)
        out["recurrent_bias"] = _reorder_blocks(b[half:], order)
    return out


CONVLSTM_KINDS = ("ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")
"""The Keras convolutional LSTM layers, read as named per-gate blocks (not traced)."""


def convlstm_gate_blocks(parts: dict[str, np.ndarray], *, name: str = "") -> dict[str, np.ndarray]:
    """A Keras ``ConvLSTM1D/2D/3D`` layer's weights split into named per-gate blocks.

    Keras stores ``kernel (*kernel_size, in, 4 * filters)``, ``recurrent_kernel (*kernel_size,
    filters, 4 * filters)`` and ``bias (4 * filters,)``, gates on the last axis in the LSTM order
    ``i, f, c, o``. Each block keeps its convolution shape, e.g. ``kernel/forget`` is
    ``(*kernel_size, in, filters)``; statistics flatten it row-major over all axes but the last.

    Example:
        >>> blocks = convlstm_gate_blocks({"bias": np.arange(8.0)})
        >>> blocks["bias/forget"]
        array([2., 3.])
    """
    out: dict[str, np.ndarray] = {}
    for part, a in parts.items():
        a = np.asarray(a)
        if a.ndim == 0 or a.shape[-1] % 4:
            raise UnsupportedError(
                f"layer '{name}': a ConvLSTM {part} needs a last axis of 4*filters; "
                f"got shape {a.shape}",
                layer=name or None,
            )
        for gate, block in zip(GATES["LSTM"], np.split(a, 4, axis=-1), strict=True):
            out[f"{part}/{gate}"] = block
    return out


# Flax's fused GRU blocks are (reset, update, new); the canonical order is (update, reset, new).
_FLAX_FUSED_TO_CANONICAL = {"LSTM": (0, 1, 2, 3), "GRU": (1, 0, 2), "SimpleRNN": (0,)}
_FLAX_LSTM_DENSE = (("ii", "hi"), ("if_", "hf"), ("ig", "hg"), ("io", "ho"))
"""``flax.nnx.LSTMCell``'s Linear layers per canonical gate: (input side, hidden side)."""


def _reorder_columns(a: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    return np.ascontiguousarray(_reorder_blocks(np.asarray(a).T, order).T)


def canonical_from_flax(
    cell: str, kind: str, dense: dict[str, dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Canonical parts from a ``flax.nnx`` cell's Linear layers (``dense[name]["kernel"]`` ...).

    Flax's ``Linear`` computes ``x @ kernel + bias`` with ``kernel (in, out)``, the canonical
    orientation. ``LSTMCell`` keeps one Linear per gate and side (``ii, if_, ig, io`` on the
    input, no bias; ``hi, hf, hg, ho`` on ``h``, with bias): the bias is the recurrent bias.
    ``OptimizedLSTMCell`` fuses them into ``dense_i (in, 4u)`` (no bias) and ``dense_h``
    (bias), gates ``i, f, g, o``. ``GRUCell`` fuses ``dense_i (in, 3u)`` (bias) and ``dense_h``
    (no bias), gates ``r, z, n``, with ``n = tanh(x W_in + b_in + r * (h W_hn))``: a reset-after
    GRU without recurrent bias. ``SimpleCell``: ``dense_i`` (bias), ``dense_h`` (no bias).

    Example:
        >>> d = {"dense_i": {"kernel": np.arange(6.0).reshape(2, 3), "bias": np.arange(3.0)},
        ...      "dense_h": {"kernel": np.zeros((1, 3))}}
        >>> canonical_from_flax("GRU", "GRUCell", d)["bias"]  # (r, z, n) -> (z, r, n)
        array([1., 0., 2.])
    """
    if kind == "LSTMCell":
        out = {
            "kernel": np.concatenate([dense[i]["kernel"] for i, _ in _FLAX_LSTM_DENSE], axis=1),
            "recurrent_kernel": np.concatenate(
                [dense[h]["kernel"] for _, h in _FLAX_LSTM_DENSE], axis=1
            ),
        }
        if all("bias" in dense[h] for _, h in _FLAX_LSTM_DENSE):
            out["recurrent_bias"] = np.concatenate([dense[h]["bias"] for _, h in _FLAX_LSTM_DENSE])
        return {k: _fresh(np.array(v, copy=True)) for k, v in out.items()}
    order = _FLAX_FUSED_TO_CANONICAL[cell]
    out = {
        "kernel": _reorder_columns(dense["dense_i"]["kernel"], order),
        "recurrent_kernel": _reorder_columns(dense["dense_h"]["kernel"], order),
    }
    if "bias" in dense["dense_i"]:
        out["bias"] = _reorder_blocks(dense["dense_i"]["bias"], order)
    if "bias" in dense["dense_h"]:
        out["recurrent_bias"] = _reorder_blocks(dense["dense_h"]["bias"], order)
    return {k: _fresh(np.array(v, copy=True)) for k, v in out.items()}
