"""The Keras HDF5 trees, walked (in the reader process): the datasets of each layer, in order.

* Keras 3 tree (``.weights.h5``, and inside ``.keras``): ``layers/<key>/vars/{0,1,..}`` with the
  layer's real name in ``vars/@name``; recurrent cells under ``cell/vars``, Bidirectional under
  ``forward_layer``/``backward_layer``, nested models under ``layers/<key>/layers/...``. Variables
  are numbered in creation order.
* Legacy tree (``.h5`` written by Keras 3 or tf-keras): ``[model_weights/]@layer_names`` gives
  the layer order, each layer group's ``@weight_names`` gives its variables in order (attributes
  may be split into ``name0``, ``name1``, ... when long); dataset paths are those names below
  the layer group.

The layer order comes from the model config where the file has one; a Keras 3 ``.weights.h5``
has none, and its order is the order the groups were written in (their HDF5 object addresses).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._errors import FormatError
from ._keras_config import LayerSpec, parse_model_config

__all__ = ["RawLayer", "list_attr", "list_tree", "snake_case"]


@dataclass
class RawLayer:
    """A layer's variables as found in the file, before interpretation.

    ``variables`` maps a direction ("" for one-directional layers) to ``(name, dataset path)``
    pairs in creation order; names are Keras's (``kernel``...) or positions (``"0"``...).
    """

    path: str
    variables: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    class_hint: str = ""  # the layer class, where the tree tells it (Keras 3 group keys)
    cell_index: int | None = None  # the position of a StackedRNNCells cell, listed as a layer


_KEY_CLASSES = {c.lower(): c for c in ("ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")}


def _class_from_key(key: str) -> str:
    """``Dense`` from the Keras 3 group key ``dense_2`` (``ConvLSTM2D`` from ``conv_lstm2d``)."""
    stem = key.rstrip("0123456789").rstrip("_") if key[-1:].isdigit() else key
    if stem.replace("_", "") in _KEY_CLASSES:
        return _KEY_CLASSES[stem.replace("_", "")]
    return "".join(w.capitalize() for w in stem.split("_"))


def _text(v: Any) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def list_attr(obj: Any, name: str) -> list[str]:
    """A list attribute, joined from ``name0``, ``name1``, ... when Keras split it."""
    if name in obj.attrs:
        return [_text(v) for v in np.atleast_1d(obj.attrs[name])]
    out: list[str] = []
    k = 0
    while f"{name}{k}" in obj.attrs:
        out.extend(_text(v) for v in np.atleast_1d(obj.attrs[f"{name}{k}"]))
        k += 1
    return out


def _addr(obj: Any) -> int:
    import h5py

    return int(h5py.h5o.get_info(obj.id).addr)


def _var_list(group: Any) -> list[tuple[str, str]]:
    """Numbered datasets of a Keras 3 ``vars`` group, in order."""
    keys = sorted((k for k in group if k.isdigit()), key=int)
    return [(k, group[k].name) for k in keys]


def snake_case(name: str) -> str:
    """Keras's group key for a class name: ``SimpleRNN`` -> ``simple_rnn``."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _config_keys(spec: LayerSpec) -> dict[str, str]:
    """Group key -> layer name, by Keras's rule: snake-cased class name, numbered on repeats."""
    seen: dict[str, int] = {}
    out = {}
    for child in spec.children:
        base = snake_case(child.class_name)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out[base if n == 0 else f"{base}_{n}"] = child.name
    return out


def _datasets(group: Any, skip: str = "layers") -> list[tuple[str, str]]:
    """Every dataset below ``group`` except under ``skip``: (relative path, absolute path)."""
    import h5py

    found: list[tuple[str, str]] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and not name.startswith(f"{skip}/"):
            found.append((name, obj.name))

    group.visititems(visit)
    return found


