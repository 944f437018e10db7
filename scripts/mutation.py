"""Mutation score of rnnscope's numeric core, measured with mutmut (too slow for CI).

    pip install -e '.[test]'          # mutmut is in the test extra
    python scripts/mutation.py        # about 1.5 hours on one core; resumes where it stopped
    python scripts/mutation.py --report-only

Three steps, all from the project root:

1. ``mutmut run`` mutates the modules listed in ``[tool.mutmut] only_mutate`` (pyproject.toml)
   and runs, for each mutant, the fast tests of ``pytest_add_cli_args_test_selection`` that
   reach the mutated function (numpy and torch only: seconds per mutant). Results are cached in
   ``mutants/``; a rerun continues where the last one stopped.
2. Every mutant that survived (or that no selected test reached) is run again against the tests
   written to kill survivors, ``tests/test_mutation_kills_*.py``: each in a forked process with
   ``MUTANT_UNDER_TEST`` naming it, exactly as mutmut runs one.
3. The report: per module the mutants, killed by the suite, killed by the kill tests, timeouts,
   survivors explained as equivalent (listed with their reason in docs/mutation.md, section
   "Equivalent mutants") and survivors unexplained. It replaces the results section of
   docs/mutation.md and is printed.

The run is niced and uses one worker (``--max-children``) so it shares the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "mutation.md"
BEGIN, END = "<!-- mutation results: begin -->", "<!-- mutation results: end -->"
KILLED = {1, 3}  # pytest: tests failed / internal error, as mutmut counts them
TIMEOUT = {36, -24, 24, 152, 255, -9, -11}
SURVIVED, NO_TESTS = 0, {5, 33}
MUTMUT = Path(sys.executable).with_name("mutmut")


def run_mutmut(max_children: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    cmd = ["nice", "-n", "10", str(MUTMUT), "run", "--max-children", str(max_children)]
    subprocess.run(cmd, cwd=ROOT, env=env, check=False)


def load_results() -> dict[str, dict[str, int | None]]:
    """``{source file: {mutant: exit code}}`` from mutmut's cache, for the configured modules."""
    only = _only_mutate()
    out = {}
    for path in sorted((ROOT / "mutants").glob("src/**/*.py.meta")):
        source = str(path.relative_to(ROOT / "mutants"))[: -len(".meta")]
        if source in only:
            out[source] = json.loads(path.read_text())["exit_code_by_key"]
    return out


def _only_mutate() -> list[str]:
    text = (ROOT / "pyproject.toml").read_text()
    block = text.split("[tool.mutmut]", 1)[1].split("\n[", 1)[0]
    listed = block.split("only_mutate", 1)[1].split("]", 1)[0]
    return re.findall(r'"([^"]+)"', listed)


# Kill tests run against each survivor: all of tests/test_mutation_kills_*.py, except that the
# slow torch-model ones (capture) run only for the modules they reach (dispatch and layouts).
SLOW_KILL_TESTS = {
    "tests/test_mutation_kills_capture.py": ("rnnscope._capture", "rnnscope._layouts")
}

_RECHECK = r"""
import importlib.util, os, signal, sys
import numpy, pytest, rnnscope  # imported once; every child forks from here
if importlib.util.find_spec("torch"):
    import torch
assert "mutants" in rnnscope.__file__, rnnscope.__file__
for line in sys.stdin.read().splitlines():
    name, tests = line.split(" ", 1)
    pid = os.fork()
    if pid == 0:
        os.environ["MUTANT_UNDER_TEST"] = name
        signal.alarm(120)
        code = pytest.main(["-q", "-x", "-p", "no:cacheprovider", "--no-header", *tests.split()])
        os._exit(int(code))
    print(name, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
"""


def _kill_tests(name: str) -> list[str]:
    module = name.split(".x", 1)[0].replace(".__init__", "")
    every = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("tests/test_mutation_kills_*.py"))
    return [t for t in every if module in SLOW_KILL_TESTS.get(t, (module,))]


