"""The Keras training monitor's logic, shared by Keras 3 (:mod:`._keras`) and tf-keras
(:mod:`._tf_keras`).

Nothing here imports a Keras: each front end supplies its backend name and tensor conversion.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._api import LayerKey
from .._errors import InputError
from .._frameworks import KerasFramework
from .._model import LayerWeights, RNNWeights
from ._keras_tap import GradientTap
from ._layers import chosen_refs
from ._recorder import Recorder
from ._timesteps import held_mask, timestep_norms

__all__ = ["MonitorLogic"]


class MonitorLogic:
    """Record per-gate statistics every ``every`` training batches (Keras 3 on any backend,
    and tf-keras).

    Per (step, layer, part, gate, direction): weight norm, mean, std, abs max, near-zero
    fraction, NaN/Inf counts, the update ratio ``||w_next - w|| / ||w||`` over the next batch,
    and the gradient norm. Gradients are the training batch's own on the TensorFlow and torch
    backends (the optimizer's apply step is tapped for the duration of ``fit``); on JAX, whose
    train step is a pure compiled function, they come from the held batch ``data=(x, y)`` (the
    compiled loss there), and are absent without it. Each batch's loss is checked: the first
    non-finite loss is recorded at that step, with the weights, and warned about once.

    Args:
        path: the SQLite database; a new run is added to an existing one.
        every: record every this many batches (the first batch included).
        layers: layer keys to watch (default every layer with weights).
        tol: the near-zero threshold.
        tensorboard: a folder for TensorBoard event files (needs the tensorboard package).
        data: a held ``(x, y)`` batch: gradient statistics on JAX, and the per-timestep
            output gradients of ``timestep_layers``.
        timestep_layers: layers whose per-timestep output-gradient norms on ``data`` to
            record (``return_sequences=True`` layers). Steps the model masks (``Masking``,
            ``Embedding(mask_zero=True)``) are left out of them.
        mask: ``(batch, time)`` booleans of ``data``'s x, True for a real step: further
            steps to leave out of the per-timestep norms.
        lengths: ``(batch,)`` real steps per sample of ``data``'s x (right padding).

    Under multi-process distribution only process 0 writes.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = "rnnscope-run.db",
        every: int = 50,
        *,
        layers: LayerKey | Sequence[LayerKey] = None,
        tol: float = 1e-3,
        tensorboard: str | os.PathLike[str] | None = None,
        data: tuple[Any, Any] | None = None,
        timestep_layers: LayerKey | Sequence[LayerKey] = None,
        mask: Any = None,
        lengths: Any = None,
    ) -> None:
        super().__init__()
        if not isinstance(every, int) or every < 1:
            raise InputError(f"every must be a positive integer; got {every!r}")
        if timestep_layers is not None and data is None:
            raise InputError("timestep_layers needs data=(x, y)")
        self.path, self.every, self.layer_keys, self.tol = path, every, layers, tol
        self.tensorboard, self.data = tensorboard, data
        self.timestep_layers = timestep_layers
        self.held_mask = held_mask(data[0], mask, lengths) if data is not None else None
        self.steps = 0
        self.epoch = 0
        self.recorder: Recorder | None = None
        self.refs: list[Any] = []
        self._tap: GradientTap | None = None
        self._last_recorded = -1
        self._told_no_grads = False

    model: Any  # set by Keras's callback machinery

    # -- what each Keras flavour provides: its framework object (KERAS or TF_KERAS) -----------
    fw: KerasFramework

    def _framework(self) -> str:
        raise NotImplementedError

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.refs = chosen_refs(self.model, self.layer_keys)
        self._tap = GradientTap.install(self.model, self.refs, self.fw.backend(), self.fw.to_numpy)
        if self.fw.backend() == "jax" and self.data is None and not self._told_no_grads:
            import warnings

            self._told_no_grads = True
            warnings.warn(
                "rnnscope Monitor: Keras on JAX trains with a pure compiled step that rnnscope "
                "cannot see into, so no gradients are recorded (grad_norm stays empty). Pass a "
                "held batch to record them: Monitor(..., data=(x_batch, y_batch))",
                RuntimeWarning,
                stacklevel=2,
            )
        self._last_recorded = self.steps - 1
        writes, index = self.fw.process_index()
        meta = {
            "framework": self._framework(),
            "model": self.model.name,
            "every": self.every,
            "tol": self.tol,
            "process": index,
            "layers": [r.info.name for r in self.refs],
        }
        self.recorder = Recorder(self.path, meta, self.tensorboard, enabled=writes)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = int(epoch)

    def _weights(self) -> list[RNNWeights | LayerWeights]:
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:  # JAX keeps the training state apart until asked for it
            sync()
        return [r.extract() for r in self.refs]

    def _grads(self) -> list[RNNWeights | LayerWeights] | None:
        if self._tap is not None:
            values = self._tap.values()
            if values is not None:
                return [r.build(lambda v: values[id(v)]) for r in self.refs if r.build]
        if self.data is None:
            return None
        from .._capture import gradients

        x, y = self.data
        names = [r.info.name for r in self.refs]
        found = gradients(self.model, x, y, layers=names, wrt="weights")
        return [found[n] for n in names if n in found]

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        rec = self.recorder
        if rec is None or not rec.enabled:
            return
        s = self.steps
        self.steps += 1
        if rec.pending is not None:
            rec.update(self._weights())
        loss = (logs or {}).get("loss")
        bad_loss = loss is not None and not math.isfinite(float(loss))
        due = s % self.every == 0
        if bad_loss and "loss" not in rec.flagged:
            rec.note(s, "loss", "loss", f"first non-finite loss at step {s} (epoch {self.epoch})")
            due = True
        if not due:
            return
        self._record(rec, s)

    def _record(self, rec: Recorder, s: int) -> None:
        self._last_recorded = s
        rec.record(s, self.epoch, self._weights(), self._grads())
        if self.timestep_layers is not None and self.data is not None:
            from .._capture import gradients

            x, y = self.data
            for name, g in gradients(self.model, x, y, layers=self.timestep_layers).items():
                if np.ndim(g) == 3:  # masked steps (a Keras mask, mask=, lengths=) left out
                    rec.timestep_grads(s, name, timestep_norms(g, self.held_mask, name))

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        rec = self.recorder
        last = self.steps - 1
        if rec is not None and rec.enabled and last > self._last_recorded:
            self._record(rec, last)  # the last step too, however it falls against `every`
        if self._tap is not None:
            self._tap.remove()
            self._tap = None
        if self.recorder is not None:
            self.recorder.close()
