"""A Ctrl-C that lands after a command finished (while Python shuts down, e.g. after a report
was written and its worker processes ended) leaves no traceback and keeps the exit code."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.conftest import IN_A_TERMINAL

SRC = str(Path(__file__).resolve().parents[1] / "src")

# the Ctrl-C arrives in an exit handler: during the interpreter's shutdown, as it may in a terminal
SCRIPT = """
import atexit, os, signal, sys
atexit.register(lambda: os.kill(os.getpid(), signal.SIGINT))
from rnnscope._cli import main
sys.argv = ["rnnscope", "cache", "--cache", sys.argv[1]]
sys.exit(main())
"""


def test_a_ctrl_c_during_shutdown_prints_no_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run(
        # SIGINT at its default, as in a terminal: a suite started as a background job inherits
        # it ignored, and the Ctrl-C below would then never arrive
        [*IN_A_TERMINAL, "-c", SCRIPT, str(tmp_path / "none.sqlite")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "no results database at" in done.stdout
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr, done.stderr


def test_main_called_with_arguments_keeps_ctrl_c(tmp_path, capsys):
    from rnnscope._cli import main

    # Python's own Ctrl-C handler, whatever this suite inherited (a background job: ignored)
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert main(["cache", "--cache", str(tmp_path / "none.sqlite")]) == 0
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, inherited)
