"""degan.plots: the figures of a run directory, read back as PNGs and through their texts."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from matplotlib.legend import Legend
from matplotlib.text import Text
from PIL import Image

from degan import plots
from degan.metrics import aggregate_folds

#: label texts that mathtext would parse (and the first would make it fail)
LABELS = ["$a{$", "x_{1}$y$", "c\\d", "{e}", "100%", "=f"]


class Drawn:
    """What a figure function drew, read from its figure through ``on_figure`` before it was saved."""

    def __init__(self) -> None:
        self.calls = 0
        self.texts: list[str] = []

    def __call__(self, fig) -> None:  # type: ignore[no-untyped-def]
        self.calls += 1
        self.fig = fig
        self.renderer = fig.canvas.get_renderer()
        self.texts = [t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text()]
        self.legends = [a for a in fig.findobj(Legend)]
        self.plot_axes = [ax for ax in fig.axes if ax.axison]
        self.lines = {ln.get_label(): ln for ax in self.plot_axes for ln in ax.get_lines()}

    def panel_titles(self) -> list[str]:
        return [ax.get_title(loc="left") for ax in self.plot_axes if ax.get_title(loc="left")]


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


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def gan_row(epoch: int, stage: str = "gan") -> dict[str, float | str]:
    return {"stage": stage, "epoch": epoch, "d_expr": 1.4 - epoch / 1000, "d_id": 0.7, "d_fake": 1.39,
            "g_expr": 1.38, "g_id": 0.75, "g_recon": 0.3, "d_acc": 0.5 + epoch / 1000, "g_steps": 1.0,
            "seconds": 0.1, "img_per_s": 100.0, "lr": 1e-3, "d_acc_ema": 0.49}


def local_row(epoch: int, val: bool = True) -> dict[str, float | str]:
    row: dict[str, float | str] = {"stage": "local", "epoch": epoch, "L1": 1.1, "L2": 1.0, "loss": 3.3,
                                   "train_acc": min(100.0, 20.0 + epoch), "seconds": 0.1, "img_per_s": 100.0,
                                   "lr": 1e-3}
    if val:
        row["val_acc"] = 30.0 + epoch / 10
    return row


def history(epochs: int, val: bool = True) -> list[dict[str, float | str]]:
    return [gan_row(e) for e in range(1, epochs + 1)] + [local_row(e, val) for e in range(1, epochs + 1)]


def overlaps(a, b) -> bool:  # type: ignore[no-untyped-def]
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


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
                              row_titles=LABELS[3:5], title=LABELS[5], row_details=[LABELS[0], LABELS[1]])
        for label in LABELS:
            assert (label, False) in drawn, label
        assert not any(ismath for _, ismath in drawn)

    def test_curves(self, tmp_path: Path, drawn: list[tuple[str, bool]]) -> None:
        rows = [{"stage": LABELS[0], "epoch": 1, "d_loss": 1.0}, {"stage": LABELS[0], "epoch": 2, "d_loss": 0.5}]
        plots.plot_curves(rows, tmp_path / "h.png", title=LABELS[1])
        assert (f"{LABELS[1]}: training curves", False) in drawn
        assert (f"{LABELS[0]}: 2 epochs", False) in drawn and not any(ismath for _, ismath in drawn)


class TestAccuracyTitle:
    def test_one_fold_has_no_spread(self) -> None:
        title = plots.accuracy_title("degan", {2: 83.333333})
        assert title == "degan, fold 2: 83.33%"
        assert "±" not in title and "folds" not in title

    def test_several_folds_mean_and_std_as_metrics_json(self) -> None:
        fold_metrics = {f: {"accuracy": a, "confusion": [[1, 0], [0, 1]]} for f, a in enumerate([70.0, 80.0, 95.0])}
        agg = aggregate_folds(fold_metrics, ["a", "b"])
        title = plots.accuracy_title("baseline (mirror)", agg["folds"])
        assert title == f"baseline (mirror), 3 folds: {agg['mean']:.2f} ± {agg['std']:.2f}%"
        assert title == "baseline (mirror), 3 folds: 81.67 ± 10.27%"

    def test_no_folds(self) -> None:
        assert plots.accuracy_title("degan", {}) == "degan, no folds"


class TestPlotConfusion:
    def test_png_size_and_labels(self, tmp_path: Path) -> None:
        seen = Drawn()
        cm = np.array([[3, 1, 0], [0, 2, 0], [1, 0, 4]])
        out = plots.plot_confusion(cm, ["happy", "neutral", "surprise"], tmp_path / "c.png",
                                   title="degan, fold 0: 81.82%", on_figure=seen)
        assert seen.calls == 1 and out == tmp_path / "c.png"
        # 3 classes: the minimum width, 3.6 x 2.9 inches at 110 dpi
        assert png_size(out) == (round(3.6 * 110), round(2.9 * 110))
        for text in ("degan, fold 0: 81.82%", "happy", "neutral", "surprise", "predicted", "true", "75\n(3)",
                     "100\n(2)", "80\n(4)"):
            assert text in seen.texts, text

    def test_unknown_suffix_is_refused_and_nothing_is_written(self, tmp_path: Path) -> None:
        with pytest.raises(OSError, match=r"c\.xyz: cannot write a \.xyz figure"):
            plots.plot_confusion(np.eye(2, dtype=int), ["a", "b"], tmp_path / "c.xyz")
        assert list(tmp_path.iterdir()) == []

    def test_a_failed_save_keeps_the_previous_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        from matplotlib.figure import Figure
        (tmp_path / "c.png").write_bytes(b"previous")

        def broken(self, *a, **k):  # type: ignore[no-untyped-def]
            raise OSError("disk full")
        monkeypatch.setattr(Figure, "savefig", broken)
        with pytest.raises(OSError, match="disk full"):
            plots.plot_confusion(np.eye(2, dtype=int), ["a", "b"], tmp_path / "c.png")
        assert (tmp_path / "c.png").read_bytes() == b"previous" and len(list(tmp_path.iterdir())) == 1


class TestPlotCurves:
    @pytest.mark.parametrize("epochs", [1, 2, 300])
    def test_any_number_of_epochs(self, tmp_path: Path, epochs: int) -> None:
        seen = Drawn()
        out = plots.plot_curves(history(epochs), tmp_path / "c.png", title="degan, fold 3", on_figure=seen)
        assert png_size(out) == (1000, 90 + 2 * 270)                # two stages
        assert "degan, fold 3: training curves" in seen.texts
        noun = "epoch" if epochs == 1 else "epochs"
        assert seen.panel_titles() == [f"stage 1: G and D (adversarial): {epochs} {noun}",
                                       f"stage 2: local CNNs and fused classifier: {epochs} {noun}"]
        for text in ("epoch", "loss", "accuracy (%)", "d_expr", "d_id", "g_recon", "L1", "loss",
                     "d_acc: D real/fake, epoch mean (%)", "d_acc_ema: D real/fake, running (%)",
                     "train_acc: training (%)", "val_acc: inner validation (%)"):
            assert text in seen.texts, text
        for key in ("seconds", "img_per_s", "lr", "g_steps"):
            assert not any(key in t for t in seen.texts), key
        for label, line in seen.lines.items():
            assert len(line.get_xdata()) == epochs, label
            # few epochs: a marker on every one (one epoch is a visible point); many: plain lines
            assert (line.get_marker() not in ("None", None, "")) == (epochs <= plots.MARKER_EPOCHS), label

    @pytest.mark.parametrize("epochs", [1, 2, 300])
    def test_legends_beside_the_panels(self, tmp_path: Path, epochs: int) -> None:
        seen = Drawn()
        plots.plot_curves(history(epochs), tmp_path / "c.png", on_figure=seen)
        assert len(seen.legends) == 2
        fig_box = seen.fig.bbox
        for legend in seen.legends:
            box = legend.get_window_extent(seen.renderer)
            assert box.x0 >= fig_box.x0 and box.x1 <= fig_box.x1 and box.y0 >= fig_box.y0, box
            for ax in seen.plot_axes:          # the panels and their accuracy axes, tick labels included
                assert not overlaps(box, ax.get_tightbbox(seen.renderer)), (box, ax)

    def test_single_epoch_axis_shows_that_epoch(self, tmp_path: Path) -> None:
        seen = Drawn()
        plots.plot_curves(history(1), tmp_path / "c.png", on_figure=seen)
        ax = seen.plot_axes[0]
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1"] and ax.get_xlim() == (0.5, 1.5)

    def test_accuracies_in_percent_on_their_own_axis(self, tmp_path: Path) -> None:
        seen = Drawn()
        rows = history(3)
        plots.plot_curves(rows, tmp_path / "c.png", on_figure=seen)
        d_acc = seen.lines["d_acc: D real/fake, epoch mean (%)"]
        assert list(d_acc.get_ydata()) == pytest.approx([100 * r["d_acc"] for r in rows[:3]])
        assert d_acc.axes.get_ylabel() == "accuracy (%)" and d_acc.axes.get_ylim() == (-3, 103)
        assert seen.lines["d_expr"].axes.get_ylabel() == "loss"

    def test_validation_accuracy_only_with_a_validation_split(self, tmp_path: Path) -> None:
        seen = Drawn()
        plots.plot_curves(history(2, val=False), tmp_path / "c.png", on_figure=seen)
        assert "train_acc: training (%)" in seen.texts
        assert not any("val_acc" in t for t in seen.texts)

    def test_a_panel_per_stage_in_training_order(self, tmp_path: Path) -> None:
        seen = Drawn()
        rows = [gan_row(1, "pretrain"), gan_row(2, "pretrain"), gan_row(1), local_row(1),
                {"stage": "baseline", "epoch": 1, "ce": 1.0, "loss": 1.0, "train_acc": 50.0}]
        out = plots.plot_curves(rows, tmp_path / "c.png", title="degan, fold 0", on_figure=seen)
        assert png_size(out) == (1000, 90 + 4 * 270)
        assert seen.panel_titles() == ["pre-training: stage 1 on the --pretrain file: 2 epochs",
                                       "stage 1: G and D (adversarial): 1 epoch",
                                       "stage 2: local CNNs and fused classifier: 1 epoch",
                                       "baseline CNN: 1 epoch"]

    def test_empty_history(self, tmp_path: Path) -> None:
        seen = Drawn()
        out = plots.plot_curves([], tmp_path / "c.png", title="degan, fold 0", on_figure=seen)
        assert png_size(out) == (1000, 90 + 270) and "no epochs recorded" in seen.texts

    def test_missing_values_are_gaps(self, tmp_path: Path) -> None:
        seen = Drawn()
        rows = [gan_row(1), {**gan_row(2), "g_recon": math.nan}, {k: v for k, v in gan_row(3).items()
                                                                if k != "g_recon"}]
        plots.plot_curves(rows, tmp_path / "c.png", on_figure=seen)
        assert np.isnan(seen.lines["g_recon"].get_ydata()[1:]).all()


class TestUpscale:
    def test_whole_factor_nearest_neighbour(self) -> None:
        img = np.arange(16 * 16, dtype=np.uint8).reshape(16, 16)
        big = plots.upscale(img)
        assert big.shape == (96, 96) and (big[::6, ::6] == img).all() and (big[5::6, 5::6] == img).all()
        assert plots.upscale(np.zeros((48, 48, 3), np.uint8)).shape == (96, 96, 3)
        assert plots.upscale(np.zeros((40, 40), np.uint8)).shape == (120, 120)     # ceil(96 / 40) = 3

    def test_large_images_unchanged(self) -> None:
        img = np.zeros((128, 128), np.uint8)
        assert plots.upscale(img) is img


class TestImageGrid:
    def test_small_tiles_enlarged_and_labelled(self, tmp_path: Path) -> None:
        rng = np.random.default_rng(0)
        tiles = [[rng.integers(0, 255, (16, 16), dtype=np.uint8) for _ in range(3)] for _ in range(2)]
        seen = Drawn()
        out = plots.save_image_grid(tiles, tmp_path / "g.png", ["input", "identity 0\nS002", "identity 4\nS010"],
                                    ["happy", "surprise"], title="run, fold 1: title\nrows: ...",
                                    row_details=["S001 · face 3", "S001 · face 7"], on_figure=seen)
        w, h = png_size(out)
        label_w = 7 * len("S001 · face 7") + 10
        assert (w, h) == (2 * 10 + label_w + 3 * 96 + 2 * 4, 2 * 10 + 2 * 16 + 4 + 2 * 13 + 4 + 2 * 96 + 4)
        for text in ("input", "identity 0\nS002", "identity 4\nS010", "happy", "surprise", "S001 · face 3",
                     "S001 · face 7", "run, fold 1: title\nrows: ..."):
            assert text in seen.texts, text
        # every network pixel is a 6 x 6 square of the PNG (no smoothing)
        with Image.open(out) as im:
            png = np.asarray(im.convert("L"))
        top, left = 10 + 2 * 16 + 4 + 2 * 13 + 4, 10 + label_w
        first = png[top:top + 96, left:left + 96]
        assert (first == plots.upscale(tiles[0][0])).all()
        second_row = png[top + 100:top + 196, left + 100:left + 196]
        assert (second_row == plots.upscale(tiles[1][1])).all()

    def test_no_labels_no_margins_for_them(self, tmp_path: Path) -> None:
        tile = np.zeros((100, 100, 3), np.uint8)
        out = plots.save_image_grid([[tile, tile]], tmp_path / "g.png")
        assert png_size(out) == (2 * 10 + 2 * 100 + 4, 2 * 10 + 100)

    def test_long_titles_are_drawn_smaller_to_fit(self, tmp_path: Path) -> None:
        seen = Drawn()
        tile = np.zeros((16, 16), np.uint8)
        plots.save_image_grid([[tile, tile, tile]], tmp_path / "g.png",
                              ["input", "identity 1\nsubject-name-long", "identity 2\n" + "x" * 80], on_figure=seen)
        texts = {t.get_text(): t for t in seen.fig.findobj(Text)}
        smaller = texts["identity 1\nsubject-name-long"]          # smaller, whole
        assert smaller.get_fontsize() < 8 and smaller.get_window_extent(seen.renderer).width <= 96 + 4
        short = next(t for s, t in texts.items() if s.startswith("identity 2\nxxx"))   # too long: shortened
        assert short.get_text().endswith("…") and short.get_window_extent(seen.renderer).width <= 96 + 4
        assert texts["input"].get_fontsize() == 8


@pytest.fixture(scope="module")
def titles(canvas_file: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Tiny runs of fold 1 and of folds 0 and 2, and their re-evaluations, with the texts of every
    confusion and curves figure they wrote (by path), read through ``on_figure``."""
    from degan.evaluate import evaluate_run
    from degan.presets import get_preset
    from degan.train import run_cv
    seen: dict[str, list[str]] = {}
    wrapped = {}
    for name in ("plot_confusion", "plot_curves"):
        original = getattr(plots, name)

        def record(*a, _original=original, **k):  # type: ignore[no-untyped-def]
            hook = Drawn()
            out = _original(*a, on_figure=hook, **k)
            seen[str(out)] = hook.texts
            return out
        wrapped[name] = record
    root = tmp_path_factory.mktemp("titles")
    with pytest.MonkeyPatch.context() as mp:
        for name, fn in wrapped.items():
            mp.setattr(plots, name, fn)
        run_cv(canvas_file, get_preset("tiny"), root / "one", folds=[1], progress=False)
        run_cv(canvas_file, get_preset("tiny"), root / "two", folds=[0, 2], progress=False)
        evaluate_run(root / "one", progress=False)
        evaluate_run(root / "two", progress=False)
    return root, seen


