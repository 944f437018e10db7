"""Redraw docs/images/report_100.png: the first screen of the report of the 100-checkpoint run
that tests/test_report.py builds (a growing recurrent kernel, dead units, a NaN, a jump).

    python scripts/report_screenshot.py     # needs Chromium and playwright (the test extra)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_report import _write_run  # noqa: E402  (the run the browser test reads)

import rnnscope  # noqa: E402


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        folder = _write_run(Path(tmp) / "ck")
        out = rnnscope.report(
            folder, out=Path(tmp) / "r.html", title="A training run: 100 checkpoints of an LSTM(6)"
        )
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium")
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(out.as_uri(), wait_until="load")
            target = ROOT / "docs" / "images" / "report_100.png"
            page.screenshot(path=str(target))
            browser.close()
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
