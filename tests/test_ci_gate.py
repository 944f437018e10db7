"""scripts/junit_total.py, the gate at the end of scripts/test.sh: its closing line, and in CI a
failure on every skip that tests/skip_allowlist.txt does not name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "junit_total.py"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A real JUnit report from pytest: one pass, one skip with its reason."""
    d = tmp_path_factory.mktemp("junit")
    (d / "test_sample.py").write_text(
        "import pytest\n\n"
        "def test_runs():\n    assert 1 + 1 == 2\n\n"
        "def test_gap():\n    pytest.skip('framework missing')\n"
    )
    xml = d / "leg.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}"],
        cwd=d,
        check=True,
        capture_output=True,
    )
    return xml


def _total(*args: str, ci: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CI": ci}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env
    )


def test_outside_ci_a_skip_is_reported_and_the_run_passes(report, tmp_path):
    out = _total(str(report), "--allow-list", str(tmp_path / "none.txt"))
    assert out.returncode == 0, out.stdout
    lines = out.stdout.splitlines()
    assert lines[-1] == "total: 1 passed, 0 failed, 1 skipped"
    assert "skip: [leg] test_sample::test_gap: framework missing" in lines


@pytest.mark.parametrize("ci", ["true", "1"])
def test_in_ci_a_skip_not_allow_listed_fails_the_run_and_is_named(report, tmp_path, ci):
    out = _total(str(report), "--allow-list", str(tmp_path / "none.txt"), ci=ci)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[-1] == "total: 1 passed, 0 failed, 1 skipped"  # still the closing line
    assert "SKIP NOT ALLOWED: [leg] test_sample::test_gap: framework missing" in lines
    assert lines[-2].startswith("1 skipped test(s) not on the allow-list")


def test_an_allow_listed_skip_passes_in_ci_and_a_reason_is_required(report, tmp_path):
    allow = tmp_path / "allow.txt"
    allow.write_text("# comment\n\ntest_sample::test_g* | needs a GPU, which CI lacks\n")
    out = _total(str(report), "--allow-list", str(allow), ci="true")
    assert out.returncode == 0, out.stdout
    assert "allow-listed skip: [leg] test_sample::test_gap: framework missing" in out.stdout
    allow.write_text("test_sample::test_gap\n")  # no reason
    out = _total(str(report), "--allow-list", str(allow), ci="true")
    assert out.returncode == 1 and "expected '<pattern> | <reason>'" in out.stderr
    out = _total(str(report), "--refuse-skips", "--allow-list", str(tmp_path / "none.txt"))
    assert out.returncode == 1  # the flag does what CI=true does


def test_the_project_allow_list_parses_and_every_entry_has_a_reason():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import junit_total
    finally:
        sys.path.remove(str(SCRIPT.parent))
    entries = junit_total.read_allow_list(ROOT / "tests" / "skip_allowlist.txt")
    assert all(pattern and reason for pattern, reason in entries)
