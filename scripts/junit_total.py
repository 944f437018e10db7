"""Add up pytest's JUnit reports from several runs and print one closing line.

    python scripts/junit_total.py REPORT.xml [...] [--allow-list tests/skip_allowlist.txt]

The closing line is always the last line printed: ``total: N passed, N failed, N skipped``.
The run fails (exit 1) on any failure or error, when nothing passed, and, in CI (environment
variable ``CI`` set to ``true``/``1``/``yes``) or with ``--refuse-skips``, on any skipped test that
the allow-list does not name. Each such skip is printed with its reason before the closing line.

The allow-list has one entry a line, ``<pattern> | <reason>``: the pattern is a shell glob over the
test's id as the report writes it, ``<classname>::<name>`` (e.g.
``tests.test_report::test_report_renders_in_headless_chromium``), and the reason is required.
Blank lines and lines starting with ``#`` are comments.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

DEFAULT_ALLOW_LIST = Path(__file__).resolve().parents[1] / "tests" / "skip_allowlist.txt"


def read_allow_list(path: Path) -> list[tuple[str, str]]:
    """``(pattern, reason)`` pairs; a line without a reason is an error."""
    if not path.exists():
        return []
    entries = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pattern, sep, reason = (part.strip() for part in line.partition("|"))
        if not sep or not pattern or not reason:
            raise SystemExit(f"{path}:{number}: expected '<pattern> | <reason>', got {raw!r}")
        entries.append((pattern, reason))
    return entries


def skipped_tests(root: ET.Element) -> list[tuple[str, str]]:
    """``(test id, skip message)`` of every skipped test case in one report."""
    out = []
    for case in root.iter("testcase"):
        skip = case.find("skipped")
        if skip is not None:
            test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
            out.append((test_id, skip.get("message", "") or (skip.text or "").strip()))
    return out


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--allow-list", type=Path, default=DEFAULT_ALLOW_LIST)
    parser.add_argument(
        "--refuse-skips", action="store_true", help="fail on skips not allow-listed (CI does)"
    )
    args = parser.parse_args(argv)
    allowed = read_allow_list(args.allow_list)
    total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    skips: list[tuple[str, str, str]] = []  # (report, test id, message)
    for path in args.reports:
        root = ET.parse(path).getroot()
        suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
        for suite in suites:
            for key in total:
                total[key] += int(suite.get(key, 0))
        skips += [(path.stem, t, m) for t, m in skipped_tests(root)]
    refuse = args.refuse_skips or _ci()
    unlisted = 0
    for report, test_id, message in skips:
        listed = any(fnmatch.fnmatchcase(test_id, p) for p, _ in allowed)
        unlisted += not listed
        tag = "allow-listed skip" if listed else "SKIP NOT ALLOWED" if refuse else "skip"
        print(f"{tag}: [{report}] {test_id}: {message}")
    failed = total["failures"] + total["errors"]
    passed = total["tests"] - failed - total["skipped"]
    status = 1 if failed or passed == 0 else 0
    if refuse and unlisted:
        print(
            f"{unlisted} skipped test(s) not on the allow-list {args.allow_list}: "
            "CI runs every test (add a line '<pattern> | <reason>' there only for a documented "
            "reason)"
        )
        status = 1
    print(f"total: {passed} passed, {failed} failed, {total['skipped']} skipped")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
