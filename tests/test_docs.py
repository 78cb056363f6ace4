"""Docs kept honest: every environment variable keel's code names is in docs/deploy.md."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: a variable name as a string literal in the code: "KEEL_STORE", 'KEEL_TOKEN'
LITERAL = re.compile(r"""["'](KEEL_[A-Z0-9_]*[A-Z0-9])["']""")


def test_every_keel_environment_variable_is_in_the_deployment_guide() -> None:
    named = {
        match.group(1)
        for path in (ROOT / "src" / "keel").rglob("*.py")
        for match in LITERAL.finditer(path.read_text(encoding="utf-8"))
    }
    assert {"KEEL_STORE", "KEEL_SECRET_KEY", "KEEL_STORAGE_OPTIONS"} <= named  # the scan works
    guide = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    missing = sorted(name for name in named if f"`{name}`" not in guide)
    assert missing == [], f"add these to the environment table of docs/deploy.md: {missing}"
