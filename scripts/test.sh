#!/usr/bin/env bash
# The whole test suite, from scratch: a fresh virtual environment with every framework, then the
# project with its test extra, then lint, types and the tests (Keras tests once per backend).
#   bash scripts/test.sh            # uses .venv-test (recreated)
#   RNNSCOPE_KEEP_VENV=1 bash scripts/test.sh   # reuse .venv-test if present (faster reruns)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv=${RNNSCOPE_TEST_VENV:-$root/.venv-test}
python=${PYTHON:-python3}
log=$(mktemp)
# In CI (CI=true) nothing may be missing: no Chromium, a Keras backend that does not load, or a
# skipped test that tests/skip_allowlist.txt does not name each fail the run.
case "${CI:-}" in true|TRUE|True|1|yes) ci=1 ;; *) ci=0 ;; esac
pipi() { "$venv/bin/pip" install --progress-bar off -q "$@" >>"$log" 2>&1 || { cat "$log"; exit 1; }; }

if [[ -z "${RNNSCOPE_KEEP_VENV:-}" || ! -x "$venv/bin/python" ]]; then
  echo "== creating $venv"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  pipi --upgrade pip
  echo "== installing frameworks (tensorflow-cpu, keras 3, jax[cpu], torch 2.13.0, tf-keras)"
  pipi "tensorflow-cpu==2.21.*" "keras>=3.15" "jax[cpu]" "torch==2.13.0"
  pipi --no-deps "tf-keras==2.21.*"
fi
# test-only: See RNN itself, the reference of the differential test of rnnscope.compat.see_rnn
pipi --no-deps "see-rnn==1.15.1"
if ! command -v chromium >/dev/null 2>&1; then
  # the report test opens the HTML report in a real headless Chromium (Debian's package)
  echo "== installing chromium (Debian package) for the report test"
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo -n"
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium; } >>"$log" 2>&1; then
    if [[ $ci == 1 ]]; then
      echo "FAILED: could not install chromium (no root or no package access); CI needs the browser test"
      exit 1
    fi
    echo "WARNING: could not install chromium (no root or no package access): the browser test will be skipped"
  fi
fi
echo "== installing rnnscope[test]"
pipi -e ".[test]"
"$venv/bin/python" -c "import tensorflow, keras, jax, torch, tf_keras; print('frameworks:', 'tensorflow', tensorflow.__version__, '| keras', keras.__version__, '| jax', jax.__version__, '| torch', torch.__version__, '| tf_keras', tf_keras.__version__)" 2>/dev/null

echo "== ruff and mypy"
"$venv/bin/ruff" check src tests bench scripts
"$venv/bin/mypy"

export PYTHONHASHSEED=0 TF_CPP_MIN_LOG_LEVEL=3 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
reports=$(mktemp -d)
status=0
check_backend() {  # Keras must really run on BACKEND: a tiny LSTM forward pass, backend asserted
  KERAS_BACKEND=$1 "$venv/bin/python" - "$1" <<'PY'
import sys

import keras
import numpy as np

want = sys.argv[1]
got = keras.backend.backend()
if got != want:
    sys.exit(f"FAILED: KERAS_BACKEND={want} but Keras runs on {got!r}")
model = keras.Sequential([keras.Input((3, 2)), keras.layers.LSTM(2)])
out = keras.ops.convert_to_numpy(model(np.ones((1, 3, 2), "float32")))
if out.shape != (1, 2) or not np.isfinite(out).all():
    sys.exit(f"FAILED: Keras on {want}: an LSTM forward pass gave {out!r}")
print(f"keras {keras.__version__} runs on {got}: LSTM forward pass ok")
PY
}
run() {  # run NAME BACKEND PYTEST-ARGS...
  local name=$1 backend=$2; shift 2
  echo "== pytest: $name (KERAS_BACKEND=$backend)"
  if ! check_backend "$backend"; then status=1; return; fi
  KERAS_BACKEND=$backend "$venv/bin/python" -m pytest -p no:cacheprovider \
    --junitxml="$reports/$name.xml" "$@" || status=$?
}
# Everything once on the TensorFlow backend; the Keras-backend tests again on JAX and torch.
run all tensorflow tests
run keras-jax jax tests -m keras_backend
run keras-torch torch tests -m keras_backend

# The closing line CI reads ("total: N passed, N failed, N skipped") is junit_total's last line;
# in CI it also fails the run on any skip not on tests/skip_allowlist.txt.
"$venv/bin/python" scripts/junit_total.py "$reports"/*.xml || status=1
exit $status