def _walk_v3(group: Any, prefix: str, spec: LayerSpec | None, out: list[RawLayer]) -> None:
    if "layers" not in group:
        return
    subs = list(group["layers"].items())
    by_key = _config_keys(spec) if spec is not None else {}
    names = {
        k: _text(g["vars"].attrs["name"])
        if "vars" in g and "name" in g["vars"].attrs
        else by_key.get(k, k)  # tf-keras writes no name attribute: Keras's key rule
        for k, g in subs
    }
    if spec is not None and spec.children:
        rank = {c.name: i for i, c in enumerate(spec.children)}
        subs.sort(key=lambda kv: (rank.get(names[kv[0]], len(rank)), _addr(kv[1])))
    else:
        subs.sort(key=lambda kv: _addr(kv[1]))
    for key, g in subs:
        name = names[key]
        path = f"{prefix}{name}"
        child = spec.find(name) if spec is not None else None
        raw = RawLayer(path, class_hint=_class_from_key(key))
        if "cell" in g and "cells" in g["cell"]:  # RNN over StackedRNNCells: a layer per cell
            cells = sorted(g["cell"]["cells"].values(), key=_addr)  # in creation order
            for k, cg in enumerate(cells):
                variables = {"": _var_list(cg["vars"]) if "vars" in cg else []}
                out.append(RawLayer(f"{path}/cell_{k}", variables, "StackedRNNCells", k))
            continue
        if "forward_layer" in g and "backward_layer" in g:
            for d in ("forward", "backward"):
                sub = g[f"{d}_layer"]
                cell = sub["cell"] if "cell" in sub else sub
                raw.variables[d] = _var_list(cell["vars"]) if "vars" in cell else []
                if "cells" in cell:  # stacked cells: every dataset, by its path
                    raw.variables[d] = _datasets(cell)
        elif "cell" in g and "vars" in g["cell"] and _var_list(g["cell"]["vars"]):
            raw.variables[""] = _var_list(g["cell"]["vars"])
        elif "vars" in g and "layers" in g:
            raw.variables[""] = _var_list(g["vars"])
        else:  # plain layers, and anything else (stacked cells...): every dataset, by its path
            raw.variables[""] = _var_list(g["vars"]) if "vars" in g else []
            if not raw.variables[""] or len(_datasets(g)) != len(raw.variables[""]):
                raw.variables[""] = _datasets(g)
        if any(raw.variables.values()):
            out.append(raw)
        _walk_v3(g, f"{path}/", child, out)


_CELL_PART = re.compile(r"^(?:.*_cell(?:_\d+)?|cell)$")  # a cell's part of a legacy weight name


def _owner(parts: list[str], group_name: str) -> tuple[str, str, str]:
    """(sub-layer path, direction, variable name) of a legacy weight name split on '/'.

    The path always starts at the layer group: Keras 3 puts a Sequential model's name in front
    (``seq/lstm/lstm_cell/kernel`` in group ``lstm``, dropped), while tf-keras leaves a nested
    model's own name out (``lstm/lstm_cell/kernel:0`` in group ``inner``, prefixed). A
    ``forward_``/``backward_`` part is a direction only below the layer's own name.
    """
    var = parts[-1].split(":", 1)[0]
    body = parts[:-1]
    if group_name in body:
        body = body[body.index(group_name) :]
    else:
        body = [group_name, *body]
    direction = ""
    for i, p in enumerate(body[1:], start=1):
        if p.startswith(("forward_", "backward_")):
            direction = "forward" if p.startswith("forward_") else "backward"
            body = body[:i]
            break
        if _CELL_PART.match(p):  # lstm_cell, a user cell gru_cell_7, or tf-keras's cell
            body = body[:i]
            break
    return "/".join(body), direction, var


