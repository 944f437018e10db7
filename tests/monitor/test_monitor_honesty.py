"""The monitor says what it cannot record: JAX without data=, runs shorter than `every`, and
history figures with fewer than two points."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import rnnscope

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

U = 4


def _keras():
    return pytest.importorskip("keras")


def _fit(db, n_batches: int, every: int, epochs: int = 1, data=None, monitor=None):
    keras = _keras()
    from rnnscope.keras import Monitor

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((5, 3)), keras.layers.LSTM(U, name="lstm"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8 * n_batches, 5, 3)).astype("f4")
    y = rng.normal(size=(8 * n_batches, 1)).astype("f4")
    mon = monitor or Monitor(db, every=every, data=data)
    model.fit(x, y, batch_size=8, epochs=epochs, verbose=0, callbacks=[mon], shuffle=False)
    return model, mon


@pytest.mark.keras_backend
@pytest.mark.parametrize(("batches", "every", "steps"), [(5, 50, [0, 4]), (8, 3, [0, 3, 6, 7])])
def test_first_and_last_steps_are_recorded(tmp_path, batches, every, steps):
    keras = _keras()
    db = tmp_path / "run.db"
    model, _ = _fit(db, batches, every)
    h = rnnscope.history(db)
    assert sorted(set(h["step"])) == steps
    # the last row holds the weights training ended with: Keras's LSTM kernel is (in, 4u) in
    # gate order i, f, c, o, so the forget gate is columns u..2u
    kernel = keras.ops.convert_to_numpy(model.get_layer("lstm").cell.kernel)
    last = h[(h.step == steps[-1]) & (h.part == "kernel") & (h.gate == "forget")]
    assert last["weight_norm"].item() == pytest.approx(
        float(np.linalg.norm(kernel[:, U : 2 * U])), rel=1e-5
    )


@pytest.mark.keras_backend
def test_keras_on_jax_without_data_says_once_that_it_sees_no_gradients(tmp_path):
    keras = _keras()
    db = tmp_path / "run.db"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, mon = _fit(db, 2, 1)
        _fit(db, 2, 1, monitor=mon)  # the same monitor again: not said twice
    said = [str(w.message) for w in caught if "no gradients are recorded" in str(w.message)]
    grads = rnnscope.history(db)["grad_norm"]
    if keras.backend.backend() == "jax":
        assert len(said) == 1 and "data=(x_batch, y_batch)" in said[0]
        assert grads.isna().all()
        rng = np.random.default_rng(1)
        held = rng.normal(size=(4, 5, 3)).astype("f4"), rng.normal(size=(4, 1)).astype("f4")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _fit(tmp_path / "held.db", 2, 1, data=held)
        assert not [w for w in caught if "no gradients are recorded" in str(w.message)]
        assert rnnscope.history(tmp_path / "held.db")["grad_norm"].notna().all()
    else:  # the optimizer is tapped: gradients without data=
        assert said == [] and grads.notna().all()


def _history(steps: list[int], weight: list[float], grad: list[float]) -> pd.DataFrame:
    rows = []
    for s, w, g in zip(steps, weight, grad, strict=True):
        for k, gate in enumerate(("input", "forget", "cell", "output")):
            rows.append(
                {
                    "run_id": 1,
                    "step": s,
                    "epoch": 0,
                    "layer": "lstm",
                    "part": "kernel",
                    "gate": gate,
                    "direction": "forward",
                    "weight_norm": w + 0.01 * k,
                    "grad_norm": g,
                    "update_ratio": np.nan,
                }
            )
    return pd.DataFrame(rows)


def _notes(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts if t.get_gid() == "sparse-note"]


def test_history_plot_with_one_step_says_so_and_draws_dots():
    from rnnscope import plot

    fig = plot.history(_history([0], [1.2], [0.5]), ["weight_norm", "grad_norm"])
    notes = _notes(fig)
    assert len(notes) == 2 and all("one recorded step (0)" in n for n in notes)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 4 and all(line.get_marker() == "o" for line in lines)


def test_history_plot_without_gradients_says_what_to_pass():
    from rnnscope import plot

    fig = plot.history(_history([0, 5, 9], [1.0, 1.1, 1.3], [np.nan] * 3), ["grad_norm"])
    (note,) = _notes(fig)
    assert "no gradient L2 norm recorded" in note and "data=(x, y)" in note
    assert list(fig.axes[0].get_yticks()) == []


def test_weight_norm_ticks_are_plain_numbers():
    from rnnscope import plot

    fig = plot.history(
        _history(list(range(5)), [1.0, 1.05, 1.1, 1.2, 1.3], [1.0] * 5), ["weight_norm"]
    )
    fig.canvas.draw()
    ax = fig.axes[0]
    assert ax.get_yscale() == "linear"  # 1.0 to 1.33: less than a decade
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert len(labels) >= 3
    assert all(float(t) == pytest.approx(v) for t, v in zip(labels, ax.get_yticks(), strict=False))
    assert ax.yaxis.get_offset_text().get_text() == ""
    assert _notes(fig) == []
    wide = plot.history(_history([0, 1, 2], [0.01, 0.5, 30.0], [1.0] * 3), ["weight_norm"])
    wide.canvas.draw()
    ax = wide.axes[0]
    assert ax.get_yscale() == "log"
    shown = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert shown and all("$" not in t and "10^" not in t for t in shown)
