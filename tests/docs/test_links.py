"""Every relative link in README.md and docs/**/*.md points at a file or folder that exists."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

#: ``[text](target)`` and ``![alt](target)``; the target ends at whitespace or ``)``
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def relative_links(page: Path) -> list[str]:
    """The relative link targets of a markdown page, outside fenced code blocks and inline code."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)
    out = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http:, https:, mailto:, or an anchor on the same page
        out.append(target)
    return out


class TestRelativeLinks:
    def test_pages_found(self) -> None:
        assert ROOT / "README.md" in PAGES and len(PAGES) > 5

    @pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
    def test_targets_exist(self, page: Path) -> None:
        missing = []
        for target in relative_links(page):
            path = target.split("#", 1)[0]
            if not (page.parent / path).exists():
                missing.append(target)
        assert not missing, f"{page.relative_to(ROOT)}: links to missing files: {missing}"

    def test_finds_a_broken_link(self, tmp_path: Path) -> None:
        page = tmp_path / "p.md"
        page.write_text("[ok](p.md) [gone](nothere.md#x) `[code](no.md)` [web](https://x.org)\n"
                        "```\n[fenced](no2.md)\n```\n", encoding="utf-8")
        assert relative_links(page) == ["p.md", "nothere.md#x"]
