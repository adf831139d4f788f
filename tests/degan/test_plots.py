"""Figures draw every label as it is (no mathtext), whatever characters it holds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from degan import plots

#: label texts that mathtext would parse (and the first would make it fail)
LABELS = ["$a{$", "x_{1}$y$", "c\\d", "{e}", "100%", "=f"]


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """Every (text, ismath) the Agg renderer draws while the test runs."""
    from matplotlib.backends.backend_agg import RendererAgg
    calls: list[tuple[str, bool]] = []
    original = RendererAgg.draw_text

    def record(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):  # type: ignore[no-untyped-def]
        calls.append((s, ismath))
        return original(self, gc, x, y, s, prop, angle, ismath, mtext)
    monkeypatch.setattr(RendererAgg, "draw_text", record)
    return calls


class TestLiteralText:
    def test_mathtext_would_break_these_labels(self, tmp_path: Path) -> None:
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots()
        ax.set_title(LABELS[0])
        with pytest.raises(ValueError):
            fig.savefig(tmp_path / "x.png")
        plt.close(fig)

    def test_confusion(self, tmp_path: Path, drawn: list[tuple[str, bool]]) -> None:
        plots.plot_confusion(np.eye(6, dtype=int), LABELS, tmp_path / "c.png", title=f"fold 0: {LABELS[0]}")
        for label in [*LABELS, f"fold 0: {LABELS[0]}"]:
            assert (label, False) in drawn, label
        assert not any(ismath for _, ismath in drawn)

    def test_image_grid(self, tmp_path: Path, drawn: list[tuple[str, bool]]) -> None:
        tile = np.zeros((8, 8), np.uint8)
        plots.save_image_grid([[tile, tile, tile]] * 2, tmp_path / "g.png", col_titles=LABELS[:3],
                              row_titles=LABELS[3:5], title=LABELS[5])
        for label in LABELS:
            assert (label, False) in drawn, label

    def test_curves(self, tmp_path: Path, drawn: list[tuple[str, bool]]) -> None:
        history = [{"stage": "gan", "epoch": 1, "d_loss": 1.0}, {"stage": "gan", "epoch": 2, "d_loss": 0.5}]
        plots.plot_curves(history, tmp_path / "h.png", title=LABELS[1])
        assert (f"{LABELS[1]} gan", False) in drawn and not any(ismath for _, ismath in drawn)