def _bidirectional_group(lname: str, names: list[str], group: Any) -> RawLayer:
    """A Bidirectional layer group known from the config: the first sub-layer is the forward
    direction and the second the backward one, whatever they are called (an explicit
    ``backward_layer`` in Keras 3 is saved as e.g. ``lstm_2``, with no ``backward_`` prefix)."""
    raw = RawLayer(lname)
    subs: list[str] = []
    for wname in names:
        parts = wname.split("/")
        _, _, var = _owner(parts, lname)
        rest = parts[parts.index(lname) + 1 :] if lname in parts else parts
        sub = rest[0] if len(rest) > 1 else ""
        if sub not in subs:
            subs.append(sub)
        direction = "forward" if subs.index(sub) == 0 else "backward"
        if any(_STACKED.match(p) for p in rest):  # stacked cells: keep each cell's own path
            var = "/".join(p.split(":", 1)[0] for p in rest[1:])
        raw.variables.setdefault(direction, []).append((var, group[wname].name))
    return raw


_STACKED = re.compile(r"^stacked_rnn_cells(?:_\d+)?$")  # the cell holder in legacy weight names


def _walk_legacy(root: Any, spec: LayerSpec | None) -> list[RawLayer]:
    out: list[RawLayer] = []
    for lname in list_attr(root, "layer_names"):
        if lname not in root:
            raise FormatError(
                f"layer '{lname}' is listed in layer_names but has no group", layer=lname
            )
        group = root[lname]
        names = list_attr(group, "weight_names")
        child = spec.find(lname) if spec is not None else None
        if child is not None and child.class_name == "Bidirectional" and names:
            out.append(_bidirectional_group(lname, names, group))
            continue
        by_owner: dict[str, RawLayer] = {}
        cells: dict[str, list[str]] = {}  # owner -> its stacked cells' name parts, in order
        for wname in names:
            parts = wname.split("/")
            at = next((i for i, p in enumerate(parts[:-2]) if _STACKED.match(p)), None)
            if at is None:
                owner, direction, var = _owner(parts, lname)
            else:  # <rnn>/stacked_rnn_cells/<cell>/kernel: the cell is a layer of its own
                owner, direction, var = _owner(parts[:at] + parts[at + 2 :], lname)
                seen = cells.setdefault(owner, [])
                if parts[at + 1] not in seen:
                    seen.append(parts[at + 1])
                k = seen.index(parts[at + 1])
                owner = f"{owner}/cell_{k}"
                if owner not in by_owner:
                    by_owner[owner] = RawLayer(owner, class_hint="StackedRNNCells", cell_index=k)
            raw = by_owner.setdefault(owner, RawLayer(owner))
            raw.variables.setdefault(direction, []).append((var, group[wname].name))
        out.extend(r for r in by_owner.values() if any(r.variables.values()))
    return out


def list_tree(
    f: Any, fmt: str, path: str, config: Any, version: str
) -> tuple[list[RawLayer], dict[str, tuple[int, ...]], list[str], str, Any]:
    """Layers, dataset shapes, notes, Keras version and model config of an open Keras HDF5 file
    (runs in the reader process)."""
    notes: list[str] = []
    legacy = "model_weights" in f or any(k.startswith("layer_names") for k in f.attrs)
    if fmt == "keras" or ("layers" in f and not legacy):
        spec = parse_model_config(config)
        raws: list[RawLayer] = []
        _walk_v3(f, "", spec, raws)
        if spec is None:
            notes.append(
                "no model config in the file: layer order is the order the layers were written in"
            )
        version = version or "3"
    else:
        root = f["model_weights"] if "model_weights" in f else f
        if not any(k.startswith("layer_names") for k in root.attrs):
            raise FormatError(
                f"'{path}' is an HDF5 file but not a Keras model or weights "
                "file (no 'layers' group and no 'layer_names' attribute)",
                path=path,
            )
        raw_cfg = f.attrs.get("model_config")
        config = json.loads(_text(raw_cfg)) if raw_cfg is not None else None
        spec = parse_model_config(config)
        version = _text(f.attrs.get("keras_version", root.attrs.get("keras_version", "")))
        raws = _walk_legacy(root, spec)
    shapes = {
        p: tuple(int(s) for s in f[p].shape)
        for r in raws
        for vs in r.variables.values()
        for _, p in vs
    }
    return raws, shapes, notes, version, config