def recheck(names: list[str]) -> dict[str, int]:
    """Exit codes of the kill tests with each mutant active (1: killed, 0: survived)."""
    if not names:
        return {}
    env = {**os.environ, "PYTHONPATH": str(ROOT / "mutants" / "src"), "OMP_NUM_THREADS": "1"}
    env.pop("MUTANT_UNDER_TEST", None)
    lines = [f"{n.replace('__init__.', '')} {' '.join(_kill_tests(n))}" for n in names]
    out = subprocess.run(
        ["nice", "-n", "10", sys.executable, "-c", _RECHECK],
        input="\n".join(lines),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    codes = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit() and "__mutmut_" in parts[0]:
            codes[parts[0]] = int(parts[1])
    missing = [n for n in names if n.replace("__init__.", "") not in codes]
    if missing:
        sys.exit(f"recheck gave no result for {len(missing)} mutants:\n{out.stderr[-3000:]}")
    return {n: codes[n.replace("__init__.", "")] for n in names}


def listed(section: str) -> dict[str, str]:
    """Mutant name -> reason, from one section of docs/mutation.md (lines "- `name`, ...: why")."""
    parts = DOC.read_text().split(f"\n## {section}\n", 1) if DOC.exists() else []
    if len(parts) < 2:
        return {}
    out = {}
    for line in parts[1].split("\n## ", 1)[0].splitlines():
        m = re.match(r"- (`[^`]+`(?:, `[^`]+`)*): (.+)", line)
        if m:
            out.update(dict.fromkeys(re.findall(r"`([^`]+)`", m.group(1)), m.group(2)))
    return out


def _module(source: str) -> str:
    return source.removeprefix("src/").removesuffix(".py").replace("/", ".")


COLUMNS = [
    "mutants",
    "killed by the suite",
    "killed by kill tests",
    "killed by slower tests",
    "timeouts",
    "equivalent",
    "survived",
    "not run",
]


def classify(code: int | None, name: str, rechecked: dict[str, int]) -> str:
    if code in KILLED:
        return "killed by the suite"
    if code in TIMEOUT:
        return "timeouts"
    if code is None:
        return "not run"
    if rechecked.get(name) in KILLED or rechecked.get(name) in TIMEOUT:
        return "killed by kill tests"
    if name in listed("Killed by tests outside the fast selection"):
        return "killed by slower tests"
    if name in listed("Equivalent mutants"):
        return "equivalent"
    return "survived"


def report(results: dict[str, dict[str, int | None]], rechecked: dict[str, int]) -> str:
    rows, survivors, total = [], [], Counter[str]()
    for source, codes in results.items():
        c = Counter(classify(code, name, rechecked) for name, code in codes.items())
        c["mutants"] = len(codes)
        survivors += [n for n, code in codes.items() if classify(code, n, rechecked) == "survived"]
        total.update(c)
        rows.append((f"`{_module(source)}`", c))
    rows.append(("**all**", total))
    lines = [
        "| module | " + " | ".join(COLUMNS) + " | killed | killed or equivalent |",
        "|---" * (len(COLUMNS) + 3) + "|",
    ]
    for module, c in rows:
        killed = sum(c[k] for k in COLUMNS[1:5])
        run = max(c["mutants"] - c["not run"], 1)
        lines.append(
            f"| {module} | "
            + " | ".join(str(c[k]) for k in COLUMNS)
            + f" | {100 * killed / run:.1f} % | {100 * (killed + c['equivalent']) / run:.1f} % |"
        )
    lines += ["", f"Unexplained survivors: {len(survivors)}"]
    lines += [f"- `{n}`" for n in survivors]
    return "\n".join(lines)


def write_doc(table: str) -> None:
    text = DOC.read_text() if DOC.exists() else f"# Mutation testing\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    DOC.write_text(f"{head}{BEGIN}\n{table}\n{END}{rest.split(END, 1)[1]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-children", type=int, default=1)
    parser.add_argument("--report-only", action="store_true", help="no mutmut run, no recheck")
    parser.add_argument(
        "--recheck-new", action="store_true", help="recheck only survivors no kill test killed yet"
    )
    args = parser.parse_args()
    if not MUTMUT.exists():
        sys.exit("mutmut is not installed: pip install -e '.[test]'")
    if not args.report_only:
        run_mutmut(args.max_children)
    results = load_results()
    if not results:
        sys.exit("no mutmut results in mutants/: run without --report-only first")
    cache = ROOT / "mutants" / "kill-tests.json"
    rechecked = json.loads(cache.read_text()) if cache.exists() else {}
    if not args.report_only:
        todo = [n for codes in results.values() for n, c in codes.items() if c == SURVIVED]
        todo += [n for codes in results.values() for n, c in codes.items() if c in NO_TESTS]
        if args.recheck_new:  # kill tests are only ever added: a killed mutant stays killed
            todo = [n for n in todo if rechecked.get(n) not in KILLED]
        else:
            rechecked = {}
        rechecked.update(recheck(todo))
        cache.write_text(json.dumps(rechecked, indent=1))
    table = report(results, rechecked)
    write_doc(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
