"""ONNX models (``.onnx``): the ``LSTM``, ``GRU`` and ``RNN`` operators, read with the ``onnx``
package only (no runtime).

Each recurrent node of the main graph is one layer, named by the node (``/lstm/LSTM`` is listed
as ``lstm/LSTM``). Its ``W``, ``R`` and ``B`` inputs must be stored in the file (initializers or
``Constant`` nodes); they map to the canonical layout by :func:`canonical_from_onnx`. The node's
attributes give the rest: ``direction`` (forward, reverse = ``go_backwards``, bidirectional),
``activations``, ``linear_before_reset`` (GRU: 1 is Keras's ``reset_after=True``), ``clip``,
``input_forget``; ``layout`` changes only the shape of the node's input and output, never the
weights. A node with settings rnnscope's cells cannot reproduce (``clip``, ``input_forget``,
non-zero peepholes ``P``, different activations for the two directions or for ``g`` and ``h``,
activations with parameters other than the defaults) is listed with its raw tensors only, as a
non-recurrent layer, and a note says why: never a trace that silently differs. Other nodes with
floating-point initializers are listed as plain layers (``Gemm``, ``Conv``, ...).

Untrusted files: the protobuf is parsed by ``onnx`` (a damaged file is a FormatError naming it);
every tensor's declared size is checked against the bytes stored for it before it is converted;
external-data tensors are read only from regular files inside the model's own folder (after
resolving symbolic links), within their size, and never a byte beyond the declared tensor.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from .._errors import FormatError, MissingDependencyError
from .._layouts import canonical_from_onnx
from .._model import GATES, LayerInfo, LayerWeights, RNNWeights, readonly
from .._refs import LayerRef
from ._checkpoint import Checkpoint
from ._limits import check_declared, regular_file
from ._reader import Match, Reader
from ._remote import is_url

__all__ = ["OnnxReader", "read_onnx"]

_CELL = {"LSTM": "LSTM", "GRU": "GRU", "RNN": "SimpleRNN"}
_INPUTS = ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P")
# ONNX activation -> rnnscope's name, for the parameter values rnnscope computes (ONNX defaults).
_ACTIVATIONS: dict[str, tuple[str, dict[str, float]]] = {
    "Sigmoid": ("sigmoid", {}),
    "Tanh": ("tanh", {}),
    "Relu": ("relu", {}),
    "Softsign": ("softsign", {}),
    "Softplus": ("softplus", {}),
    "Elu": ("elu", {"alpha": 1.0}),
    "HardSigmoid": ("hard_sigmoid_keras2", {"alpha": 0.2, "beta": 0.5}),
}
_DEFAULT_ACTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}
_FLOAT_TYPES = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}

Tensors = dict[str, Any]  # name -> TensorProto stored in the file


def _onnx(path: str) -> Any:
    try:
        import onnx
    except ImportError as err:
        raise MissingDependencyError(
            f"reading '{path}' (an ONNX model) needs the onnx package, which is not installed; "
            "install it with: pip install 'rnnscope[onnx]'",
            path=path,
        ) from err
    return onnx


def _load(path: str) -> Any:
    onnx = _onnx(path)
    src: Any = path
    if is_url(path):  # the whole object, once
        import io

        from ._remote import read_all_bytes

        src = io.BytesIO(read_all_bytes(path))
    else:
        regular_file(path)
    try:
        model = onnx.load(src, load_external_data=False)
    except Exception as err:  # protobuf's DecodeError and friends: the file is damaged
        raise FormatError(
            f"'{path}' cannot be read as an ONNX model (damaged or not ONNX): "
            f"{type(err).__name__}: {err}",
            path=path,
        ) from err
    if not model.HasField("graph") or not (model.graph.node or model.graph.initializer):
        raise FormatError(
            f"'{path}' is not an ONNX model: it holds no graph with nodes or initializers",
            path=path,
        )
    return model


# -- tensors -----------------------------------------------------------------------------------
def _stored_tensors(graph: Any) -> Tensors:
    """Initializers and the values of ``Constant`` nodes, by name."""
    found = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            for a in node.attribute:
                if a.name == "value" and a.HasField("t"):
                    found.setdefault(node.output[0], a.t)
    return found


def _dims(path: str, t: Any, what: str) -> tuple[int, ...]:
    dims = tuple(int(d) for d in t.dims)
    if any(d < 0 for d in dims):
        raise FormatError(f"'{path}': {what} has a negative dimension {dims}", path=path)
    return dims


def _itemsize(path: str, t: Any, what: str) -> int:
    import onnx

    try:
        return int(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize)
    except (KeyError, TypeError, ValueError) as err:
        raise FormatError(
            f"'{path}': {what} has an unknown or unsupported element type {t.data_type}",
            path=path,
        ) from err


def _external(path: str, t: Any, what: str, need: int, dims: tuple[int, ...]) -> np.ndarray:
    """A tensor stored in a separate file, which must lie inside the model's folder."""
    import onnx

    info = {e.key: e.value for e in t.external_data}
    loc = info.get("location", "")
    if is_url(path):
        raise FormatError(
            f"'{path}': {what} is stored in external file {loc!r}; rnnscope reads the external "
            "data of local ONNX models only (copy the model and its data to a local folder)",
            path=path,
        )
    folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    target = os.path.realpath(os.path.join(folder, loc)) if loc else ""
    if (
        not loc
        or "\x00" in loc
        or os.path.isabs(loc)
        or os.path.commonpath([folder, target]) != folder
    ):
        raise FormatError(
            f"'{path}': {what} is stored in external file {loc!r}, which is not inside the "
            f"model's folder '{folder}' (refused: rnnscope reads no file outside it)",
            path=path,
        )
    try:
        size = regular_file(target)
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else need
    except (FormatError, ValueError) as err:
        raise FormatError(f"'{path}': {what} in external file {loc!r}: {err}", path=path) from err
    if offset < 0 or length != need or offset + need > size:
        raise FormatError(
            f"'{path}': {what} {dims} needs {need} bytes in external file {loc!r}; it declares "
            f"offset {offset} and length {length}, and the file holds {size} bytes",
            path=path,
        )
    check_declared(path, what, need, need)
    with open(target, "rb") as fh:
        fh.seek(offset)
        raw = fh.read(need)
    if len(raw) != need:
        raise FormatError(f"'{path}': {what} is cut short in {loc!r}", path=path)
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.data_type)).newbyteorder("<")
    return np.frombuffer(raw, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _array(path: str, t: Any, what: str) -> np.ndarray:
    """A stored tensor as a fresh read-only array, its size checked before it is converted."""
    from onnx import TensorProto, helper, numpy_helper

    dims = _dims(path, t, what)
    need = math.prod(dims) * _itemsize(path, t, what)
    if t.data_location == TensorProto.EXTERNAL:
        return readonly(np.array(_external(path, t, what, need, dims)))
    if t.HasField("raw_data"):
        stored = len(t.raw_data)
        if stored != need:
            raise FormatError(
                f"'{path}': {what} declares shape {dims} ({need} bytes) but stores {stored} bytes",
                path=path,
            )
    else:  # typed fields (float_data, ...): one entry per value
        field = helper.tensor_dtype_to_field(t.data_type)
        stored = len(getattr(t, field))
        if stored != math.prod(dims):
            raise FormatError(
                f"'{path}': {what} declares shape {dims} ({math.prod(dims)} values) but stores "
                f"{stored}",
                path=path,
            )
        stored = need
    check_declared(path, what, need, stored)
    try:
        a = numpy_helper.to_array(t)
    except Exception as err:  # a malformed tensor of any other kind
        raise FormatError(f"'{path}': {what} cannot be read: {err}", path=path) from err
    if a.dtype not in (np.float16, np.float32, np.float64):
        a = a.astype(np.float32)  # bfloat16 (numpy has none)
    return readonly(np.array(a))


# -- recurrent nodes ---------------------------------------------------------------------------
def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        elif isinstance(v, list):
            v = [x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in v]
        out[a.name] = v
    return out


def _activations(op: str, at: dict[str, Any], n_dirs: int) -> tuple[list[str], str]:
    """rnnscope names of ``f, g[, h]``, or ``([], why)`` when its cells cannot compute them."""
    names = list(at.get("activations") or _DEFAULT_ACTS[op] * n_dirs)
    per = len(_DEFAULT_ACTS[op])
    if len(names) != per * n_dirs:
        return [], f"{len(names)} activations for {n_dirs} direction(s); expected {per} each"
    if n_dirs == 2 and names[:per] != names[per:]:
        return [], f"the directions use different activations {names[:per]} and {names[per:]}"
    names = names[:per]
    alphas, betas = list(at.get("activation_alpha") or []), list(at.get("activation_beta") or [])
    out = []
    for n in names:
        if n not in _ACTIVATIONS:
            return [], f"activation {n} is not supported (supported: {', '.join(_ACTIVATIONS)})"
        key, params = _ACTIVATIONS[n]
        given = {}
        # alpha/beta lists hold one value per activation that takes them, in order
        if "alpha" in params and alphas:
            given["alpha"] = alphas.pop(0)
        if "beta" in params and betas:
            given["beta"] = betas.pop(0)
        if any(not math.isclose(v, params[p], rel_tol=1e-6) for p, v in given.items()):
            return [], f"activation {n} with parameters {given} (only {params} is computed)"
        out.append(key)
    if op == "LSTM" and out[1] != out[2]:
        return [], f"LSTM cell activation g={names[1]} differs from output activation h={names[2]}"
    return out, ""


def _why_not(op: str, at: dict[str, Any], acts_why: str, p: np.ndarray | None) -> str:
    """Why the node cannot be traced as one of rnnscope's cells ("" when it can)."""
    if at.get("clip") is not None:
        return f"clip={at['clip']:g} (cell inputs clipped; rnnscope's cells do not clip)"
    if at.get("input_forget", 0):
        return "input_forget=1 (coupled input and forget gates)"
    if p is not None and np.any(p):
        return "non-zero peephole weights P"
    return acts_why


class _Node:
    """One recurrent node: its name, operator, attributes and stored weight inputs."""

    def __init__(self, path: str, node: Any, name: str, stored: Tensors) -> None:
        self.path, self.node, self.name, self.op = path, node, name, node.op_type
        self.at = _attrs(node)
        ins = list(node.input) + [""] * (len(_INPUTS) - len(node.input))
        self.inputs = dict(zip(_INPUTS, ins, strict=False))
        self.stored = stored
        direction = self.at.get("direction", "forward")
        if direction not in ("forward", "reverse", "bidirectional"):
            raise FormatError(
                f"'{path}': {self.op} node '{name}' has direction {direction!r}; expected "
                "forward, reverse or bidirectional",
                path=path,
                layer=name,
            )
        self.direction = direction
        self.n_dirs = 2 if direction == "bidirectional" else 1
        self.weights = [k for k in ("W", "R", "B", "P") if self.inputs[k]]

    def missing(self) -> list[str]:
        """Weight inputs that are computed by the graph rather than stored."""
        return [k for k in self.weights if self.inputs[k] not in self.stored]

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: tuple(int(d) for d in self.stored[self.inputs[k]].dims) for k in self.weights}

    def read(self, key: str) -> np.ndarray:
        what = f"{self.op} node '{self.name}' input {key} ('{self.inputs[key]}')"
        return _array(self.path, self.stored[self.inputs[key]], what)

    def check(self) -> int:
        """The hidden size, after checking the weights' types and shapes against each other."""
        for k in self.weights:
            if self.stored[self.inputs[k]].data_type not in _FLOAT_TYPES:
                raise FormatError(
                    f"'{self.path}': {self.op} node '{self.name}' input {k} is not a "
                    f"floating-point tensor (element type {self.stored[self.inputs[k]].data_type})",
                    path=self.path,
                    layer=self.name,
                )
        s, n = self.shapes(), len(GATES[_CELL[self.op]])
        w, r = s["W"], s["R"]
        hidden = r[2] if len(r) == 3 else -1
        ok = len(w) == 3 and len(r) == 3 and hidden > 0 and w[0] == r[0] == self.n_dirs
        ok = ok and w[1] == r[1] == n * hidden
        ok = ok and s.get("B", (self.n_dirs, 2 * n * hidden)) == (self.n_dirs, 2 * n * hidden)
        ok = ok and int(self.at.get("hidden_size", hidden)) == hidden
        if not ok:
            raise FormatError(
                f"'{self.path}': {self.op} node '{self.name}' ({self.direction}, "
                f"hidden_size={self.at.get('hidden_size')}): expected W (directions, "
                f"{n}*hidden, input), R (directions, {n}*hidden, hidden) and B (directions, "
                f"{2 * n}*hidden); found {', '.join(f'{k} {v}' for k, v in s.items())}",
                path=self.path,
                layer=self.name,
            )
        return hidden


