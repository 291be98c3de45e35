"""docs/env.md, the Snake reference page: its examples run, its anchors resolve, it stands alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "env.md"
# The sdist ships the packages, not docs/: there this page's checks skip.
pytestmark = pytest.mark.skipif(not PAGE.is_file(), reason="docs/ is not in the sdist")


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_examples_run_in_order(tmp_path, monkeypatch):
    """Every ```python block runs, top to bottom in one namespace (GIFs land in tmp_path)."""
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(PAGE.read_text())
    assert len(blocks) >= 8
    namespace: dict = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{PAGE.name} block {i}", "exec"), namespace)
    assert (tmp_path / "runs" / "snake.gif").is_file()
    assert (tmp_path / "runs" / "episode.gif").is_file()


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_anchors_resolve_and_no_link_leaves_the_repository():
    text = PAGE.read_text()
    anchors = {slug(h) for h in re.findall(r"^#+ (.*)$", text, flags=re.M)}
    links = re.findall(r"\]\(([^)]*)\)", text)
    assert links
    for link in links:
        assert "://" not in link and not link.startswith("/"), link
        if link.startswith("#"):
            assert link[1:] in anchors, link
        else:
            assert (PAGE.parent / link.split("#")[0]).exists(), link
    assert "http://" not in text and "https://" not in text
