from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from PIL import Image

from degan import plots
from degan.config import DeganConfig
from degan.errors import RunDirError
from degan.checkpoint import load_generator
from degan.synthesize import resolve_identity, synthesize, synthesize_file, write_fold_grid
from degan.train import run_cv

from .test_plots import Drawn, png_size

#: pixel layout of the labelled figures (degan.plots.save_image_grid): margin, gap, title line, column-title line
MARGIN, GAP, TITLE_LINE, HEAD_LINE = 10, 4, 16, 13
#: the tiny preset's 16-px images are enlarged 6x
TILE = 96


@pytest.fixture(scope="module")
def degan_run(tmp_path_factory: pytest.TempPathFactory, canvas_file: Path) -> Path:
    from degan.presets import get_preset
    out = tmp_path_factory.mktemp("synth") / "run"
    run_cv(canvas_file, get_preset("tiny"), out, folds=[1], progress=False)
    return out


class TestSynthesize:
    def test_shapes(self, degan_run: Path) -> None:
        G, meta, cfg = load_generator(degan_run)
        x = torch.rand(2, 1, cfg.arch.image_size, cfg.arch.image_size) * 2 - 1
        y = synthesize(G, x, [0, 1, 2])
        assert y.shape == (2, 3, 1, cfg.arch.image_size, cfg.arch.image_size)
        assert meta["fold"] == 1 and meta["n_identities"] == 4

    def test_aligned_crop_to_raw_png(self, degan_run: Path, tmp_path: Path) -> None:
        face = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
        src = tmp_path / "face.png"
        cv2.imwrite(str(src), face)
        out = synthesize_file(degan_run, src, ["0", "S005"], tmp_path / "o" / "out.png", aligned=True,
                              with_input=True, raw=True)
        img = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
        assert img.shape == (16, 48)             # input + two identities, 16 px each, grayscale
        one = synthesize_file(degan_run, src, ["S005"], tmp_path / "one.png", aligned=True, raw=True)
        assert (cv2.imread(str(one), cv2.IMREAD_UNCHANGED) == img[:, 32:]).all()

    def test_raw_unknown_extension(self, degan_run: Path, tmp_path: Path) -> None:
        src = tmp_path / "face.png"
        cv2.imwrite(str(src), np.full((40, 40), 90, np.uint8))
        with pytest.raises(OSError, match="unknown extension"):
            synthesize_file(degan_run, src, ["0"], tmp_path / "out.xyz", aligned=True, raw=True)
        assert not (tmp_path / "out.xyz").exists()

    def test_identity_resolution(self) -> None:
        meta = {"identity_names": ["S001", "S004"]}
        assert resolve_identity("S004", meta) == 1 and resolve_identity(0, meta) == 0
        with pytest.raises(ValueError, match="out of range"):
            resolve_identity("5", meta)
        with pytest.raises(ValueError, match="neither"):
            resolve_identity("S999", meta)

    def test_baseline_run_has_no_generator(self, canvas_file: Path, tmp_path: Path, tiny_cfg: DeganConfig) -> None:
        run_cv(canvas_file, tiny_cfg.replace(method="baseline"), tmp_path / "b", folds=[0], progress=False)
        with pytest.raises(RunDirError, match="baseline"):
            load_generator(tmp_path / "b")

    def test_alignment_path(self, degan_run: Path, tmp_path: Path, model_path: Path, jaffe_dir: Path) -> None:
        src = sorted(jaffe_dir.glob("*.tiff"))[0]
        out = synthesize_file(degan_run, src, ["1"], tmp_path / "a.png", model_path=str(model_path), raw=True)
        assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).shape == (16, 16)

    def test_no_face(self, degan_run: Path, tmp_path: Path, model_path: Path) -> None:
        from facekit.errors import NoFaceError
        src = tmp_path / "flat.png"
        cv2.imwrite(str(src), np.full((200, 200), 90, np.uint8))
        with pytest.raises(NoFaceError, match="--aligned"):
            synthesize_file(degan_run, src, ["1"], tmp_path / "b.png", model_path=str(model_path))
        assert not (tmp_path / "b.png").exists()


