"""Choosing one layer among a source's layers: by name, unique name substring or index.

A leaf beside the data model: the public functions, the monitors and the ``Checkpoint`` methods
all pick layers here, so every source reports a bad ``layer=`` the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import LayerError
from ._model import LayerWeights, RNNWeights

if TYPE_CHECKING:
    from ._refs import LayerRef

__all__ = ["LayerKey", "describe", "pick", "pick_rnn", "select"]

LayerKey = str | int | None


def describe(refs: list[LayerRef]) -> str:
    """``"lstm (LSTM), dense (Dense)"``: the layers for a message."""
    return ", ".join(f"{r.info.name} ({r.info.kind})" for r in refs) or "none"


def select(
    refs: list[LayerRef],
    layer: LayerKey,
    source: str,
    *,
    recurrent: bool,
    path: str | None = None,
) -> LayerRef:
    """Pick one layer by exact name, then unique substring, then index; None: the only candidate.

    Args:
        refs: the source's layers, in order.
        layer: what the caller asked for.
        source: the source's name, for messages (``"file 'm.keras'"``).
        recurrent: with ``layer=None``, choose among recurrent layers only.
        path: the source's file, if it is one (carried by the error as ``.path``).

    Raises:
        LayerError: no such layer, or more than one; ``.layer`` is what was asked for and
            ``.argument`` is ``"layer"``.
    """

    def fail(message: str) -> LayerError:
        return LayerError(message, path=path, layer=layer, argument="layer")

    if not refs:
        raise fail(f"{source} has no layers with weights (is the model built?)")
    if layer is None:
        pool = [r for r in refs if r.info.recurrent] if recurrent else refs
        if len(pool) == 1:
            return pool[0]
        if not pool:
            raise fail(
                f"{source} has no recurrent layers rnnscope can split into gates; "
                f"layers with weights: {describe(refs)}"
            )
        what = "recurrent layers" if recurrent else "layers with weights"
        raise fail(
            f"{source} has {len(pool)} {what}; choose one with layer= (a name or an index): "
            f"{describe(pool)}"
        )
    if isinstance(layer, bool) or not isinstance(layer, (str, int)):
        raise LayerError(
            f"layer= must be a name, a name substring or an index; got {layer!r}",
            path=path,
            argument="layer",
        )
    if isinstance(layer, int):
        if not -len(refs) <= layer < len(refs):
            raise fail(
                f"layer index {layer} is out of range for {source}, which has {len(refs)} layers "
                f"with weights: {describe(refs)}"
            )
        return refs[layer]
    exact = [r for r in refs if r.info.name == layer]
    if len(exact) == 1:
        return exact[0]
    if exact:
        raise fail(
            f"layer name '{layer}' is ambiguous in {source}: {len(exact)} layers carry it; "
            f"choose one by index: {describe(refs)}"
        )
    found = [r for r in refs if layer in r.info.name]
    if len(found) == 1:
        return found[0]
    if found:
        raise fail(f"layer name '{layer}' is ambiguous in {source}; it matches: {describe(found)}")
    raise fail(f"layer '{layer}' not found in {source}; layers with weights: {describe(refs)}")


def pick(
    refs: list[LayerRef], layer: LayerKey, source: str, path: str | None = None
) -> RNNWeights | LayerWeights:
    """The weights of the layer :func:`select` picks among all layers."""
    return select(refs, layer, source, recurrent=False, path=path).extract()


def pick_rnn(
    refs: list[LayerRef], layer: LayerKey, source: str, path: str | None = None
) -> RNNWeights:
    """The weights of the recurrent layer :func:`select` picks; a LayerError for any other."""
    ref = select(refs, layer, source, recurrent=True, path=path)
    if not ref.info.recurrent:
        raise LayerError(
            f"layer '{ref.info.name}' in {source} is a {ref.info.kind}, not a recurrent layer "
            f"rnnscope can split into gates; use rnnscope.weights() for its named weights. "
            f"Recurrent layers: {describe([r for r in refs if r.info.recurrent])}",
            path=path,
            layer=ref.info.name,
            argument="layer",
        )
    rec = ref.extract()
    assert isinstance(rec, RNNWeights)
    return rec
