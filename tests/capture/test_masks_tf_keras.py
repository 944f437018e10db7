"""Masks in legacy tf-keras models (``Masking``, ``Embedding(mask_zero=True)``): tf-keras's own
semantics first (a masked step keeps the state; outputs carried, zeros inside
``Bidirectional``), then rnnscope's masks, traces, activations and gradients against tf-keras's
own outputs (<=1e-5)."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope

tf_keras = pytest.importorskip("tf_keras")
L = tf_keras.layers
ATOL = 1e-5
B, T, F = 3, 6, 4


@pytest.fixture(scope="module")
def padded():
    """Sample 0 right-padded (4 real steps), 1 left-padded (2 pads), 2 with a hole at step 3."""
    x = np.random.default_rng(11).normal(size=(B, T, F)).astype("float32")
    mask = np.ones((B, T), bool)
    mask[0, 4:] = mask[1, :2] = mask[2, 3] = False
    x[~mask] = 0.0
    return x, mask


@pytest.fixture(scope="module")
def model():
    tf_keras.utils.set_random_seed(5)
    inp = tf_keras.Input((T, F))
    m = L.Masking(0.0, name="masking")(inp)
    outs = [
        L.LSTM(3, return_sequences=True, name="lstm")(m),
        L.Bidirectional(L.GRU(2, return_sequences=True), name="bi")(m),
        L.SimpleRNN(2, go_backwards=True, return_sequences=True, name="back")(m),
        L.GRU(2, reset_after=False, name="last")(m),
    ]
    return tf_keras.Model(inp, outs)


def test_tf_keras_masked_steps_keep_the_state(model, padded):
    x, mask = padded
    lstm, bi = model.get_layer("lstm"), model.get_layer("bi")
    out, out_bi = lstm(x, mask=mask).numpy(), bi(x, mask=mask).numpy()
    real = [x[0, :4], x[1, 2:], np.delete(x[2], 3, axis=0)]
    for i, seq in enumerate(real):
        np.testing.assert_allclose(out[i][mask[i]], lstm(seq[None]).numpy()[0], atol=ATOL)
        np.testing.assert_allclose(out_bi[i][mask[i]], bi(seq[None]).numpy()[0], atol=ATOL)
        np.testing.assert_array_equal(out_bi[i][~mask[i]], 0)
    np.testing.assert_allclose(out[0, 4:], np.repeat(out[0, 3:4], 2, axis=0))  # carried
    np.testing.assert_array_equal(out[1, :2], 0)  # zeros before the first real step


def test_trace_equals_tf_keras_for_every_mask_pattern(model, padded):
    x, mask = padded
    outs = dict(zip(["lstm", "bi", "back", "last"], (o.numpy() for o in model(x)), strict=True))
    got = rnnscope.masks(model, x)
    for name, want in outs.items():
        np.testing.assert_array_equal(got[name], mask, err_msg=name)
        t = rnnscope.trace(model, x, name, mask=got[name])
        np.testing.assert_allclose(
            t.output(sequences=name != "last"), want, atol=ATOL, err_msg=name
        )
    with pytest.raises(rnnscope.InputError, match=r"receives a mask .*'masking' \(Masking\)"):
        rnnscope.trace(model, x, "lstm")
    acts = rnnscope.activations(model, x, layers=["lstm"])["lstm"]
    assert isinstance(acts, np.ma.MaskedArray)
    np.testing.assert_array_equal(np.ma.getdata(acts), outs["lstm"])
    np.testing.assert_array_equal(acts.mask, np.repeat(~mask[:, :, None], 3, 2))


def test_tf_keras_gradients_are_masked_and_honour_the_loss_mask(model, padded):
    x, mask = padded
    head = tf_keras.Model(model.input, model.outputs[0])
    head.compile(loss="mse")
    g = rnnscope.gradients(head, x, np.zeros((B, T, 3), "float32"), layers="lstm")["lstm"]
    assert isinstance(g, np.ma.MaskedArray)
    np.testing.assert_array_equal(g.mask, np.repeat(~mask[:, :, None], 3, 2))
    import tensorflow as tf

    xt = tf.constant(x)
    with tf.GradientTape() as tape:  # tf-keras's own loss of the masked output
        out = head.get_layer("lstm")(head.get_layer("masking")(xt))
        tape.watch(out)
        loss = head.compute_loss(x=xt, y=tf.zeros_like(out), y_pred=out)
    want = tape.gradient(loss, out).numpy()
    np.testing.assert_allclose(np.ma.getdata(g)[mask], want[mask], atol=1e-6)


def test_tf_keras_embedding_mask_zero():
    tf_keras.utils.set_random_seed(6)
    tokens = np.array([[3, 1, 4, 0, 0], [0, 0, 2, 7, 1]], "int32")
    inp = tf_keras.Input((5,), dtype="int32")
    e = L.Embedding(9, 3, mask_zero=True, name="embedding")(inp)
    model = tf_keras.Model(inp, L.LSTM(2, return_sequences=True, name="lstm")(e))
    m = rnnscope.masks(model, tokens, ["lstm"])["lstm"]
    np.testing.assert_array_equal(m, tokens != 0)
    emb = rnnscope.activations(model, tokens, "embedding")["embedding"]
    t = rnnscope.trace(model, np.ma.getdata(emb), "lstm", mask=m)
    np.testing.assert_allclose(t.output(), model(tokens).numpy(), atol=ATOL)
