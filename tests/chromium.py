"""Headless Chromium for the tests that look at a page as a browser renders it.

`render(url, screenshot, window, home)` loads the page twice, as the command line
allows: once for the DOM after scripts ran (returned), once for a PNG screenshot
saved to `screenshot` (a test artifact under `ARTIFACTS`, kept for people to
look at). A fresh profile and HOME under the test's tmp_path, and no background
networking: nothing leaves the machine but the page's own requests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import REPO, needs_tool

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = needs_tool(CHROMIUM, "chromium")


def render(url: str, screenshot: Path, window: tuple[int, int], home: Path) -> str:
    """The page's DOM after its scripts ran; its screenshot is saved to `screenshot`."""
    screenshot.parent.mkdir(exist_ok=True)
    screenshot.unlink(missing_ok=True)
    flags = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={home / 'profile'}",
        f"--window-size={window[0]},{window[1]}",
    ]
    env = {**os.environ, "HOME": str(home)}
    dom = subprocess.run(
        [*flags, "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    ).stdout
    subprocess.run(
        [*flags, f"--screenshot={screenshot}", url],
        capture_output=True,
        timeout=120,
        env=env,
        check=True,
    )
    return dom
