"""Every relative link in README.md and docs/ points at a file or directory that exists.

Docs that point at a moved or renamed file mislead a maintainer quietly; this catches it when
the move is made.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


_FENCED_BLOCK = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def relative_links(text: str) -> list[str]:
    """Link targets outside code, without their #fragment; absolute URLs and anchors left out."""
    prose = _INLINE_CODE.sub("", _FENCED_BLOCK.sub("", text))
    targets = []
    for target in _LINK.findall(prose):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return targets


def test_relative_links_are_found_and_others_left_out() -> None:
    text = (
        "See [a](docs/a.md#part), [b](../b/) and [c](https://example.com/x.md).\n"
        "Not [d](#anchor), nor `[e](e.md)` in code:\n"
        "```\n[f](f.md)\n```\n"
    )
    assert relative_links(text) == ["docs/a.md", "../b/"]


def test_the_docs_have_links_to_check() -> None:
    assert len(relative_links((ROOT / "README.md").read_text())) >= 5


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_something_that_exists(path: Path) -> None:
    broken = [
        target for target in relative_links(path.read_text()) if not (path.parent / target).exists()
    ]
    assert broken == [], f"{path.relative_to(ROOT)} links to missing files: {broken}"
