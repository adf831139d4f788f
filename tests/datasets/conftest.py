"""Fixtures for the dataset-adapter tests: writable copies of the fixture trees."""
from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def tree_copy(fixtures_dir: Path, tmp_path: Path) -> Callable[[str], Path]:
    """``tree_copy("ck+")`` copies ``fixtures/ck+`` into ``tmp_path`` and returns the copy."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(fixtures_dir / name, target)
        return target

    return copy
