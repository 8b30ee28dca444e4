"""The screenshot harness (scripts/screenshots.py) in Debian's Chromium: one rule page at a desktop's and a
phone's width and one card as the CDS Hooks sandbox draws it, each saved as a PNG that shows something.

Skipped without Chromium or Node, unless CDS_REQUIRE_BROWSER=1 (set by CI) makes that a failure.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from support.browser import require_browser
from support.hooks import ROOT

PLAN, RULE = "red-flags", "RF-1"  # RF-1: the cauda equina red flag, which a synthetic patient has


@pytest.fixture(scope="module")
def browser() -> None:
    require_browser()


def drawn(path: Path) -> Image.Image:
    """The PNG, after checking it is not blank: more than a background colour and a few stray pixels."""
    image = Image.open(path).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 16) or []  # None (more colours than that) is anything but blank
    assert not colours or len(colours) > 8, f"{path.name} is blank: {len(colours)} colours"
    assert any(low != high for low, high in image.getextrema()), f"{path.name} is one colour"
    return image


def test_one_rule_page_and_one_card_are_screenshotted_in_chromium(browser: None, tmp_path: Path):
    harness = [sys.executable, str(ROOT / "scripts" / "screenshots.py")]
    run = subprocess.run(
        [*harness, "--out", str(tmp_path), "--plan", PLAN, "--rule", RULE],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png"))
    assert written == [f"cards/{RULE}.png", f"pages/{PLAN}-1280.png", f"pages/{PLAN}-390.png"]
    for width in (1280, 390):
        page = drawn(tmp_path / "pages" / f"{PLAN}-{width}.png")
        assert page.width == width, f"the page is wider than {width} px: it scrolls sideways"
        assert page.height > 2 * width  # the whole page, not the first screen
    card = drawn(tmp_path / "cards" / f"{RULE}.png")
    assert 100 < card.height < 2000  # one card, drawn to its own height
