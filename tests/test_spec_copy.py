"""docs/SPEC.md is the contract as the workspace holds it (../shared/SPEC.md), word for word."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKSPACE_SPEC = ROOT.parent / "shared" / "SPEC.md"


@pytest.mark.skipif(not WORKSPACE_SPEC.exists(), reason="no workspace copy of the contract beside this checkout")
def test_docs_spec_is_the_workspace_contract() -> None:
    assert (ROOT / "docs" / "SPEC.md").read_text() == WORKSPACE_SPEC.read_text()


def test_readme_links_the_contract_in_the_repository() -> None:
    assert "](docs/SPEC.md)" in (ROOT / "README.md").read_text()
