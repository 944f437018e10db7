"""Every example in a docstring of the package runs, and prints what it shows.

The examples are found with the standard library's doctest finder over every module of
``rnnscope``. They run in a scratch folder that holds the files they name (``model.keras``,
``checkpoints/``), with the objects they use (``model``, ``x``, ``y``, ...) built from real
frameworks. An example that cannot run anywhere keeps ``# doctest: +SKIP`` and is listed in
``ALLOWED_SKIPS`` with the reason, so a new skip fails this test until somebody says why.
"""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil
import shutil
from pathlib import Path

import numpy as np
import pytest

import rnnscope

# "module.qualname" -> why its example cannot run in the test suite
ALLOWED_SKIPS: dict[str, str] = {}


def _modules() -> list[str]:
    names = ["rnnscope"]
    for info in pkgutil.walk_packages(rnnscope.__path__, "rnnscope."):
        names.append(info.name)
    return sorted(n for n in names if not n.endswith("__main__"))


def _examples() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = []
    for name in _modules():
        module = importlib.import_module(name)
        for test in finder.find(module, name):
            if test.examples and test.name.split(".")[0] == "rnnscope":
                found.append(test)
    unique = {t.name: t for t in found}  # a re-exported function is found once per module
    return [unique[k] for k in sorted(unique)]


EXAMPLES = _examples()


def _keras_model():
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((5, 3))
    h = keras.layers.LSTM(
        4, return_sequences=True, name="lstm", kernel_regularizer=keras.regularizers.L2(0.01)
    )(inp)
    h = keras.layers.Bidirectional(
        keras.layers.LSTM(3, return_sequences=True), name="bidirectional"
    )(h)
    h = keras.layers.GRU(4, name="gru")(h)
    out = keras.layers.Dense(1, name="dense")(h)
    model = keras.Model(inp, out)
    model.compile(loss="mse", optimizer="sgd")
    return model


def _torch_namespace() -> dict[str, object]:
    import torch

    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(3, 4, batch_first=True)
            self.head = torch.nn.Linear(4, 1)

        def forward(self, x):
            return self.head(self.lstm(x)[0][:, -1])

    model = Net()
    data = [(torch.randn(8, 5, 3), torch.randn(8, 1)) for _ in range(3)]
    return {
        "torch": torch,
        "model": model,
        "data": data,
        "loss_fn": torch.nn.MSELoss(),
        "opt": torch.optim.SGD(model.parameters(), lr=0.01),
    }


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A folder with the files the examples name, and the Keras objects they use."""
    folder = tmp_path_factory.mktemp("doc")
    model = _keras_model()
    model.save(folder / "model.keras")
    shutil.copytree(Path(rnnscope.demo_path("run")), folder / "checkpoints")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 5, 3)).astype("float32")
    y = rng.standard_normal((8, 1)).astype("float32")
    from rnnscope.keras import Monitor

    # a monitor database, as the examples of history() and plot.history() read it
    trained = _keras_model()
    trained.fit(
        x,
        y,
        epochs=2,
        batch_size=4,
        verbose=0,
        callbacks=[Monitor(str(folder / "run.db"), every=1)],
    )
    return folder, {"model": model, "x": x, "y": y}


def _tf_keras_model():
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential(
        [tf_keras.Input((5, 3)), tf_keras.layers.LSTM(4, name="lstm"), tf_keras.layers.Dense(1)]
    )
    model.compile(loss="mse", optimizer="sgd")
    return model


def _namespace(test: doctest.DocTest, keras_objects: dict[str, object]) -> dict[str, object]:
    ns = dict(test.globs)  # the module's own names, as doctest gives them
    ns.update({"rnnscope": rnnscope, "np": np})
    if test.name.startswith("rnnscope.torch"):
        ns.update(_torch_namespace())
    else:
        ns.update(keras_objects)
    if test.name.startswith("rnnscope.tf_keras"):
        ns["model"] = _tf_keras_model()
    return ns


def test_every_skip_is_explained():
    skipped = {t.name for t in EXAMPLES if any(e.options.get(doctest.SKIP) for e in t.examples)}
    assert skipped == set(ALLOWED_SKIPS), (
        f"unexplained skips: {sorted(skipped - set(ALLOWED_SKIPS))}; "
        f"listed but no longer skipped: {sorted(set(ALLOWED_SKIPS) - skipped)}"
    )


def test_the_finder_sees_the_examples():
    names = {t.name for t in EXAMPLES}
    assert "rnnscope" in names and "rnnscope._summary.summary" in names
    assert len(EXAMPLES) >= 20


@pytest.mark.parametrize("test", EXAMPLES, ids=[t.name for t in EXAMPLES])
def test_docstring_example_runs(test, scratch, monkeypatch, tmp_path):
    folder, keras_objects = scratch
    work = tmp_path / "work"  # a fresh copy each: what one example writes, no other one reads
    shutil.copytree(folder, work)
    monkeypatch.chdir(work)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    test = doctest.DocTest(
        test.examples,
        _namespace(test, keras_objects),
        test.name,
        test.filename,
        test.lineno,
        test.docstring,
    )
    out = io.StringIO()
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    try:
        result = runner.run(test, out=out.write)
    finally:
        import matplotlib.pyplot as plt

        plt.close("all")
    assert result.failed == 0, out.getvalue()
