"""docs/figures/make_figures.py: the documentation's example figures, rendered from the fixtures."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "figures" / "make_figures.py"


@pytest.fixture(scope="module")
def figures():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("make_figures", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_figures"] = mod  # dataclasses look their module up by name
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop("make_figures", None)


@pytest.fixture(scope="module")
def made(figures, model_path, tmp_path_factory):  # type: ignore[no-untyped-def]
    """Every figure rendered once into a temporary folder."""
    out = tmp_path_factory.mktemp("img")
    return {p.name: (p, size, wh) for p, size, wh in figures.make(list(figures.FIGURES), out)}


class TestRegistry:
    def test_both_preview_sheets_are_registered(self, figures) -> None:
        assert {"contact_sheet", "source_sheet"} <= set(figures.FIGURES)
        assert all(f.about for f in figures.FIGURES.values())

    def test_degan_figures_are_registered(self, figures) -> None:
        assert {"curves", "confusion", "synthesis", "synthesis_strip"} <= set(figures.FIGURES)

    def test_a_name_is_registered_once(self, figures) -> None:
        with pytest.raises(ValueError, match="registered twice"):
            figures.figure("contact_sheet")(lambda ws: ws.tmp)

    def test_list_and_unknown_names(self, figures, capsys) -> None:
        assert figures.main(["--list"]) == 0
        assert "contact_sheet" in capsys.readouterr().out
        assert figures.main(["--only", "nope"]) == 2
        assert "error: no figure named nope" in capsys.readouterr().err


class TestPublish:
    def test_palette_png_within_the_budget(self, figures, tmp_path: Path) -> None:
        rng = np.random.default_rng(0)
        src = tmp_path / "src.png"
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(src)
        size = figures.publish(src, tmp_path / "out.png")
        with Image.open(tmp_path / "out.png") as im:
            assert im.mode == "P" and im.size == (64, 64)
        assert size == (tmp_path / "out.png").stat().st_size

    def test_too_large_is_refused_and_nothing_is_left(self, figures, tmp_path: Path) -> None:
        src = tmp_path / "src.png"
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(src)
        (tmp_path / "out.png").write_bytes(b"previous")
        with pytest.raises(figures.FigureError, match=r"out\.png: \d+ bytes, more than the 100 allowed"):
            figures.publish(src, tmp_path / "out.png", max_bytes=100)
        assert (tmp_path / "out.png").read_bytes() == b"previous"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "src.png"]


class TestFigures:
    def test_contact_sheet(self, made, figures) -> None:
        path, size, (w, h) = made["contact_sheet.png"]
        assert size <= figures.MAX_BYTES
        # the folder fixture: 3 classes, at most 4 faces a class; 3 rows of a caption and a 128-px tile
        assert h == 2 * 10 + 3 * 17 + 6 + 3 * (14 + 128) + 2 * 6 and w >= 2 * 10 + 130 + 4 * 128 + 3 * 6

    def test_source_sheet(self, made, figures) -> None:
        path, size, (w, h) = made["source_sheet.png"]
        assert size <= figures.MAX_BYTES
        # the aligned face and 11 rows of 10 samples at 72 px (the title may make it wider)
        assert h == 2 * 10 + 3 * 17 + 6 + 12 * (14 + 72) + 11 * 6 and w >= 2 * 10 + 10 * 72 + 9 * 6

    def test_curves(self, made, figures) -> None:
        path, size, (w, h) = made["curves.png"]
        assert size <= figures.MAX_BYTES
        assert (w, h) == (1000, 90 + 2 * 270)           # stage 1 and stage 2 panels

    def test_confusion(self, made, figures) -> None:
        path, size, (w, h) = made["confusion.png"]
        assert size <= figures.MAX_BYTES
        assert (w, h) == (396, 319)                     # 3 classes at the smallest width

    def test_synthesis(self, made, figures) -> None:
        path, size, (w, h) = made["synthesis.png"]
        assert size <= figures.MAX_BYTES
        # a 3-line title, 2-line column titles, 3 rows (classes) of 32-px images shown at 96 px; input + 2 identities
        assert h == 2 * 10 + 3 * 16 + 4 + 2 * 13 + 4 + 3 * 96 + 2 * 4 and w >= 2 * 10 + 60 + 3 * 96 + 2 * 4

    def test_synthesis_strip(self, made, figures) -> None:
        path, size, (w, h) = made["synthesis_strip.png"]
        assert size <= figures.MAX_BYTES
        assert h == 2 * 10 + 3 * 16 + 4 + 2 * 13 + 4 + 96 and w >= 2 * 10 + 3 * 96 + 2 * 4

    def test_committed_figures_are_the_registered_ones_and_small(self, figures) -> None:
        for name in figures.FIGURES:
            png = ROOT / "docs" / "img" / f"{name}.png"
            assert png.is_file() and png.stat().st_size <= figures.MAX_BYTES
            with Image.open(png) as im:
                assert im.format == "PNG"
