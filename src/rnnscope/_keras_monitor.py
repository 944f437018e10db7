"""The Keras training monitor's logic, shared by Keras 3 (``rnnscope.keras``) and tf-keras
(``rnnscope.tf_keras``), and the weight penalties of a Keras model.

Nothing here imports a Keras: each front end supplies its backend name and tensor conversion.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ._api import LayerKey
from ._errors import InputError
from ._model import LayerWeights, RNNWeights
from ._monitor import Recorder, chosen_refs

__all__ = ["GradientTap", "MonitorLogic", "chief", "penalties"]


def chief(backend: str) -> tuple[bool, int]:
    """(writes?, process index) under Keras distribution: only process 0 writes."""
    if backend == "jax":
        import jax

        index = int(jax.process_index())
        return index == 0, index
    if backend == "torch":
        import torch

        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank() == 0, dist.get_rank()
        return True, 0
    task = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}").get("task", {})
    index = int(task.get("index", 0))
    chief = task.get("type", "chief") in ("chief", "master") or (
        task.get("type") == "worker" and index == 0
    )
    return chief, index


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
            record (``return_sequences=True`` layers).

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
    ) -> None:
        super().__init__()
        if not isinstance(every, int) or every < 1:
            raise InputError(f"every must be a positive integer; got {every!r}")
        if timestep_layers is not None and data is None:
            raise InputError("timestep_layers needs data=(x, y)")
        self.path, self.every, self.layer_keys, self.tol = path, every, layers, tol
        self.tensorboard, self.data = tensorboard, data
        self.timestep_layers = timestep_layers
        self.steps = 0
        self.epoch = 0
        self.recorder: Recorder | None = None
        self.refs: list[Any] = []
        self._tap: GradientTap | None = None
        self._last_recorded = -1
        self._told_no_grads = False

    model: Any  # set by Keras's callback machinery

    # -- what each Keras flavour provides ----------------------------------------------------
    def _backend(self) -> str:
        raise NotImplementedError

    def _framework(self) -> str:
        raise NotImplementedError

    def _numpy(self, t: Any) -> np.ndarray:
        raise NotImplementedError

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.refs = chosen_refs(self.model, self.layer_keys)
        self._tap = GradientTap.install(self.model, self.refs, self._backend(), self._numpy)
        if self._backend() == "jax" and self.data is None and not self._told_no_grads:
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
        writes, index = chief(self._backend())
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
        from ._capture import gradients

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
            from ._capture import gradients

            x, y = self.data
            for name, g in gradients(self.model, x, y, layers=self.timestep_layers).items():
                g = np.asarray(g, dtype=np.float64)
                if g.ndim == 3:
                    rec.timestep_grads(s, name, np.sqrt((g**2).sum(axis=(0, 2))))

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


class GradientTap:
    """Keeps the last training batch's gradients of the watched variables.

    The optimizer's own ``apply_gradients`` (TensorFlow backend, inside the compiled train step:
    each gradient is copied into a shadow variable) or ``apply`` (torch backend: the tensors
    are kept) is wrapped on the instance for the duration of ``fit``. JAX's train step is a pure
    function with no such hook: there the held batch (``data=``) gives the gradients.
    """

    def __init__(self, optimizer: Any, name: str, original: Any, keep: Any, read: Any) -> None:
        self.optimizer, self.name, self.original = optimizer, name, original
        self.keep, self.read = keep, read
        self.model: Any = None

    @classmethod
    def install(
        cls, model: Any, refs: list[Any], backend: str, to_numpy: Any
    ) -> GradientTap | None:
        optimizer = getattr(model, "optimizer", None)
        watched = [v for r in refs for v in r.variables]
        if optimizer is None or not watched or backend not in ("tensorflow", "torch"):
            return None
        by_id = {id(v): v for v in watched}
        if backend == "tensorflow":
            import tensorflow as tf

            shadows = {
                i: tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False)
                for i, v in by_id.items()
            }
            seen = tf.Variable(False, trainable=False)
            original = optimizer.apply_gradients

            def apply_gradients(grads_and_vars: Any, *args: Any, **kwargs: Any) -> Any:
                pairs = list(grads_and_vars)
                for g, v in pairs:
                    if g is not None and id(v) in shadows:
                        shadows[id(v)].assign(tf.convert_to_tensor(g))
                seen.assign(True)
                return original(pairs, *args, **kwargs)

            def read() -> dict[int, np.ndarray] | None:
                if not bool(seen.numpy()):
                    return None
                return {i: np.array(s.numpy()) for i, s in shadows.items()}

            optimizer.apply_gradients = apply_gradients
            model.make_train_function(force=True)  # traced anew, with the tap, at the first batch
            tap = cls(optimizer, "apply_gradients", original, shadows, read)
            tap.model = model
            return tap
        latest: dict[int, Any] = {}
        original = optimizer.apply

        def apply(grads: Any, variables: Any = None, *args: Any, **kwargs: Any) -> Any:
            for g, v in zip(grads, variables if variables is not None else [], strict=False):
                if id(v) in by_id and g is not None:
                    latest[id(v)] = g
            return original(grads, variables, *args, **kwargs)

        def read_torch() -> dict[int, np.ndarray] | None:
            if not latest:
                return None
            out = {}
            for i, v in by_id.items():
                g = latest.get(i)
                out[i] = np.array(to_numpy(g)) if g is not None else np.zeros(tuple(v.shape), "f4")
            return out

        optimizer.apply = apply
        return cls(optimizer, "apply", original, latest, read_torch)

    def values(self) -> dict[int, np.ndarray] | None:
        """The last batch's gradients by ``id(variable)``, or None before the first batch."""
        return self.read()

    def remove(self) -> None:
        """Restore the optimizer's own method."""
        try:
            delattr(self.optimizer, self.name)  # the instance attribute shadows the class's
        except AttributeError:
            setattr(self.optimizer, self.name, self.original)
        if self.model is not None:  # the next fit traces a train step without the tap
            self.model.make_train_function(force=True)


