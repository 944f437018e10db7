"""The names of the widely copied answer that preceded See RNN: ``show_features_0D/1D/2D``
(``get_rnn_gradients`` is in ``_data``). They draw with See RNN's figure functions."""

from __future__ import annotations

from typing import Any

from ._features import features_0D, features_1D, features_2D

__all__ = ["show_features_0D", "show_features_1D", "show_features_2D"]


def show_features_2D(
    data: Any,
    n_rows: int | None = None,
    norm: Any = None,
    cmap: Any = "bwr",
    reflect_half: bool = False,
    timesteps_xaxis: bool = True,
    max_timesteps: int | None = None,
    show_title: Any = True,
    show_colorbar: bool = False,
    show_xy_ticks: Any = (1, 1),
    **kwargs: Any,
) -> tuple[Any, Any]:
    """Per-sample heatmaps (the answer's ``show_features_2D``; ``show_title`` is See RNN's
    ``title``: True or a kind such as ``'grads'``).

    Example:
        >>> from rnnscope.compat.see_rnn import get_gradients
        >>> grads = get_gradients(model, "lstm", x, y)  # (samples, timesteps, channels)
        >>> fig, axes = show_features_2D(grads, n_rows=8, norm=(-1e-4, 1e-4))
    """
    title = "outputs" if show_title is True else show_title
    return features_2D(
        data,
        n_rows=n_rows,
        norm=norm,
        cmap=cmap,
        reflect_half=reflect_half,
        timesteps_xaxis=timesteps_xaxis,
        max_timesteps=max_timesteps,
        title=title,
        show_colorbar=show_colorbar,
        show_xy_ticks=show_xy_ticks,
        **kwargs,
    )


def show_features_1D(
    data: Any,
    n_rows: int | None = None,
    label_channels: bool = True,
    equate_axes: bool = True,
    max_timesteps: int | None = None,
    color: Any = None,
    show_title: Any = True,
    show_xy_ticks: Any = (1, 1),
    **kwargs: Any,
) -> tuple[Any, Any]:
    """One panel per channel, a curve per sample (the answer's ``show_features_1D``).

    Example:
        >>> from rnnscope.compat.see_rnn import get_outputs
        >>> outs = get_outputs(model, "lstm", x)
        >>> fig, axes = show_features_1D(outs[:1], n_rows=8, show_borders=False)
    """
    title = "outputs" if show_title is True else show_title
    return features_1D(
        data,
        n_rows=n_rows,
        annotations="auto" if label_channels else None,
        share_xy=bool(equate_axes),
        max_timesteps=max_timesteps,
        color=color,
        title=title,
        show_xy_ticks=show_xy_ticks,
        **kwargs,
    )


def show_features_0D(
    data: Any,
    marker: str = "o",
    cmap: Any = "bwr",
    color: Any = None,
    show_y_zero: bool = True,
    show_title: Any = True,
    **kwargs: Any,
) -> tuple[Any, Any]:
    """Points per sample, coloured per channel (the answer's ``show_features_0D``).

    Example:
        >>> from rnnscope.compat.see_rnn import get_gradients
        >>> grads = get_gradients(model, "gru", x, y)  # (samples, channels)
        >>> fig, ax = show_features_0D(grads)
    """
    title = "outputs" if show_title is True else show_title
    return features_0D(
        data, marker=marker, cmap=cmap, color=color, show_y_zero=show_y_zero, title=title, **kwargs
    )
