"""The report's attributions section: which inputs, at which timesteps, drove each model's output.

Given the report's sources and an input, every source Keras or torch can run (a live model, or
a ``.keras``/``.h5`` file Keras 3 loads in safe mode) gets integrated gradients of its predicted
class: the per-timestep figure of the first sample, a table of each sample's strongest
timesteps, the convergence delta, and for token inputs the words coloured by attribution. The
first such model also gets an explorer page written beside the report, linked from the section.
Sources that cannot be run (weights-only files, state dicts) are listed with the reason.
Everything is HTML built here with every name escaped; figures are data URIs, so the report
stays self-contained.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import InputError, RnnscopeError

__all__ = ["attributions_section", "check_words", "token_html"]

_MAX_SAMPLES = 20  # rows of the table and of coloured tokens
_ENDS = 3  # with many sources, the first and last this many are attributed


def token_html(words: Sequence[Any], values: np.ndarray, scale: float | None = None) -> str:
    """One sample's tokens as HTML spans, red for positive and blue for negative attribution
    (opacity by magnitude, relative to ``scale``: the largest ``|value|`` by default), each with
    its value as a tooltip.

    Example:
        >>> token_html(["good", "film"], np.array([0.5, -1.0]))[:6]
        '<span '
    """
    vals = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(words) != len(vals):
        raise InputError(
            f"tokens: expected one word per timestep ({len(vals)}); got {len(words)}",
            argument="tokens",
        )
    top = scale if scale else float(np.nanmax(np.abs(vals))) if vals.size else 0.0
    spans = []
    for word, v in zip(words, vals, strict=True):
        a = 0.0 if not top or not np.isfinite(v) else min(abs(v) / top, 1.0)
        rgb = "220,38,38" if v > 0 else "37,99,235"
        spans.append(
            f'<span class="tok" style="background:rgba({rgb},{a:.2f});padding:1px 3px;'
            f'margin:1px;border-radius:3px" title="{v:.4g}">{html.escape(str(word))}</span>'
        )
    return " ".join(spans)


def _runnable(source: Any) -> tuple[str, Any]:
    """``(name, live model)``, loading a ``.keras``/``.h5`` file with Keras 3."""
    if isinstance(source, (str, os.PathLike)):
        from ._attributions_fw import load_keras_model

        return Path(source).name, load_keras_model(os.fspath(source))
    from ._frameworks import find_framework, type_name

    if find_framework(source) is None:
        raise InputError(f"{type_name(source)} is not a model Keras or torch can run")
    return str(getattr(source, "name", None) or type(source).__name__), source


def _table(a: Any) -> str:
    per = a.per_timestep
    rows = []
    for i in range(min(len(per), _MAX_SAMPLES)):
        order = np.argsort(-np.abs(per[i]))[:3]
        tops = ", ".join(f"t={t}: {per[i, t]:+.3g}" for t in order)
        target = a.target.get("index", a.target.get("unit", ""))
        if isinstance(target, list):
            target = target[i]
        d = "" if a.delta is None else f"{a.delta[i]:.2g}"
        rows.append(f"<tr><td>{i}</td><td>{target}</td><td class='t'>{tops}</td><td>{d}</td></tr>")
    head = "<tr><th>sample</th><th>class</th><th class='t'>strongest timesteps</th><th>delta</th>"
    return f"<table><thead>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def check_words(tokens: Any, inputs: Any) -> list[list[str]] | None:
    """``tokens`` as lists of strings, one per timestep of each sample of ``inputs``, or an
    error naming the argument."""
    if tokens is None:
        return None
    b, t = np.shape(inputs)[:2]
    words = [[str(w) for w in row] for row in tokens]
    if len(words) != b or any(len(row) != t for row in words):
        raise InputError(
            f"tokens: expected {b} samples of {t} words (one per timestep); got "
            f"{len(words)} sample(s) of {sorted({len(r) for r in words})} words",
            argument="tokens",
        )
    return words


def _model_block(name: str, model: Any, x: Any, tokens: Any, png: Callable[[Any], str]) -> str:
    from . import plot
    from ._attributions import attributions

    a = attributions(model, x)
    assert not isinstance(a, list)
    words = check_words(tokens, x)
    fig = plot.attributions(a, sample=0, tokens=None if words is None else words[0])
    try:
        img = f'<img alt="attributions of sample 0" src="{png(fig)}">'
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    emb = a.settings.get("embedding")
    space = f" in the output space of '{emb}'" if emb else ""
    delta = float(np.abs(a.delta).max()) if a.delta is not None else float("nan")
    parts = [
        f"<h3>{html.escape(name)}</h3>",
        f"<p>Integrated gradients ({a.settings['n_steps']} steps, {a.settings['rule']}) of "
        f"the predicted class, baseline zeros{html.escape(space)}; largest |convergence "
        f"delta| {delta:.3g} (see <code>rnnscope.attributions</code>).</p>",
        img,
        _table(a),
    ]
    if words is not None:
        scale = float(np.abs(a.per_timestep).max()) or None
        lines = [
            f"<p class='tokens'>{i}: {token_html(words[i], a.per_timestep[i], scale)}</p>"
            for i in range(min(len(words), _MAX_SAMPLES))
        ]
        parts.append("".join(lines))
    return "".join(parts)


def _traced(model: Any, x: np.ndarray, layer_input: np.ndarray) -> Any:
    """The model itself, or for a Keras layer that receives a mask (``mask_zero=True``) that
    layer's trace with the mask Keras computes from ``x``."""
    from ._api import trace
    from ._capture import masks

    if x.dtype.kind not in "iu" or not hasattr(model, "_flatten_layers"):
        return model
    for name, mask in masks(model, x).items():
        if mask is not None:
            return trace(model, layer_input, name, mask=mask)
    return model