_REGULARISED = (
    ("kernel_regularizer", "kernel"),
    ("recurrent_regularizer", "recurrent_kernel"),
    ("bias_regularizer", "bias"),
    ("embeddings_regularizer", "embeddings"),
    ("depthwise_regularizer", "depthwise_kernel"),
    ("pointwise_regularizer", "pointwise_kernel"),
)


def _walk(layer: Any, path: str, seen: set[int]) -> Iterator[tuple[str, Any]]:
    if id(layer) in seen:
        return
    seen.add(id(layer))
    yield path, layer
    for sub in getattr(layer, "layers", []) or []:
        yield from _walk(sub, f"{path}/{sub.name}" if path else sub.name, seen)
    for attr in ("forward_layer", "backward_layer", "cell", "layer"):
        sub = getattr(layer, attr, None)
        if sub is not None and hasattr(sub, "weights"):
            inner = path if attr == "cell" else (f"{path}/{attr}" if path else attr)
            yield from _walk(sub, inner, seen)


def penalties(model: Any, to_numpy: Any) -> list[dict[str, Any]]:
    """Every regularised weight of a Keras model: its L1 and L2 factors and penalty value.

    Returns ``[{"layer", "weight", "l1", "l2", "penalty"}]``; the penalties add up to the
    model's regularisation loss (``sum(model.losses)`` after a forward pass).
    """
    out = []
    for path, layer in _walk(model, "", set()):
        for reg_attr, weight_attr in _REGULARISED:
            reg = getattr(layer, reg_attr, None)
            weight = getattr(layer, weight_attr, None)
            if reg is None or weight is None:
                continue
            config = reg.get_config() if hasattr(reg, "get_config") else {}
            value = float(to_numpy(reg(weight)))
            out.append(
                {
                    "layer": path or layer.name,
                    "weight": weight_attr,
                    "l1": float(config.get("l1", 0.0)),
                    "l2": float(config.get("l2", 0.0)),
                    "penalty": value,
                }
            )
    return out
