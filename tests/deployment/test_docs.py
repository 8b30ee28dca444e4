"""The README stays true: every setting is documented, and every documented CDS_* variable exists."""

from __future__ import annotations

import re

from cds_service.config import Settings

from support.hooks import ROOT


def test_every_setting_is_in_the_readme_and_nothing_else() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `(CDS_[A-Z_]+)` \|", readme, flags=re.MULTILINE))
    settings = {f"CDS_{name.upper()}" for name in Settings.model_fields}
    assert documented == settings