class TestSynthesisStrip:
    """``degan-synthesize``'s labelled figure: the input and each identity, tiles of at least 96 px."""

    def test_labelled_tiles_at_a_visible_size(self, degan_run: Path, tmp_path: Path) -> None:
        face = np.random.default_rng(1).integers(0, 255, (64, 64), dtype=np.uint8)
        src = tmp_path / "my_face.png"
        cv2.imwrite(str(src), face)
        seen = Drawn()
        out = synthesize_file(degan_run, src, ["0", "S005"], tmp_path / "strip.png", aligned=True, on_figure=seen)
        meta = load_generator(degan_run)[1]
        names = meta["identity_names"]
        assert seen.calls == 1
        for text in ("input", f"identity 0\n{names[0]}", f"identity {names.index('S005')}\nS005"):
            assert text in seen.texts, text
        title = next(t for t in seen.texts if t.startswith(f"{degan_run.name}, fold 1:"))
        assert "my_face.png" in title and "columns: the input, then its expression on training identities" in title
        w, h = png_size(out)
        head = 2 * HEAD_LINE + GAP
        assert h == 2 * MARGIN + 3 * TITLE_LINE + GAP + head + TILE and w >= 2 * MARGIN + 3 * TILE + 2 * GAP
        # the tiles are the raw strip's pixels, each enlarged 6x without smoothing
        raw = synthesize_file(degan_run, src, ["0", "S005"], tmp_path / "raw.png", aligned=True, with_input=True,
                              raw=True)
        strip = cv2.imread(str(raw), cv2.IMREAD_UNCHANGED)
        with Image.open(out) as im:
            png = np.asarray(im.convert("L"))
        top = MARGIN + 3 * TITLE_LINE + GAP + head
        for k in range(3):
            x0 = MARGIN + k * (TILE + GAP)
            assert (png[top:top + TILE, x0:x0 + TILE] == plots.upscale(strip[:, 16 * k:16 * (k + 1)])).all(), k

    def test_one_identity_still_shows_the_input(self, degan_run: Path, tmp_path: Path) -> None:
        src = tmp_path / "face.png"
        cv2.imwrite(str(src), np.full((40, 40), 90, np.uint8))
        seen = Drawn()
        synthesize_file(degan_run, src, ["1"], tmp_path / "s.png", aligned=True, on_figure=seen)
        assert "input" in seen.texts and any(t.startswith("identity 1\n") for t in seen.texts)


class TestFoldGrid:
    """``synthesis.png`` of a fold: rows the test faces by class, columns the input and identities."""

    def test_written_by_training_labelled_and_large(self, degan_run: Path, canvas_file: Path, tmp_path: Path) -> None:
        from degan.data import make_split, read_file_info
        G, meta, cfg = load_generator(degan_run)
        info = read_file_info(canvas_file)
        split = make_split(info, 1, cfg)
        seen = Drawn()
        out = write_fold_grid(G, info, split, cfg, torch.device("cpu"), tmp_path / "grid.png", run="myrun",
                              on_figure=seen)
        assert out.read_bytes() != (degan_run / "fold_01" / "synthesis.png").read_bytes()      # another run name
        labels = info.label[split.test]
        classes = [c for c in range(info.n_classes) if (labels == c).any()]
        ids = [0, 2, 3]                        # runtime.grid_identities = 3 of the 4, spread over the indices
        for c in classes:
            assert info.label_names[c] in seen.texts
            first = int(split.test[np.flatnonzero(labels == c)[0]])
            assert f"{info.subjects[int(info.subject[first])]} · face {int(info.face[first])}" in seen.texts
        for i in ids:
            assert f"identity {i}\n{split.identity_names[i]}" in seen.texts
        assert "input" in seen.texts
        title = seen.texts[0] if seen.texts[0].startswith("myrun") else next(t for t in seen.texts
                                                                             if t.startswith("myrun"))
        assert title.splitlines() == ["myrun, fold 1: expression transfer by G (z = 0)",
                                      "rows: one test face per class (true class, subject · face index)",
                                      "columns: the input, then its expression on training identities"]
        for png in (out, degan_run / "fold_01" / "synthesis.png"):
            w, h = png_size(png)
            assert h == 2 * MARGIN + 3 * TITLE_LINE + GAP + 2 * HEAD_LINE + GAP + len(classes) * (TILE + GAP) - GAP
            assert w >= 2 * MARGIN + 60 + (1 + len(ids)) * (TILE + GAP) - GAP
