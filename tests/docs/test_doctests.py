"""Every ``>>>`` example in the docstrings of facekit/, degan/ and cli/ runs as a doctest.

Examples that need a prepared file or the landmark model are written as plain code blocks
(``::`` and an indented block without ``>>>``), so everything written with ``>>>`` must pass.
Examples run from the repository root (they may use ``fixtures/``).
"""
from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROMPT = re.compile(r"^\s*>>> ", re.M)


def modules_with_examples() -> list[str]:
    """Dotted names of the modules whose source holds a ``>>>`` prompt."""
    names = []
    for package in ("facekit", "degan", "cli"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if PROMPT.search(path.read_text(encoding="utf-8")):
                parts = path.relative_to(ROOT).with_suffix("").parts
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                names.append(".".join(parts))
    return names


MODULES = modules_with_examples()


class TestDoctests:
    def test_some_found(self) -> None:
        assert "facekit.frames.select" in MODULES

    @pytest.mark.parametrize("name", MODULES)
    def test_module(self, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
        if name.startswith("degan"):
            pytest.importorskip("torch")
        monkeypatch.chdir(ROOT)
        module = importlib.import_module(name)
        tests = doctest.DocTestFinder().find(module, name)
        examples = sum(len(t.examples) for t in tests)
        source = Path(module.__file__).read_text(encoding="utf-8")
        # a prompt that doctest does not find (in a comment, a string it cannot see) is a defect too
        assert examples == len(PROMPT.findall(source)), f"{name}: some >>> lines are not doctests"
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        for test in tests:
            runner.run(test)
        result = runner.summarize(verbose=False)
        assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed (output above)"
