"""Keras files with unusual shapes, found in review: each reads as the live model does."""

from __future__ import annotations

import numpy as np
import pytest

import rnnscope

pytestmark = pytest.mark.keras_backend  # files saved from each backend read the same
keras = pytest.importorskip("keras")
L = keras.layers
X = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")


def _randomise(model):
    rng = np.random.default_rng(1)
    for v in model.trainable_variables:
        v.assign(rng.normal(scale=0.4, size=v.shape))
    return model


def _save_all(model, tmp_path):
    paths = [tmp_path / "m.keras", tmp_path / "m.h5", tmp_path / "m.weights.h5"]
    model.save(paths[0])
    model.save(paths[1])
    model.save_weights(paths[2])
    return paths


def test_layer_named_forward_is_not_a_direction(tmp_path):
    i = keras.Input((5, 3))
    model = _randomise(keras.Model(i, L.LSTM(4, return_sequences=True, name="forward_enc")(i)))
    want = keras.ops.convert_to_numpy(model(X))
    for p in _save_all(model, tmp_path):
        np.testing.assert_allclose(
            rnnscope.trace(p, X, layer="forward_enc").output(), want, atol=1e-5, err_msg=p.name
        )


def test_bidirectional_with_explicit_backward_layer(tmp_path):
    i = keras.Input((5, 3))
    same = L.Bidirectional(
        L.LSTM(4, return_sequences=True),
        name="bi",
        backward_layer=L.LSTM(4, return_sequences=True, go_backwards=True),
    )
    model = _randomise(keras.Model(i, same(i)))
    want = keras.ops.convert_to_numpy(model(X))
    for p in _save_all(model, tmp_path):
        np.testing.assert_allclose(rnnscope.trace(p, X).output(), want, atol=1e-5, err_msg=p.name)
    mixed = L.Bidirectional(
        L.LSTM(4, return_sequences=True),
        name="mix",
        backward_layer=L.LSTM(4, activation="relu", return_sequences=True, go_backwards=True),
    )
    model = _randomise(keras.Model(i, mixed(i)))
    for source in (model, *_save_all(model, tmp_path)[:2]):
        info = rnnscope.layers(source)[0]
        assert info.kind == "Bidirectional (directions differ)" and not info.recurrent
        with pytest.raises(rnnscope.LayerError, match="not a recurrent layer"):
            rnnscope.rnn_weights(source, "mix")


def test_stacked_cells_and_empty_models(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((5, 3)),
            L.RNN([L.LSTMCell(4), L.GRUCell(4)], name="stack"),
            L.Dense(1, name="d"),
        ]
    )
    model.save(tmp_path / "s.keras")
    infos = rnnscope.layers(tmp_path / "s.keras")
    assert [i.name for i in infos] == ["stack/cell_0", "stack/cell_1", "d"]  # a layer per cell
    assert sum(int(np.prod(s)) for i in infos[:2] for s in i.shapes.values()) == sum(
        int(np.prod(v.shape)) for v in model.get_layer("stack").weights
    )
    keras.Sequential([keras.Input((5, 3))]).save(tmp_path / "e.keras")
    assert rnnscope.layers(tmp_path / "e.keras") == []


def test_duplicate_names_are_ambiguous(tmp_path):
    i = keras.Input((5, 3))
    a = keras.Sequential(
        [keras.Input((5, 3)), L.LSTM(3, return_sequences=True, name="lstm")], name="a"
    )
    b = keras.Sequential(
        [keras.Input((5, 3)), L.LSTM(3, return_sequences=True, name="lstm")], name="b"
    )
    model = keras.Model(i, L.Add()([a(i), b(i)]))
    model.save(tmp_path / "d.h5")
    assert [x.name for x in rnnscope.layers(tmp_path / "d.h5")] == ["a/lstm", "b/lstm"]
    with pytest.raises(rnnscope.LayerError, match="ambiguous"):
        rnnscope.rnn_weights(tmp_path / "d.h5", "lstm")