def _rnn_ref(nd: _Node, notes: list[str]) -> LayerRef:
    cell = _CELL[nd.op]
    nd.check()
    acts, acts_why = _activations(nd.op, nd.at, nd.n_dirs)
    p = nd.read("P") if "P" in nd.weights else None
    why = _why_not(nd.op, nd.at, acts_why, p)
    if why:
        notes.append(
            f"layer '{nd.name}': ONNX {nd.op} with {why}: listed with its raw tensors only "
            "(not split into gates, not traced)"
        )
        kind = f"{nd.op} ({why.split(' (')[0]}: not a supported cell)"
        info = LayerInfo(nd.name, kind, nd.shapes(), recurrent=False)
        return LayerRef(
            info, lambda: LayerWeights(nd.name, kind, {k: nd.read(k) for k in nd.weights})
        )
    if p is not None:
        notes.append(f"layer '{nd.name}': peephole weights P are all zero (no effect): ignored")
    if nd.inputs["sequence_lens"]:
        notes.append(
            f"layer '{nd.name}': the node takes sequence_lens at run time; traces run every "
            "timestep (pass a batch of equal lengths)"
        )
    directions = ["forward", "backward"] if nd.n_dirs == 2 else ["forward"]
    shapes = nd.shapes()
    info_shapes = {k: v for k, v in shapes.items() if k != "P"}

    def extract() -> RNNWeights:
        w, r = nd.read("W"), nd.read("R")
        b = nd.read("B") if "B" in nd.weights else None
        arrays: dict[tuple[str, str], np.ndarray] = {}
        for k, d in enumerate(directions):
            parts = canonical_from_onnx(cell, w[k], r[k], None if b is None else b[k])
            arrays.update({(part, d): a for part, a in parts.items()})
        return RNNWeights.from_parts(
            nd.name,
            cell,
            arrays,
            kind=nd.op,
            activation=acts[-1],
            recurrent_activation=acts[0] if cell != "SimpleRNN" else None,
            reset_after=bool(nd.at.get("linear_before_reset", 0)) if cell == "GRU" else None,
            go_backwards=nd.direction == "reverse",
            source=f"file:{nd.path}",
        )

    return LayerRef(LayerInfo(nd.name, nd.op, info_shapes, recurrent=True), extract)


