"""Gradients of a Keras 3 model taken by its backend's own autodiff, never by rnnscope:
``tf.GradientTape`` on TensorFlow, ``torch.autograd.grad`` on torch, ``jax.grad`` of
``stateless_call`` on JAX."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def keras_grads(
    keras: Any, model: Any, loss_of_prediction: Callable[[Any], Any], x: np.ndarray
) -> dict[int, np.ndarray]:
    """``{id(variable): d loss / d variable}`` over ``model.trainable_variables``, where
    ``loss = loss_of_prediction(model(x))`` is written with ``keras.ops``."""
    backend = keras.backend.backend()
    variables = model.trainable_variables
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_of_prediction(model(x))
        grads = tape.gradient(loss, variables)
    elif backend == "torch":
        import torch

        loss = loss_of_prediction(model(x))
        grads = torch.autograd.grad(loss, [v.value for v in variables])
    else:
        import jax

        non_trainable = [v.value for v in model.non_trainable_variables]

        def f(trainable: list[Any]) -> Any:
            y_pred, _ = model.stateless_call(trainable, non_trainable, x)
            return loss_of_prediction(y_pred)

        grads = jax.jit(jax.grad(f))([v.value for v in variables])
    return {
        id(v): np.asarray(keras.ops.convert_to_numpy(g))
        for v, g in zip(variables, grads, strict=True)
    }


def keras_grad_of_input(keras: Any, fn: Callable[[Any], Any], h: np.ndarray) -> np.ndarray:
    """``d fn(h) / d h`` for a scalar ``fn`` written with Keras layers/ops, by the backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        t = tf.constant(h)
        with tf.GradientTape() as tape:
            tape.watch(t)
            out = fn(t)
        g = tape.gradient(out, t)
    elif backend == "torch":
        import torch

        t = torch.tensor(h, requires_grad=True)
        (g,) = torch.autograd.grad(fn(t), [t])
    else:
        import jax

        g = jax.grad(fn)(jax.numpy.asarray(h))
    return np.asarray(keras.ops.convert_to_numpy(g))
