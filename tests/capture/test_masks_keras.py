"""Keras masks, on whichever backend KERAS_BACKEND selects (the suite runs all three).

First Keras's own semantics, checked with Keras alone: a masked step keeps the state (the
output of a right-padded sample's last real step equals the layer run on the truncated
sequence; left padding and holes likewise), an LSTM outputs the carried output at masked steps
(zeros before the first real step), ``Bidirectional`` outputs zeros there, and its backward
direction reads each sample's real steps in reverse. Then rnnscope against Keras's outputs.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope

pytestmark = pytest.mark.keras_backend
keras = pytest.importorskip("keras")

ATOL = 1e-5
B, T, F = 3, 6, 4


def _np(t):
    return np.asarray(keras.ops.convert_to_numpy(t))


@pytest.fixture(scope="module")
def padded():
    """Sample 0 right-padded (4 real steps), 1 left-padded (2 pads), 2 with a hole at step 3."""
    x = np.random.default_rng(7).normal(size=(B, T, F)).astype("float32")
    x[0, 4:] = 0.0
    x[1, :2] = 0.0
    x[2, 3] = 0.0
    mask = np.ones((B, T), bool)
    mask[0, 4:] = mask[1, :2] = mask[2, 3] = False
    return x, mask


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    inp = keras.Input((T, F))
    m = keras.layers.Masking(0.0, name="masking")(inp)
    outs = [
        keras.layers.LSTM(3, return_sequences=True, name="lstm")(m),
        keras.layers.Bidirectional(keras.layers.GRU(2, return_sequences=True), name="bi")(m),
        keras.layers.SimpleRNN(2, go_backwards=True, return_sequences=True, name="back")(m),
        keras.layers.LSTM(2, name="last")(m),
    ]
    return keras.Model(inp, outs)


def test_keras_masked_steps_keep_the_state_and_outputs_follow_the_layer(model, padded):
    x, mask = padded
    lstm, bi = model.get_layer("lstm"), model.get_layer("bi")
    out, out_bi = _np(lstm(x, mask=mask)), _np(bi(x, mask=mask))
    real = [x[0, :4], x[1, 2:], np.delete(x[2], 3, axis=0)]
    for i, seq in enumerate(real):
        alone, alone_bi = _np(lstm(seq[None]))[0], _np(bi(seq[None]))[0]
        np.testing.assert_allclose(out[i][mask[i]], alone, atol=ATOL)  # state carried over
        np.testing.assert_allclose(out_bi[i][mask[i]], alone_bi, atol=ATOL)  # backward: reversed
        np.testing.assert_array_equal(out_bi[i][~mask[i]], 0)  # within the real steps
    np.testing.assert_allclose(out[0, 4:], np.repeat(out[0, 3:4], 2, axis=0))  # carried output
    np.testing.assert_array_equal(out[1, :2], 0)  # before the first real step: zeros
    np.testing.assert_allclose(out[2, 3], out[2, 2])
    assert not lstm.zero_output_for_mask and bi.forward_layer.zero_output_for_mask


def test_trace_equals_keras_for_every_mask_pattern(model, padded):
    x, mask = padded
    outs = dict(zip(["lstm", "bi", "back", "last"], (_np(o) for o in model(x)), strict=True))
    got = rnnscope.masks(model, x)
    for name in outs:
        np.testing.assert_array_equal(got[name], mask)
        t = rnnscope.trace(model, x, name, mask=got[name])
        np.testing.assert_allclose(
            t.output(sequences=name != "last"), outs[name], atol=ATOL, err_msg=name
        )
    right = rnnscope.trace(model, x[:1], "lstm", lengths=[4])  # lengths= is right padding
    np.testing.assert_allclose(right.output(), outs["lstm"][:1], atol=ATOL)


def test_masked_steps_are_masked_in_the_trace(model, padded):
    x, mask = padded
    t = rnnscope.trace(model, x, "lstm", mask=mask)
    out = _np(model(x)[0])
    forget, h = t.get("forget"), t.get("h")
    assert isinstance(forget, np.ma.MaskedArray)
    np.testing.assert_array_equal(np.ma.getmaskarray(forget), np.repeat(~mask[:, :, None], 3, 2))
    assert np.isnan(np.ma.getdata(forget)[~mask]).all()  # no gate ran there
    np.testing.assert_allclose(np.ma.getdata(h)[0, 4:], np.repeat(out[0, 3:4], 2, 0), atol=ATOL)
    # statistics over time leave masked steps out: the mean over Keras's real steps only
    np.testing.assert_allclose(
        h.mean(axis=(0, 2)), [out[:, s][mask[:, s]].mean() for s in range(T)], atol=ATOL
    )


def test_a_mask_rnnscope_is_not_given_is_refused(model, padded):
    x, mask = padded
    with pytest.raises(rnnscope.InputError, match=r"receives a mask .*'masking' \(Masking\)") as e:
        rnnscope.trace(model, x, "lstm")
    assert e.value.argument == "mask" and e.value.layer == "lstm"
    unmasked = rnnscope.trace(model, x, "lstm", mask=False).output()  # opted out: every step
    assert np.abs(unmasked - _np(model(x)[0])).max() > 1e-3  # which is why it is refused
    with pytest.raises(rnnscope.InputError, match=r"mask for layer 'lstm': expected shape"):
        rnnscope.trace(model, x, "lstm", mask=mask[:, :2])
    with pytest.raises(rnnscope.InputError, match=r"lengths .* within 0\.\.6"):
        rnnscope.trace(model, x, "lstm", lengths=[7, 1, 1])
    with pytest.raises(rnnscope.InputError, match="not both"):
        rnnscope.trace(model, x, "lstm", mask=mask, lengths=[1, 1, 1])


def test_activations_and_gradients_are_masked_arrays(model, padded):
    x, mask = padded
    acts = rnnscope.activations(model, x, layers=["lstm", "last"])
    assert isinstance(acts["lstm"], np.ma.MaskedArray)
    np.testing.assert_array_equal(np.ma.getdata(acts["lstm"]), _np(model(x)[0]))
    np.testing.assert_array_equal(acts["lstm"].mask, np.repeat(~mask[:, :, None], 3, 2))
    assert not isinstance(acts["last"], np.ma.MaskedArray)  # no time axis left to mask
    head = keras.Model(model.input, model.outputs[0])
    head.compile(loss="mse")
    g = rnnscope.gradients(head, x, np.zeros((B, T, 3), "float32"), layers="lstm")["lstm"]
    assert isinstance(g, np.ma.MaskedArray)
    np.testing.assert_array_equal(g.mask, np.repeat(~mask[:, :, None], 3, 2))
    # Keras's compiled loss honours the output's mask: the mean over real steps only
    want = np.where(mask[:, :, None], 2 * _np(model(x)[0]) / (mask.sum() * 3), 0)
    np.testing.assert_allclose(np.ma.getdata(g), want, atol=1e-6)


def test_embedding_mask_zero_and_a_mask_passed_to_a_call():
    keras.utils.set_random_seed(4)
    tokens = np.array([[3, 1, 4, 0, 0], [0, 0, 2, 7, 1]], "int32")
    inp = keras.Input((5,), dtype="int32")
    e = keras.layers.Embedding(9, 3, mask_zero=True, name="embedding")(inp)
    model = keras.Model(inp, keras.layers.GRU(2, return_sequences=True, name="gru")(e))
    m = rnnscope.masks(model, tokens, ["embedding", "gru"])
    assert m["embedding"] is None
    np.testing.assert_array_equal(m["gru"], tokens != 0)
    emb = rnnscope.activations(model, tokens, "embedding")["embedding"]
    t = rnnscope.trace(model, emb, "gru", mask=m["gru"])
    np.testing.assert_allclose(t.output(), _np(model(tokens)), atol=ATOL)
    with pytest.raises(rnnscope.InputError, match=r"'embedding' \(Embedding\)"):
        rnnscope.trace(model, emb, "gru")

    x_in, m_in = keras.Input((4, 2)), keras.Input((4,), dtype="bool")
    call = keras.Model(
        [x_in, m_in], keras.layers.LSTM(2, return_sequences=True, name="l")(x_in, mask=m_in)
    )
    x = np.random.default_rng(1).normal(size=(2, 4, 2)).astype("float32")
    given = np.array([[True, True, False, False], [False, True, True, True]])
    got = rnnscope.masks(call, [x, given], "l")["l"]
    np.testing.assert_array_equal(got, given)
    t = rnnscope.trace(call, x, "l", mask=got)
    np.testing.assert_allclose(t.output(), _np(call([x, given])), atol=ATOL)


def test_left_padding_with_an_initial_state_outputs_what_the_backend_outputs(model, padded):
    x, mask = padded
    lstm = model.get_layer("lstm")
    rng = np.random.default_rng(2)
    h0, c0 = (rng.normal(size=(B, 3)).astype("float32") for _ in range(2))
    out = _np(lstm(x, mask=mask, initial_state=[h0, c0]))
    if keras.backend.backend() == "jax":  # JAX's loop outputs the carried state: h0 here
        np.testing.assert_allclose(out[1, :2], np.stack([h0[1]] * 2), atol=1e-7)
    else:  # TensorFlow's and torch's: the previous output, zeros before the first real step
        np.testing.assert_array_equal(out[1, :2], 0)
    t = rnnscope.trace(model, x, "lstm", mask=mask, initial_state=[h0, c0])
    np.testing.assert_allclose(t.output(), out, atol=ATOL)
    np.testing.assert_allclose(np.ma.getdata(t.get("h"))[1, :2], np.stack([h0[1]] * 2), atol=0)
