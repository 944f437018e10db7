"""The Keras monitor's gradient tap: the training batch's own gradients, taken from the
optimizer for the duration of ``fit`` (TensorFlow and torch backends)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["GradientTap"]


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
