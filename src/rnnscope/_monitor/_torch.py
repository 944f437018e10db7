"""The torch front end: the training monitor (``rnnscope.torch``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .._api import LayerKey
from .._errors import InputError
from .._frameworks import TORCH
from .._model import LayerWeights, RNNWeights
from ._layers import chosen_refs, key_list
from ._recorder import Recorder
from ._timesteps import held_mask, timestep_norms

__all__ = ["Monitor", "to_numpy"]


def to_numpy(t: Any) -> np.ndarray:
    """A torch tensor as a numpy array of its own (bfloat16 widened to float32)."""
    return TORCH.to_numpy(t)


class Monitor:
    """Record per-gate statistics of a torch model every ``every`` steps.

    Call :meth:`step` once per training step, after ``loss.backward()`` (gradients present);
    before or after ``optimizer.step()``, as long as it is the same place every time. Every
    ``every`` steps it records, per (layer, part, gate, direction): weight norm, mean, std,
    abs max, near-zero fraction, NaN/Inf counts, gradient norm, and the update ratio
    ``||w_next - w|| / ||w||`` over the next single update. Every step it checks weights and
    gradients for NaN/Inf (~40 us for a small LSTM), and records the step where they first
    appear, with the weights, and warns once.

    Args:
        model: the ``nn.Module`` being trained (the inner module under DDP works too).
        path: the SQLite database; a new run is added to an existing one.
        every: record every this many steps (step 0 included).
        layers: layer keys to watch (default every layer with weights).
        tol: the near-zero threshold.
        tensorboard: a folder for TensorBoard event files (needs the tensorboard package).
        held: an ``(x, y)`` batch kept aside: at each recorded step, the gradient of ``loss``
            with respect to the outputs of ``timestep_layers`` is computed on it, and its norm
            per timestep recorded (does the gradient reach early timesteps?).
        loss: the loss for ``held`` (e.g. ``nn.MSELoss()``).
        timestep_layers: layers whose per-timestep output gradient norms to record.
        mask: ``(batch, time)`` booleans of the held batch, True for a real step; padded
            steps are left out of the per-timestep norms (as are the padded steps of a held
            ``PackedSequence``, without this).
        lengths: ``(batch,)`` real steps per sample of the held batch (right padding).

        total_steps: the number of training steps, when known: the last one is then recorded
            by :meth:`step` itself, like a step that falls on ``every``.

    The first step (0) and the last are always recorded, however the run falls against
    ``every``. Without ``total_steps`` the last is recorded by :meth:`close`: with the weights
    training ended with (as :meth:`close` finds them) and that step's gradients. Those are kept
    by reference, not copied (no cost per step); if they were changed in place after
    :meth:`step` (``zero_grad(set_to_none=False)``, clipping), the row has no gradients and an
    event says why.

    Under ``torch.distributed`` only rank 0 writes; the others do nothing.
    """

    def __init__(
        self,
        model: Any,
        path: str | os.PathLike[str] = "rnnscope-run.db",
        every: int = 50,
        *,
        layers: LayerKey | Sequence[LayerKey] = None,
        tol: float = 1e-3,
        tensorboard: str | os.PathLike[str] | None = None,
        held: tuple[Any, Any] | None = None,
        loss: Any = None,
        timestep_layers: LayerKey | Sequence[LayerKey] = None,
        total_steps: int | None = None,
        mask: Any = None,
        lengths: Any = None,
    ) -> None:
        if not isinstance(every, int) or every < 1:
            raise InputError(f"every must be a positive integer; got {every!r}")
        if total_steps is not None and (not isinstance(total_steps, int) or total_steps < 1):
            raise InputError(f"total_steps must be a positive integer or None; got {total_steps!r}")
        if timestep_layers is not None and (held is None or loss is None):
            raise InputError("timestep_layers needs held=(x, y) and loss=")
        self.model = model
        self.every = every
        self.refs = chosen_refs(model, layers)
        self.params = [p for r in self.refs for p in r.variables]
        self.held, self.loss = held, loss
        self.held_mask = held_mask(held[0], mask, lengths) if held is not None else None
        self.timestep_layers = None if timestep_layers is None else key_list(timestep_layers)
        writes, rank = TORCH.process_index()
        meta = {
            "framework": f"torch {torch.__version__}",
            "model": type(model).__name__,
            "every": every,
            "tol": tol,
            "rank": rank,
            "layers": [r.info.name for r in self.refs],
        }
        self.recorder = Recorder(path, meta, tensorboard, enabled=writes)
        self.total_steps = total_steps
        self.steps = 0
        self.epoch = 0
        self._recorded = -1  # the last step recorded
        self._last_grads: dict[int, tuple[Any, int]] = {}  # id(param): its last gradient, version

    @property
    def enabled(self) -> bool:
        """False on non-chief ranks: nothing is computed or written there."""
        return self.recorder.enabled

    def _weights(self) -> list[RNNWeights | LayerWeights]:
        return [r.build(to_numpy) for r in self.refs if r.build is not None]

    def _grads(self, of: Any = None) -> list[RNNWeights | LayerWeights] | None:
        """Gradient records: the parameters' ``.grad``, or ``of(param)``'s tensors."""
        of = of or (lambda p: p.grad)
        if all(of(p) is None for p in self.params):
            return None

        def grad(p: Any) -> np.ndarray:
            g = of(p)
            return to_numpy(g) if g is not None else np.zeros(tuple(p.shape), "f4")

        return [r.build(grad) for r in self.refs if r.build is not None]

    def _all_finite(self) -> bool:
        """One reduction per weight and gradient tensor, one sync (~40 us for a small LSTM).

        Weights too: an Inf weight behind a saturating gate can leave the loss and the
        gradients finite."""
        with torch.no_grad():
            sums = [p.sum() for p in self.params]
            sums += [p.grad.sum() for p in self.params if p.grad is not None]
            return bool(torch.isfinite(torch.stack(sums)).all()) if sums else True

    def step(self, epoch: int | None = None) -> None:
        """One training step done (call after ``backward()``)."""
        if not self.enabled:
            return
        if epoch is not None:
            self.epoch = int(epoch)
        s = self.steps
        self.steps += 1
        if self.recorder.pending is not None:
            self.recorder.update(self._weights())
        due = s % self.every == 0 or s + 1 == self.total_steps
        if not due and (self._all_finite() or len(self.recorder.flagged) > 0):
            # kept (not copied) so close() can record this step if it is the last
            self._last_grads = {
                id(p): (p.grad, p.grad._version) for p in self.params if p.grad is not None
            }
            return
        self._last_grads = {}
        self._recorded = s
        self.recorder.record(s, self.epoch, self._weights(), self._grads())
        if due and self.timestep_layers:
            self._timesteps(s)

    def _record_last(self) -> None:
        """The last step, when step() did not record it: the weights as training ended, and
        that step's gradients if nothing changed them since."""
        last = self.steps - 1
        if last <= self._recorded:
            return
        weights = self._weights()
        kept = self._last_grads
        intact = bool(kept) and all(g._version == v for g, v in kept.values())
        grads = self._grads(lambda p: kept[id(p)][0] if id(p) in kept else None) if intact else None
        if not intact:
            self.recorder.note(
                last,
                "last_step_gradients",
                "",
                f"the last step ({last}) is recorded without gradients: they were changed in "
                "place after step() (zero_grad(set_to_none=False), clipping) or absent",
            )
        self._recorded = last
        self.recorder.record(last, self.epoch, weights, grads)

    def _timesteps(self, step: int) -> None:
        from .._capture import gradients

        x, y = self.held  # type: ignore[misc]
        grads = gradients(self.model, x, y, layers=self.timestep_layers, loss=self.loss)
        for name, g in grads.items():
            if np.ndim(g) == 3:  # (batch, time, features): a norm per timestep
                norms = timestep_norms(g, self.held_mask, name)
                self.recorder.timestep_grads(step, name, norms)

    def close(self) -> None:
        """Record the last step if :meth:`step` did not, write what is pending and close the
        database (also on ``with`` exit)."""
        if self.enabled and self.steps > 0:
            self._record_last()
        self.recorder.close()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
