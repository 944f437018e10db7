"""The report's attributions section: which inputs, at which timesteps, drove each model's output.

Given the report's sources and an input, every source Keras or torch can run (a live model, or
a ``.keras``/``.h5`` file Keras 3 loads in safe mode) gets its attributions (integrated
gradients of its predicted class unless options say otherwise, named in a caption): the
per-timestep figure of the first sample, a table of each sample's strongest
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

__all__ = [
    "OPTIONS",
    "attributions_section",
    "caption",
    "check_options",
    "check_words",
    "token_html",
]

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


OPTIONS = (
    "method",
    "target",
    "n_steps",
    "rule",
    "window",
    "stride",
    "n_samples",
    "stdev",
    "absolute",
    "internal_batch_size",
)
"""The options of :func:`rnnscope.attributions` the report's section takes (``attributions=``)."""


def _whole(value: Any, low: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InputError(f"{name}: expected an integer >= {low}; got {value!r}", argument=name)
    return int(value)


def _check_target(target: Any, batch: int, name: str) -> Any:
    def ints(v: Any) -> bool:
        a = np.asarray(v)
        return a.dtype.kind in "iu" and (a.ndim == 0 or (a.ndim == 1 and len(a) == batch))

    ok = target is None or (not isinstance(target, bool) and ints(target))
    if isinstance(target, tuple):
        ok = len(target) == 2 and all(t is not None and ints(t) for t in target)
    if not ok:
        raise InputError(
            f"{name}: expected None (the predicted class), a class/unit index, {batch} indices "
            f"(one per sample) or (timestep, unit); got {target!r}",
            argument=name,
        )
    return target


def check_options(
    options: Any, inputs: Any, label: Callable[[str], str] = lambda k: f"attributions[{k!r}]"
) -> dict[str, Any]:
    """The report's attribution options, checked before any model runs: a dict of some of
    :data:`OPTIONS`, each value of the right kind; errors name the option (``label(key)``)."""
    from ._attributions import RULES, Method

    if options is None:
        return {}
    if not isinstance(options, dict):
        raise InputError(
            f"attributions: expected a dict of options ({', '.join(OPTIONS)}); got "
            f"{type(options).__name__}",
            argument="attributions",
        )
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise InputError(
            f"attributions: unknown option(s) {', '.join(map(repr, unknown))}; expected some of "
            f"{', '.join(OPTIONS)}",
            argument="attributions",
        )
    out = dict(options)
    if "method" in out and out["method"] not in {m.value for m in Method}:
        raise InputError(
            f"{label('method')}: expected one of {', '.join(m.value for m in Method)}; got "
            f"{out['method']!r}",
            argument=label("method"),
        )
    if "rule" in out and out["rule"] not in RULES:
        raise InputError(
            f"{label('rule')}: expected one of {', '.join(RULES)}; got {out['rule']!r}",
            argument=label("rule"),
        )
    shape = np.shape(inputs)
    for key, low in (("n_steps", 2), ("window", 1), ("stride", 1), ("n_samples", 1)):
        if key in out:
            out[key] = _whole(out[key], low, label(key))
    if "window" in out and len(shape) > 1 and out["window"] > shape[1]:
        raise InputError(
            f"{label('window')}: expected at most the {shape[1]} timesteps of the inputs; got "
            f"{out['window']}",
            argument=label("window"),
        )
    if out.get("internal_batch_size") is not None:
        out["internal_batch_size"] = _whole(
            out["internal_batch_size"], 1, label("internal_batch_size")
        )
    stdev = out.get("stdev", 1.0)
    if isinstance(stdev, bool) or not isinstance(stdev, (int, float)) or not stdev > 0:
        raise InputError(
            f"{label('stdev')}: expected a number > 0; got {stdev!r}", argument=label("stdev")
        )
    if "absolute" in out and not isinstance(out["absolute"], bool):
        raise InputError(
            f"{label('absolute')}: expected True or False; got {out['absolute']!r}",
            argument=label("absolute"),
        )
    if "target" in out:
        out["target"] = _check_target(out["target"], shape[0] if shape else 0, label("target"))
    return out


def _target_text(a: Any) -> str:
    t = a.target
    kind = t.get("kind")

    def one(v: Any) -> str:
        vals = v if isinstance(v, list) else [v]
        return str(vals[0]) if len(set(vals)) == 1 else "per sample " + ", ".join(map(str, vals))

    if kind == "class":
        return "the predicted class"
    if kind == "unit":
        return f"output unit {one(t['index'])}"
    if kind == "timestep":
        return f"unit {one(t['unit'])} at timestep {one(t['timestep'])}"
    return str(kind)


def caption(a: Any) -> str:
    """One line saying what an :class:`Attribution` is: the method and its settings, what was
    explained, the baseline (plain text; escape it for HTML).

    Example:
        >>> caption(rnnscope.attributions(model, x, method="occlusion", window=2))[:9]
        'Occlusion'
    """
    st = a.settings
    grads = "absolute" if st.get("absolute") else "signed"
    if a.method == "integrated_gradients":
        method = f"Integrated gradients ({st['n_steps']} steps, {st['rule']})"
    elif a.method == "saliency":
        method = f"Saliency ({grads} gradients)"
    elif a.method == "smoothgrad":
        method = (
            f"SmoothGrad ({st['n_samples']} noisy copies, stdev {st['stdev']:.3g}, {grads} "
            "gradients)"
        )
    elif a.method == "occlusion":
        method = f"Occlusion (windows of {st['window']} timestep(s), stride {st['stride']})"
    else:
        method = "Gradient x input"
    emb = st.get("embedding")
    space = f" in the output space of '{emb}'" if emb else ""
    base = f", baseline zeros{space}" if a.baseline is not None else ""
    return f"{method} of {_target_text(a)}{base}"


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
        parts = [a.target[k] for k in ("index", "timestep", "unit") if k in a.target]
        target = ",".join(str(p[i] if isinstance(p, list) else p) for p in parts)
        d = "" if a.delta is None else f"{a.delta[i]:.2g}"
        rows.append(f"<tr><td>{i}</td><td>{target}</td><td class='t'>{tops}</td><td>{d}</td></tr>")
    head = "<tr><th>sample</th><th>target</th><th class='t'>strongest timesteps</th><th>delta</th>"
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


def _model_block(
    name: str,
    model: Any,
    x: Any,
    tokens: Any,
    png: Callable[[Any], str],
    options: dict[str, Any],
) -> str:
    from . import plot
    from ._attributions import attributions

    a = attributions(model, x, **options)
    assert not isinstance(a, list)
    words = check_words(tokens, x)
    fig = plot.attributions(a, sample=0, tokens=None if words is None else words[0])
    try:
        img = f'<img alt="attributions of sample 0" src="{png(fig)}">'
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    delta = ""
    if a.delta is not None:
        delta = f"; largest |convergence delta| {float(np.abs(a.delta).max()):.3g}"
    parts = [
        f"<h3>{html.escape(name)}</h3>",
        f"<p class='attr-caption'>{html.escape(caption(a))}{delta} (see "
        "<code>rnnscope.attributions</code>).</p>",
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
    options: dict[str, Any] | None = None,
) -> str:
    """The section's HTML: one block per source that can be run on ``inputs``.

    Args:
        sources: the report's sources (live models and paths).
        inputs: ``(batch, time, features)`` floats or ``(batch, time)`` token ids.
        out: the report's path (a folder for a multi-page report).
        png: turns a Matplotlib figure into a data URI.
        tokens: one word per timestep per sample, shown coloured by attribution.
        explorer: write an explorer page of the first runnable model beside the report.
        options: :func:`rnnscope.attributions` options (checked by :func:`check_options`);
            none: integrated gradients of the predicted class, 50 steps.
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
            blocks.append(_model_block(name, model, x, tokens, png, options or {}))
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