class TestRunFigures:
    """The titles a run writes (fold, run and re-evaluation), read through ``on_figure``."""

    def test_single_fold_run_prints_no_spread(self, titles) -> None:  # type: ignore[no-untyped-def]
        root, seen = titles
        acc = json.loads((root / "one" / "metrics.json").read_text())["folds"]["1"]
        for where, what in (("one/confusion.png", "degan"), ("one/fold_01/confusion.png", "degan"),
                            ("one/evals/own/confusion.png", "degan (own)")):
            texts = seen[str(root / where)]
            assert f"{what}, fold 1: {acc:.2f}%" in texts, where
            assert not any("±" in t or "folds" in t for t in texts), where
            assert png_size(root / where) == (396, 319)

    def test_several_folds_mean_and_std(self, titles) -> None:  # type: ignore[no-untyped-def]
        root, seen = titles
        m = json.loads((root / "two" / "metrics.json").read_text())
        assert f"degan, 2 folds: {m['mean']:.2f} ± {m['std']:.2f}%" in seen[str(root / "two" / "confusion.png")]
        assert f"degan (own), 2 folds: {m['mean']:.2f} ± {m['std']:.2f}%" in \
            seen[str(root / "two" / "evals" / "own" / "confusion.png")]
        for f in (0, 2):
            texts = seen[str(root / "two" / f"fold_{f:02d}" / "confusion.png")]
            assert f"degan, fold {f}: {m['folds'][str(f)]:.2f}%" in texts and not any("±" in t for t in texts)

    def test_curves_name_method_and_fold(self, titles) -> None:  # type: ignore[no-untyped-def]
        root, seen = titles
        texts = seen[str(root / "two" / "fold_02" / "curves.png")]
        assert "degan, fold 2: training curves" in texts
        assert "stage 1: G and D (adversarial): 1 epoch" in texts
        assert png_size(root / "two" / "fold_02" / "curves.png") == (1000, 90 + 2 * 270)
