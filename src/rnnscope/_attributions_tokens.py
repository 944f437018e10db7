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
from contextlib import ExitStack, contextmanager
from typing import Any

import numpy as np

from ._errors import InputError, UnsupportedError

__all__ = [
    "Injection",
    "check_tokens",
    "embeddings_for_inputs",
    "find_embedding",
    "token_baseline",
    "vocabulary",
]


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


def _seen_inputs(model: Any, torch: bool, run: Any) -> dict[str, list[np.ndarray]]:
    """What each embedding layer receives in one real forward pass (``run()``)."""
    found = _embeddings(model, torch)
    seen: dict[str, list[np.ndarray]] = {n: [] for n, _ in found}
    if torch:
        handles = [
            layer.register_forward_hook(
                lambda _m, i, _o, _n=n: seen[_n].append(i[0].detach().cpu().numpy())
            )
            for n, layer in found
        ]
        try:
            run()
        finally:
            for h in handles:
                h.remove()
        return seen
    from ._attributions_masks import numpy_of, replaced_call

    with ExitStack() as stack:
        for n, layer in found:
            original = type(layer).call.__get__(layer)

            def call(inputs: Any, *a: Any, _n: str = n, _o: Any = original, **k: Any) -> Any:
                seen[_n].append(numpy_of(inputs))
                return _o(inputs, *a, **k)

            stack.enter_context(replaced_call(layer, call))
        run()
    return seen


def embeddings_for_inputs(
    model: Any, torch: bool, xs: list[np.ndarray], names: list[str], embedding: Any, run: Any
) -> dict[int, tuple[str, Any]]:
    """``{input position: (name, layer)}``: the embedding layer of each integer token input.

    ``embedding``: None (one token input: the model's only embedding; several: the embedding
    that receives each input's ids in a real forward pass), a layer name (one token input), or
    a list (one name or None per input) or dict (input name -> layer name).
    """
    tok = [k for k, a in enumerate(xs) if a.dtype.kind in "iu"]
    if isinstance(embedding, dict):
        embedding = [embedding.get(n) for n in names]
    if isinstance(embedding, (list, tuple)):
        if len(embedding) != len(xs):
            raise InputError(
                f"embedding: expected one layer name (or None) per input ({len(xs)}); got "
                f"{len(embedding)}",
                argument="embedding",
            )
        missing = [names[k] for k in tok if embedding[k] is None]
        if missing:
            raise InputError(
                f"embedding: no layer named for token input(s) {', '.join(missing)}",
                argument="embedding",
            )
        return {k: find_embedding(model, torch, embedding[k]) for k in tok}
    if len(tok) == 1:
        return {tok[0]: find_embedding(model, torch, embedding)}
    if embedding is not None:
        raise InputError(
            f"embedding: {len(tok)} token inputs need a list or dict of layer names; got "
            f"{embedding!r}",
            argument="embedding",
        )
    return _match_by_values(model, torch, xs, names, tok, run)


def _match_by_values(
    model: Any, torch: bool, xs: list[np.ndarray], names: list[str], tok: list[int], run: Any
) -> dict[int, tuple[str, Any]]:
    layers = dict(_embeddings(model, torch))
    try:
        seen = _seen_inputs(model, torch, run)
    except (IndexError, ValueError, RuntimeError, TypeError) as err:  # e.g. ids out of range
        vocab = {n: vocabulary(la, torch) for n, la in layers.items()}
        raise InputError(
            f"x: the model failed on the token inputs ({', '.join(names[k] for k in tok)}) "
            f"while finding which Embedding layer embeds each (vocabularies: {vocab}): {err}",
            argument="x",
        ) from err
    out: dict[int, tuple[str, Any]] = {}
    for k in tok:
        hits = [
            n
            for n, got in seen.items()
            for g in got
            if g.shape == xs[k].shape and np.array_equal(g, xs[k])
        ]
        if len(hits) != 1:
            raise InputError(
                f"embedding: cannot tell which Embedding layer embeds token input "
                f"'{names[k]}' ({'none' if not hits else ', '.join(hits)} received its ids); "
                "name them with embedding={input name: layer name}",
                argument="embedding",
            )
        if len(seen[hits[0]]) > 1:
            raise UnsupportedError(
                f"Embedding '{hits[0]}' is called {len(seen[hits[0]])} times in one pass; "
                "attributions replace an embedding's output in one call only",
                layer=hits[0],
            )
        out[k] = (hits[0], layers[hits[0]])
    return out


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
    if tokens.shape[0] == 0 or tokens.shape[1] == 0:
        raise InputError(
            f"x: expected at least one sample and one timestep of token ids; got shape "
            f"{tokens.shape}",
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
    size = getattr(layer, "num_embeddings" if torch else "input_dim", None)
    if size is None:  # a flax nnx.Embed
        size = getattr(layer, "num_embeddings", None)
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
        size = vocabulary(inj.layer, inj.torch)
        if ids.size and (ids.min() < 0 or ids.max() >= size):
            raise InputError(
                f"baseline: token ids must be in [0, {size}) for the embedding; got "
                f"{ids.min()}..{ids.max()}",
                argument="baseline",
            )
        return inj.embed(ids).astype(emb.dtype)
    return baseline