def _node_name(node: Any, k: int, seen: set[str]) -> str:
    base = node.name.lstrip("/") or f"{node.op_type}_{k}"
    name, n = base, 1
    while name in seen:
        n += 1
        name = f"{base}_{n}"
    seen.add(name)
    return name


def _input_names(node: Any) -> list[str]:
    """The operator schema's names of the node's inputs (``A``, ``B``, ``C`` for Gemm)."""
    import onnx

    try:
        schema = onnx.defs.get_schema(node.op_type, domain=node.domain or "")
        formal = [i.name for i in schema.inputs]
    except Exception:  # an operator onnx does not know (custom domains): positions
        formal = []
    return [formal[k] if k < len(formal) else f"input{k}" for k in range(len(node.input))]


def _generic_ref(path: str, node: Any, name: str, stored: Tensors) -> LayerRef | None:
    keys = [
        (label, tname)
        for label, tname in zip(_input_names(node), node.input, strict=True)
        if tname in stored and stored[tname].data_type in _FLOAT_TYPES and stored[tname].dims
    ]
    if not keys:
        return None
    shapes = {label: tuple(int(d) for d in stored[t].dims) for label, t in keys}
    info = LayerInfo(name, node.op_type, shapes, recurrent=False)

    def extract() -> LayerWeights:
        arrays = {
            label: _array(path, stored[t], f"{node.op_type} node '{name}' input {label}")
            for label, t in keys
        }
        return LayerWeights(name, node.op_type, arrays)

    return LayerRef(info, extract)


