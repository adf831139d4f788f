from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from degan.config import DeganConfig
from degan.errors import RunDirError
from degan.checkpoint import load_generator
from degan.synthesize import resolve_identity, synthesize, synthesize_file
from degan.train import run_cv


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

    def test_aligned_crop_to_png(self, degan_run: Path, tmp_path: Path) -> None:
        face = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
        src = tmp_path / "face.png"
        cv2.imwrite(str(src), face)
        out = synthesize_file(degan_run, src, ["0", "S005"], tmp_path / "o" / "out.png", aligned=True,
                              with_input=True)
        img = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
        assert img.shape == (16, 48)             # input + two identities, 16 px each, grayscale

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
        out = synthesize_file(degan_run, src, ["1"], tmp_path / "a.png", model_path=str(model_path))
        assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).shape == (16, 16)

    def test_no_face(self, degan_run: Path, tmp_path: Path, model_path: Path) -> None:
        from facekit.errors import NoFaceError
        src = tmp_path / "flat.png"
        cv2.imwrite(str(src), np.full((200, 200), 90, np.uint8))
        with pytest.raises(NoFaceError, match="--aligned"):
            synthesize_file(degan_run, src, ["1"], tmp_path / "b.png", model_path=str(model_path))
        assert not (tmp_path / "b.png").exists()
