"""Small ONNX graphs of one recurrent node, built with ``onnx.helper``, for the ONNX reader's tests.

The weights are random and written in ONNX's own layout (``W (dirs, g*h, in)``, gates ``i, o, f,
c`` / ``z, r, h``; ``B = [Wb; Rb]``); onnxruntime runs the graph as the oracle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def weights(op: str, n_in: int, hidden: int, dirs: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random W, R, B for ``op`` in ONNX's layout (float32)."""
    rng = np.random.default_rng(seed)
    g = GATES[op]
    return {
        "W": rng.uniform(-0.8, 0.8, (dirs, g * hidden, n_in)).astype("f4"),
        "R": rng.uniform(-0.8, 0.8, (dirs, g * hidden, hidden)).astype("f4"),
        "B": rng.uniform(-0.5, 0.5, (dirs, 2 * g * hidden)).astype("f4"),
    }


def write(
    path: Path,
    op: str,
    w: dict[str, np.ndarray],
    *,
    direction: str = "forward",
    layout: int = 0,
    with_h0: bool = False,
    **attrs: Any,
) -> Path:
    """One ``op`` node reading graph input ``X`` (and ``h0``), output ``Y``; ``w`` initializers."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    dirs, _, n_in = w["W"].shape
    hidden = w["R"].shape[2]
    seq, batch = ("T", "N") if layout == 0 else ("N", "T")
    inputs = ["X", "W", "R", "B" if "B" in w else "", "", "h0" if with_h0 else ""]
    if "P" in w:
        inputs += ["", "P"]
    while inputs and not inputs[-1]:
        inputs.pop()
    node = helper.make_node(
        op,
        inputs,
        ["Y"],
        name=f"/rnn/{op}",
        hidden_size=hidden,
        direction=direction,
        layout=layout,
        **attrs,
    )
    graph_inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, [seq, batch, n_in])]
    if with_h0:
        h0_shape = [dirs, "N", hidden] if layout == 0 else ["N", dirs, hidden]
        graph_inputs.append(helper.make_tensor_value_info("h0", TensorProto.FLOAT, h0_shape))
    y_shape = [seq, dirs, batch, hidden] if layout == 0 else [batch, seq, dirs, hidden]
    graph = helper.make_graph(
        [node],
        "g",
        graph_inputs,
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, y_shape)],
        [numpy_helper.from_array(a, k) for k, a in w.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def run(
    path: Path,
    x: np.ndarray,
    layout: int = 0,
    h0: np.ndarray | None = None,
    reference: bool = False,
) -> np.ndarray:
    """``Y`` for batch-first ``x`` (``h0``: ``(dirs, batch, hidden)``), as ``(batch, time, dirs,
    hidden)``: from onnxruntime, or from onnx's reference evaluator (``reference=True``), which
    also runs ``layout=1`` (onnxruntime's CPU kernels refuse it)."""
    feed = {"X": x if layout == 1 else np.ascontiguousarray(x.transpose(1, 0, 2))}
    if h0 is not None:
        feed["h0"] = h0 if layout == 0 else np.ascontiguousarray(h0.transpose(1, 0, 2))
    if reference:
        from onnx.reference import ReferenceEvaluator

        y = ReferenceEvaluator(str(path)).run(None, feed)[0]
    else:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        y = sess.run(None, feed)[0]
    return y if layout == 1 else y.transpose(2, 0, 1, 3)
