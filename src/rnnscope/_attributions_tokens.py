"""Integer token inputs: attributions at an embedding layer's output.

A text model's input is a sequence of integer token ids, which have no gradient. Attributions
are taken at the output of its embedding layer instead (Keras ``Embedding``, torch
``nn.Embedding``), as Captum's layer methods do: the model runs on the real tokens, so masks
computed from them (``Embedding(mask_zero=True)``, lengths read from the ids) are the real ones,
while the embedding layer's output is replaced by the tensor being differentiated (a scaled
embedding, for integrated gradients). :class:`Injection` does the replacing, for one forward
pass, and leaves the layer as it was.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ._errors import InputError, UnsupportedError

__all__ = ["Injection", "check_tokens", "find_embedding", "token_baseline", "vocabulary"]


def _embeddings(model: Any, torch: bool) -> list[tuple[str, Any]]:
    if torch:
        nn = importlib.import_module("torch.nn")
        return [(n or "model", m) for n, m in model.named_modules() if isinstance(m, nn.Embedding)]
    layers = getattr(model, "_flatten_layers", None)
    found = layers() if layers else []
    return [(layer.name, layer) for layer in found if type(layer).__name__ == "Embedding"]


def find_embedding(model: Any, torch: bool, name: str | None) -> tuple[str, Any]:
    """The embedding layer whose output token inputs are attributed at: the model's only one,
    or the one named ``name``."""
    found = _embeddings(model, torch)
    names = [n for n, _ in found]
    if name is not None:
        for n, layer in found:
            if n == name:
                return n, layer
        raise InputError(
            f"embedding: no Embedding layer named {name!r}; the model has: "
            f"{', '.join(names) or 'none'}",
            argument="embedding",
        )
    if len(found) == 1:
        return found[0]
    if not found:
        raise InputError(
            "x: integer token inputs are attributed at an Embedding layer's output, and the "
            "model has no Embedding layer; pass float inputs",
            argument="x",
        )
    raise InputError(
        f"embedding: the model has {len(found)} Embedding layers ({', '.join(names)}); name the "
        "one to attribute at with embedding=",
        argument="embedding",
    )


class Injection:
    """Replaces an embedding layer's output by a given tensor during forward passes.

    Args:
        layer: a Keras/tf-keras ``Embedding`` or a torch ``nn.Embedding``.
        torch: whether ``layer`` is a torch module.
    """

    def __init__(self, layer: Any, torch: bool) -> None:
        self.layer = layer
        self.torch = torch

    @contextmanager
    def replacing(self, value: Any) -> Iterator[None]:
        """Within the block, the layer outputs ``value`` (its shape must match its output)."""
        if self.torch:
            handle = self.layer.register_forward_hook(lambda _m, _i, _o: value)
            try:
                yield
            finally:
                handle.remove()
            return
        had = "call" in vars(self.layer)
        saved = vars(self.layer).get("call")

        def call(*_args: Any, **_kwargs: Any) -> Any:
            return value

        object.__setattr__(self.layer, "call", call)
        try:
            yield
        finally:
            if had:
                object.__setattr__(self.layer, "call", saved)
            else:
                object.__delattr__(self.layer, "call")

    def embed(self, tokens: np.ndarray) -> np.ndarray:
        """The layer's own output for ``tokens``, as a numpy array."""
        if self.torch:
            torch = importlib.import_module("torch")
            p = next(self.layer.parameters())
            with torch.no_grad():
                out = self.layer(torch.from_numpy(np.ascontiguousarray(tokens)).to(p.device))
            return np.asarray(out.detach().cpu().numpy())
        out = self.layer(np.ascontiguousarray(tokens))
        if hasattr(out, "detach"):  # Keras 3 on torch
            out = out.detach().cpu()
        if hasattr(out, "numpy"):
            return np.asarray(out.numpy())
        return np.asarray(importlib.import_module("keras").ops.convert_to_numpy(out))


def check_tokens(tokens: np.ndarray, layer_name: str, vocabulary: int) -> None:
    """Token ids of ``(batch, time)`` inside the vocabulary, or an error naming the layer."""
    if tokens.ndim != 2:
        raise InputError(
            f"x: integer token inputs must be (batch, time); got shape {tokens.shape}",
            argument="x",
        )
    if tokens.size and (tokens.min() < 0 or tokens.max() >= vocabulary):
        raise InputError(
            f"x: token ids must be in [0, {vocabulary}) for Embedding '{layer_name}'; got "
            f"{tokens.min()}..{tokens.max()}",
            argument="x",
        )


def vocabulary(layer: Any, torch: bool) -> int:
    """The number of token ids the layer embeds."""
    size = layer.num_embeddings if torch else getattr(layer, "input_dim", None)
    if size is None:
        raise UnsupportedError(f"Embedding '{layer.name}' has no input_dim")
    return int(size)


def token_baseline(baseline: Any, emb: np.ndarray, inj: Injection, tokens: np.ndarray) -> Any:
    """The baseline in embedding space: None (zeros), token ids (an int or an int array
    broadcastable to the tokens: their embedding) or floats (embedding vectors)."""
    if baseline is None:
        return np.zeros_like(emb)
    arr = np.asarray(baseline)
    if arr.dtype.kind in "iu":
        try:
            ids = np.ascontiguousarray(np.broadcast_to(arr, tokens.shape))
        except ValueError as err:
            raise InputError(
                f"baseline: token ids must broadcast to the tokens' {tokens.shape}; got shape "
                f"{arr.shape}",
                argument="baseline",
            ) from err
        return inj.embed(ids).astype(emb.dtype)
    return baseline
