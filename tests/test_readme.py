"""Every Python and shell block of the README runs, in order, as a user would copy it.

Blocks are found generically (any fenced ``python``/``bash``/``sh``/``shell`` block, and
``console`` blocks, whose ``$ `` lines run and whose other lines are their checked output).
An HTML comment on the line before a block declares what the test may add:

- ``<!-- readme-test: setup=NAME[,NAME] -->``: setup snippets from :data:`SETUPS` run before the
  block, in the same script (the reader's own model, data or files; never rnnscope calls that
  the example should show).
- ``<!-- readme-test: skip: REASON -->``: not run, with the reason (rare: installs, the suite).
- ``<!-- readme-test: exit=N -->``: a shell block's expected exit code (default 0).
- ``<!-- readme-test: output -->`` before an unlabelled block: lines the previous block prints,
  in order (a line ending in ``...`` is a prefix; a line of ``...`` alone skips).

Python blocks run as scripts (``__name__ == "__main__"``, so worker processes import them
again, as they would a user's script) in one helper process, each in a fresh namespace, in a
temporary folder shared with the shell blocks. A line ``EXPR  # -> VALUE`` is checked:
``repr(EXPR)`` must equal ``VALUE`` (up to two spaces, after which a comment may follow).
Shell blocks run in bash with the environment's ``rnnscope`` and ``python`` first on PATH.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
RUN = {"python": "python", "py": "python", "bash": "sh", "sh": "sh", "shell": "sh", "console": "sh"}
MAX_SKIPS = 4
MARK = re.compile(r"<!--\s*readme-test:\s*(.*?)\s*-->")
CHECK = re.compile(r"^(?P<expr>\S.*?)\s+#\s*->\s*(?P<value>.+?)(?:\s{2,}.*)?$")

SETUPS = {
    "keras_model": """
        import numpy as np
        import keras

        inputs = keras.Input((12, 5))
        h = keras.layers.LSTM(8, return_sequences=True, name="lstm")(inputs)
        h = keras.layers.Bidirectional(keras.layers.GRU(6, return_sequences=True), name="bidir")(h)
        h = keras.layers.GRU(4, name="gru")(h)
        model = keras.Model(inputs, keras.layers.Dense(1, name="dense")(h))
        model.compile(optimizer="adam", loss="mse")
        rng = np.random.default_rng(0)
        x = rng.normal(size=(8, 12, 5)).astype("float32")
        y = rng.normal(size=(8, 1)).astype("float32")
        if not os.path.exists("model.keras"):
            model.save("model.keras")
        """,
    "epochs": """
        if not os.path.exists("epoch9.keras"):
            model.save("epoch1.keras")
            model.fit(x, y, epochs=8, verbose=0)
            model.save("epoch9.keras")
        """,
    "checkpoints": """
        import shutil
        import rnnscope

        if not os.path.isdir("checkpoints"):
            shutil.copytree(rnnscope.demo_path("run"), "checkpoints")
        """,
    "torch_model": """
        import torch

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = torch.nn.LSTM(5, 8, batch_first=True)
                self.head = torch.nn.Linear(8, 1)

            def forward(self, x):
                return self.head(self.lstm(x)[0][:, -1])

        torch.manual_seed(0)
        model = Net()
        loader = [(torch.randn(8, 12, 5), torch.randn(8, 1)) for _ in range(3)]
        loss_fn = torch.nn.MSELoss()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        """,
    "lstm_step": """
        import numpy as np
        import rnnscope

        w = rnnscope.rnn_weights(model, "lstm")
        x_t = x[:, 0]
        h = np.zeros((len(x), w.units), "float32")
        c = np.zeros((len(x), w.units), "float32")
        sigmoid = lambda z: 1 / (1 + np.exp(-z))
        tanh = np.tanh
        """,
}


@dataclass
class Block:
    line: int
    lang: str
    code: str
    marks: dict[str, str] = field(default_factory=dict)
    output: list[str] | None = None

    @property
    def id(self) -> str:
        return f"README.md:{self.line}:{self.lang}"


def _marks(text: str) -> dict[str, str]:
    if text.startswith("skip"):  # the rest is the reason, whatever it holds
        return {"skip": text[4:].lstrip(" :")}
    out = {}
    for part in text.split(";"):
        key, _, value = part.strip().partition("=") if "=" in part else part.strip().partition(":")
        out[key.strip()] = value.strip()
    return out


def readme_blocks(text: str) -> list[Block]:
    """Every fenced block to run, with its marks and the output shown after it."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = re.match(r"^(`{3,}|~{3,})\s*([\w+-]*)", lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith(fence.group(1)))
        prev = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        mark = MARK.search(prev) if prev.lstrip().startswith("<!--") else None
        marks = _marks(mark.group(1)) if mark else {}
        lang, body = fence.group(2).lower(), lines[i + 1 : end]
        if lang == "console":  # "$ command" lines run; the other lines are their output
            commands = [ln[2:] for ln in body if ln.startswith("$ ")]
            shown = [ln for ln in body if not ln.startswith("$ ")]
            blocks.append(Block(i + 1, "sh", "\n".join(commands), marks, shown))
        elif lang in RUN:
            blocks.append(Block(i + 1, RUN[lang], "\n".join(body), marks))
        elif "output" in marks:
            assert blocks, f"README.md:{i + 1}: an output block with no block before it"
            blocks[-1].output = body
        i = end + 1
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def test_blocks_are_found_and_exceptions_are_rare_and_explained():
    assert sum(b.lang == "python" for b in BLOCKS) >= 8 and sum(b.lang == "sh" for b in BLOCKS) >= 3
    skipped = [b for b in BLOCKS if "skip" in b.marks]
    assert len(skipped) <= MAX_SKIPS, [b.id for b in skipped]
    for b in skipped:
        assert len(b.marks["skip"]) >= 15, f"{b.id}: a skip needs its reason"
    for b in BLOCKS:
        for name in filter(None, b.marks.get("setup", "").split(",")):
            assert name.strip() in SETUPS, f"{b.id}: unknown setup {name!r}"
        assert "rnnscope._" not in b.code, f"{b.id}: imports a private module"


def _script(block: Block) -> str:
    names = [n.strip() for n in block.marks.get("setup", "").split(",") if n.strip()]
    setup = "import os\n" + "".join(textwrap.dedent(SETUPS[n]) for n in names)
    body = []
    for n, line in enumerate(block.code.splitlines(), start=block.line + 1):
        m = CHECK.match(line)
        if m and not line.lstrip().startswith("#"):
            indent = line[: len(line) - len(line.lstrip())]
            expr, value = m.group("expr").strip(), m.group("value").strip()
            line = f"{indent}__readme_check(({expr}), {value!r}, {n})"
        body.append(line)
    check = (
        "def __readme_check(value, shown, line):\n"
        "    if repr(value) != shown:\n"
        "        raise AssertionError(f'README.md:{line}: shown {shown}, got {value!r}')\n"
    )
    return setup + check + "\n".join(body) + "\n"


DRIVER = """
import contextlib, io, json, runpy, sys, traceback
for path in sys.stdin:
    out, err = io.StringIO(), io.StringIO()
    ok, error = True, ""
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(path.strip(), run_name="__main__")
    except BaseException:
        ok, error = False, traceback.format_exc()
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")
    sys.__stdout__.write(json.dumps({"ok": ok, "error": error, "stdout": out.getvalue(),
                                     "stderr": err.getvalue()[-3000:]}) + "\\n")
    sys.__stdout__.flush()
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("readme")


@pytest.fixture(scope="module")
def env(workdir):
    bindir = workdir / ".bin"
    bindir.mkdir()
    here = Path(sys.executable).parent
    installed = here / "rnnscope"
    for name in ("python", "python3"):  # a script, not a symlink: a symlinked venv python
        (bindir / name).write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # loses its venv
        (bindir / name).chmod(0o755)
    if not installed.exists():  # a checkout without the console script: the same entry point
        (bindir / "rnnscope").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m rnnscope "$@"\n')
        (bindir / "rnnscope").chmod(0o755)
    path = os.pathsep.join([str(bindir), str(here), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}


@pytest.fixture(scope="module")
def driver(workdir, env):
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER],
        cwd=workdir,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    yield proc
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=120)


def _check_output(block: Block, printed: str) -> None:
    lines = [ln.rstrip() for ln in printed.splitlines()]
    at = 0
    for want in block.output or []:
        want = want.rstrip()
        if not want.strip() or want.strip() == "...":
            continue
        prefix = want.endswith("...")
        key = want[:-3].rstrip(", ") if prefix else want
        while at < len(lines) and not (lines[at].startswith(key) if prefix else lines[at] == key):
            at += 1
        assert at < len(lines), f"{block.id}: shown output line not printed: {want!r}\n{printed}"
        at += 1


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block_runs(block, workdir, env, driver):
    if "skip" in block.marks:
        pytest.skip(f"{block.id}: {block.marks['skip']}")
    if block.lang == "python":
        path = workdir / f"block_{block.line}.py"
        path.write_text(_script(block), encoding="utf-8")
        driver.stdin.write(f"{path}\n")
        driver.stdin.flush()
        result = json.loads(driver.stdout.readline())
        assert result["ok"], f"{block.id} failed:\n{result['error']}\n{result['stderr']}"
        printed = result["stdout"]
    else:
        out = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block.code],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        expected = int(block.marks.get("exit", "0"))
        assert out.returncode == expected, (
            f"{block.id}: exit code {out.returncode}, expected {expected}\n{out.stdout[-3000:]}"
            f"\n{out.stderr[-3000:]}"
        )
        printed = out.stdout
    _check_output(block, printed)


def test_a_failing_block_fails(tmp_path):
    """The machinery itself: a wrong shown value and a raising block are caught."""
    wrong = Block(1, "python", "1 + 1  # -> 3")
    code = _script(wrong)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0 and "shown 3, got 2" in out.stderr
    right = Block(1, "python", "(1, 2)  # -> (1, 2)  a comment")
    assert subprocess.run([sys.executable, "-c", _script(right)]).returncode == 0
    text = "x\n<!-- readme-test: skip: needs a GPU to run -->\n```bash\nfalse\n```\n"
    (b,) = readme_blocks(text)
    assert b.marks == {"skip": "needs a GPU to run"}
    (c,) = readme_blocks("```console\n$ echo hi\nhi\n```\n")
    assert (c.lang, c.code, c.output) == ("sh", "echo hi", ["hi"])
    shown = Block(1, "sh", "", output=["a", "c..."])
    _check_output(shown, "a\nb\nc d\n")
    with pytest.raises(AssertionError, match="not printed"):
        _check_output(shown, "c d\na\n")
    assert shutil.which("bash")
