"""The public surface: exactly the exported names, and an import that loads no framework."""

from __future__ import annotations

import os
import subprocess
import sys

import rnnscope

PUBLIC = {
    "ACTIVATIONS",
    "GATES",
    "PARTS",
    "Attribution",
    "CacheNote",
    "Checkpoint",
    "Explorer",
    "FormatError",
    "GateAttribution",
    "InputError",
    "LayerError",
    "LayerInfo",
    "LayerWeights",
    "MissingDependencyError",
    "RNNWeights",
    "RnnscopeError",
    "Summary",
    "SummaryRow",
    "Thresholds",
    "Trace",
    "UnsupportedError",
    "activations",
    "attributions",
    "compare",
    "demo_path",
    "explore",
    "flags",
    "gate_attributions",
    "gradients",
    "history",
    "layers",
    "load",
    "masks",
    "read_metrics",
    "report",
    "rnn_weights",
    "stats",
    "summary",
    "trace",
    "weights",
}


SUBPACKAGES = {"compat", "keras", "plot", "tf_keras", "torch"}


def test_all_is_sorted_and_exact():
    assert rnnscope.__all__ == sorted(rnnscope.__all__, key=lambda n: (not n.isupper(), n))
    assert set(rnnscope.__all__) == PUBLIC
    public_attrs = {n for n in dir(rnnscope) if not n.startswith("_")}
    assert public_attrs - SUBPACKAGES == PUBLIC  # subpackages appear once something imports them


def test_subpackages_load_on_first_use():
    code = (
        "import sys, rnnscope\n"
        "assert 'matplotlib' not in sys.modules\n"
        "fig = rnnscope.plot.features_0d([[1.0, 2.0]])\n"
        "assert 'matplotlib' in sys.modules\n"
        "assert rnnscope.compat.see_rnn.detect_nans([1.0]) is None\n"
        "try:\n"
        "    rnnscope.plots\n"
        "except AttributeError as e:\n"
        "    assert 'plots' in str(e)\n"
        "else:\n"
        "    raise SystemExit('no AttributeError')\n"
    )
    subprocess.run(
        [sys.executable, "-c", code], check=True, env={**os.environ, "MPLBACKEND": "Agg"}
    )


def test_import_loads_no_framework_plotting_or_pandas():
    code = (
        "import sys, rnnscope\n"
        "heavy = ('torch', 'keras', 'tensorflow', 'tf_keras', 'jax', 'matplotlib', 'pandas',"
        " 'h5py', 'safetensors')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_error_hierarchy():
    assert issubclass(rnnscope.FormatError, rnnscope.RnnscopeError)
    assert issubclass(rnnscope.FormatError, ValueError)
    assert issubclass(rnnscope.LayerError, ValueError)
    assert issubclass(rnnscope.UnsupportedError, TypeError)
    assert issubclass(rnnscope.MissingDependencyError, ImportError)