def read_onnx(path: str) -> Checkpoint:
    """Open an ONNX model and list its recurrent nodes and the other nodes with weights."""
    model = _load(path)
    graph = model.graph
    stored = _stored_tensors(graph)
    inits = {t.name for t in graph.initializer}  # plain layers: weights, not Constant nodes
    notes: list[str] = []
    refs: list[LayerRef] = []
    seen: set[str] = set()
    used: set[str] = set()
    for k, node in enumerate(graph.node):
        if node.op_type == "Constant":
            continue
        if node.op_type in ("Loop", "Scan"):
            notes.append(
                f"node '{node.name or node.op_type}' is a {node.op_type}: a recurrent layer "
                "exported as a loop (not an LSTM/GRU/RNN node) is not read"
            )
        name = _node_name(node, k, seen)
        if node.op_type in _CELL and node.domain in ("", "ai.onnx"):
            nd = _Node(path, node, name, stored)
            if "W" not in nd.weights or "R" not in nd.weights:
                raise FormatError(
                    f"'{path}': {node.op_type} node '{name}' lacks its W or R input",
                    path=path,
                    layer=name,
                )
            missing = nd.missing()
            if missing:
                notes.append(
                    f"layer '{name}': ONNX {node.op_type} whose {', '.join(missing)} are computed "
                    "in the graph, not stored: not read"
                )
                continue
            refs.append(_rnn_ref(nd, notes))
            used.update(node.input)
            continue
        fresh = [t for t in node.input if t not in used and t in inits]
        ref = _generic_ref(path, _Sub(node, fresh), name, stored)
        if ref is not None:
            refs.append(ref)
            used.update(fresh)
    producer = " ".join(x for x in (model.producer_name, model.producer_version) if x)
    return Checkpoint(path, "onnx", tuple(refs), tuple(notes), f"onnx ({producer or 'unknown'})")


# A serialised ModelProto starts with its ir_version (field 1, a small varint), then one of the
# fields that follow it in field order: producer_name, producer_version, domain, model_version,
# doc_string, graph, opset_import, metadata_props.
_NEXT_FIELD = frozenset(b"\x12\x1a\x22\x28\x32\x3a\x42\x72")


class OnnxReader(Reader):
    """ONNX models: a protobuf with no magic number; its usual first bytes, else the name."""

    name = "onnx"
    description = "ONNX model (.onnx: LSTM, GRU and RNN operators)"
    suffixes = (".onnx",)

    def guess_can_open(self, path: str, head: bytes) -> Match:
        if len(head) >= 3 and head[0] == 0x08 and 1 <= head[1] <= 30 and head[2] in _NEXT_FIELD:
            return Match.CONTENT
        return Match.NAME if self.named(path) else Match.NO

    def open(self, path: str) -> Checkpoint:
        return read_onnx(path)


class _Sub:
    """A node seen with some inputs blanked (weights an earlier layer already listed)."""

    def __init__(self, node: Any, keep: list[str]) -> None:
        self.op_type, self.domain = node.op_type, node.domain
        self.input = [t if t in keep else "" for t in node.input]
