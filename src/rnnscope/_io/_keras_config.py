"""Keras model configs (``config.json`` of a .keras file, ``model_config`` of a legacy .h5) as a
tree of layer specs, and the settings of a recurrent layer read from its spec."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .._activations import canonical_name

__all__ = ["LayerSpec", "RNNSpec", "parse_model_config", "rnn_spec", "stacked_cell_spec"]

_MODEL_CLASSES = {"Sequential", "Functional", "Model"}
_CELL_OF = {"LSTMCell": "LSTM", "GRUCell": "GRU", "SimpleRNNCell": "SimpleRNN"}
_RNN_CLASSES = {
    "LSTM": "LSTM",
    "GRU": "GRU",
    "SimpleRNN": "SimpleRNN",
    "CuDNNLSTM": "LSTM",
    "CuDNNGRU": "GRU",
}


@dataclass
class LayerSpec:
    """One layer of a config: its name, class and settings; children for nested models."""

    name: str
    class_name: str
    config: dict[str, Any]
    children: list[LayerSpec] = field(default_factory=list)

    def find(self, path: str) -> LayerSpec | None:
        """The spec at ``inner/lstm`` below this one."""
        head, _, rest = path.partition("/")
        for c in self.children:
            if c.name == head:
                return c.find(rest) if rest else c
        return None


@dataclass(frozen=True)
class RNNSpec:
    """What a config says about a recurrent layer."""

    cell: str
    kind: str
    cudnn: bool
    bidirectional: bool
    activation: str
    recurrent_activation: str | None
    reset_after: bool | None
    merge_mode: str | None
    go_backwards: bool


def _layer_list(cfg: Any) -> list[Any]:
    if isinstance(cfg, list):  # very old Keras 2 Sequential configs
        return cfg
    if isinstance(cfg, dict) and isinstance(cfg.get("layers"), list):
        return list(cfg["layers"])
    return []


def _spec(entry: dict[str, Any]) -> LayerSpec:
    cls = str(entry.get("class_name", ""))
    cfg = entry.get("config") if isinstance(entry.get("config"), (dict, list)) else {}
    name = str(entry.get("name") or (cfg.get("name") if isinstance(cfg, dict) else "") or cls)
    children = []
    if cls in _MODEL_CLASSES or (isinstance(cfg, (dict, list)) and _layer_list(cfg)):
        children = [_spec(e) for e in _layer_list(cfg) if isinstance(e, dict)]
    return LayerSpec(name, cls, cfg if isinstance(cfg, dict) else {}, children)


def parse_model_config(cfg: Any) -> LayerSpec | None:
    """The layer tree of a model config, or None if it is not a model config."""
    if not isinstance(cfg, dict) or "class_name" not in cfg:
        return None
    return _spec(cfg)


def _activation_name(value: Any, keras2: bool) -> str:
    if value is None:
        return "linear"
    if isinstance(value, dict):  # a serialised function: builtin by name, or a custom one
        inner = value.get("config")
        name = inner if isinstance(inner, str) else value.get("registered_name") or "?"
        module = str(value.get("module", ""))
        if module.startswith("keras.") or module == "keras":
            value = name
        else:
            return f"custom:{name}"
    name = str(value)
    if keras2 and name == "hard_sigmoid":
        return "hard_sigmoid_keras2"
    return canonical_name(name)


def _same_directions(forward: dict[str, Any], backward: Any) -> bool:
    """An explicit ``backward_layer`` must be the same kind of layer with the same settings."""
    if not isinstance(backward, dict):
        return True  # none given: Keras copies the forward layer
    f, b = forward.get("config") or {}, backward.get("config") or {}
    keys = ("units", "activation", "recurrent_activation", "use_bias", "reset_after")
    return forward.get("class_name") == backward.get("class_name") and all(
        f.get(k) == b.get(k) for k in keys
    )


def rnn_spec(spec: LayerSpec, keras2: bool) -> RNNSpec | None:
    """Recurrent settings of a layer spec; None if it is not a recurrent layer rnnscope reads."""
    cls, cfg = spec.class_name, spec.config
    bidirectional, merge_mode = False, None
    if cls == "Bidirectional":
        inner = cfg.get("layer", {})
        if not isinstance(inner, dict) or not _same_directions(inner, cfg.get("backward_layer")):
            return None
        bidirectional, merge_mode = True, cfg.get("merge_mode", "concat")
        cls, cfg = str(inner.get("class_name", "")), inner.get("config", {}) or {}
    if cls == "RNN":
        cell = cfg.get("cell", {})
        if not isinstance(cell, dict) or cell.get("class_name") not in _CELL_OF:
            return None
        kind_cell = _CELL_OF[cell["class_name"]]
        settings = {**(cell.get("config") or {}), "go_backwards": cfg.get("go_backwards", False)}
    elif cls in _RNN_CLASSES:
        kind_cell, settings = _RNN_CLASSES[cls], cfg
    else:
        return None
    cudnn = cls.startswith("CuDNN")
    act = "tanh" if cudnn else _activation_name(settings.get("activation", "tanh"), keras2)
    ract = None
    if kind_cell != "SimpleRNN":
        ract = (
            "sigmoid"
            if cudnn
            else _activation_name(settings.get("recurrent_activation", "sigmoid"), keras2)
        )
    reset_after = None
    if kind_cell == "GRU":
        reset_after = True if cudnn else bool(settings.get("reset_after", not keras2))
    return RNNSpec(
        cell=kind_cell,
        kind="Bidirectional" if bidirectional else cls,
        cudnn=cudnn,
        bidirectional=bidirectional,
        activation=act,
        recurrent_activation=ract,
        reset_after=reset_after,
        merge_mode=merge_mode,
        go_backwards=bool(settings.get("go_backwards", False)) and not bidirectional,
    )


def stacked_cell_spec(spec: LayerSpec, index: int, keras2: bool) -> RNNSpec | None:
    """Settings of cell ``index`` of an ``RNN`` over ``StackedRNNCells``, as a layer of its own;
    None if the spec has no such cell or rnnscope does not read it.

    Only the first cell sees the input reversed by ``go_backwards``: each next cell reads the
    outputs of the one below in the order they were computed.
    """
    cell = spec.config.get("cell")
    cells = (cell.get("config") or {}).get("cells") if isinstance(cell, dict) else None
    if spec.class_name != "RNN" or not isinstance(cells, list) or not 0 <= index < len(cells):
        return None
    back = bool(spec.config.get("go_backwards", False)) and index == 0
    one = LayerSpec(spec.name, "RNN", {"cell": cells[index], "go_backwards": back})
    rs = rnn_spec(one, keras2)
    return None if rs is None else replace(rs, kind="StackedRNNCells")