def _explorer(
    model: Any, x: np.ndarray, tokens: Any, out: Path, report_path: Path
) -> tuple[str, str]:
    """Writes the explorer page of the model's first recurrent layer; ``(html, note)``."""
    from ._explore import explore, explorer_section

    try:
        layer_input = x
        if x.dtype.kind in "iu":  # the recurrent layer reads the embedding's output
            from ._attributions_tokens import Injection, find_embedding
            from ._frameworks import find_framework

            torch = getattr(find_framework(model), "name", "") == "torch"
            layer_input = Injection(find_embedding(model, torch, None)[1], torch).embed(x)
        explore(_traced(model, x, layer_input), layer_input, tokens=tokens, out=out)
    except RnnscopeError as err:
        return "", f"explorer not written: {err}"
    return explorer_section(out, report_path), ""


def attributions_section(
    sources: Sequence[Any],
    inputs: Any,
    out: str | os.PathLike[str],
    png: Callable[[Any], str],
    tokens: Any = None,
    explorer: bool = True,
) -> str:
    """The section's HTML: one block per source that can be run on ``inputs``.

    Args:
        sources: the report's sources (live models and paths).
        inputs: ``(batch, time, features)`` floats or ``(batch, time)`` token ids.
        out: the report's path (a folder for a multi-page report).
        png: turns a Matplotlib figure into a data URI.
        tokens: one word per timestep per sample, shown coloured by attribution.
        explorer: write an explorer page of the first runnable model beside the report.
    """
    x = np.asarray(inputs)
    if x.dtype.kind == "f":
        x = x.astype(np.float32, copy=False)
    blocks, skipped = [], []
    link = ""
    sources = list(sources)
    if len(sources) > 2 * _ENDS:
        skipped.append(
            f"<li>{len(sources) - 2 * _ENDS} of the {len(sources)} sources: the section "
            f"attributes the first {_ENDS} and the last {_ENDS}</li>"
        )
        sources = sources[:_ENDS] + sources[-_ENDS:]
    folder = os.fspath(out).endswith(("/", os.sep)) or Path(out).is_dir()
    report_path = Path(out) / "index.html" if folder else Path(out)
    for source in sources:
        try:
            name, model = _runnable(source)
            blocks.append(_model_block(name, model, x, tokens, png))
        except RnnscopeError as err:  # e.g. weights only, a state dict, a folder
            label = Path(source).name if isinstance(source, (str, os.PathLike)) else "model"
            skipped.append(f"<li>{html.escape(label)}: {html.escape(str(err))}</li>")
            continue
        if explorer and not link:
            page = report_path.with_name(report_path.stem + "-explore.html")
            link, note = _explorer(model, x, tokens, page, report_path)
            if note:
                skipped.append(f"<li>{html.escape(note)}</li>")
    if not blocks and not skipped:
        return ""
    notes = f"<p>Not attributed:</p><ul>{''.join(skipped)}</ul>" if skipped else ""
    return (
        '<section id="attributions"><h2>Attributions</h2><p>Which inputs, at which timesteps, '
        f"drove each model's output, for the {len(x)} input sample(s) given.</p>"
        f"{''.join(blocks)}{notes}</section>{link}"
    )
