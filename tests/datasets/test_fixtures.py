"""Tests of the generated fixture trees (fixtures/make_fixtures.py)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from facekit.imageio import read_image, read_video_frames, video_frame_count


def _load_maker(fixtures_dir: Path):
    spec = importlib.util.spec_from_file_location("make_fixtures", fixtures_dir / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def _listing(folder: Path, trees: tuple[str, ...]) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for tree in trees for p in (folder / tree).rglob("*")
                  if p.is_file())


def _faces(fixtures_dir: Path, trees: tuple[str, ...]):
    """(label, uint8 RGB image) for every image file and video frame of the trees."""
    for rel in _listing(fixtures_dir, trees):
        path = fixtures_dir / rel
        suffix = path.suffix.lower()
        if suffix in (".png", ".jpg", ".jpeg", ".tif", ".tiff"):
            yield rel, read_image(path)
        elif suffix in (".avi", ".mp4"):
            n = video_frame_count(path)
            for i, frame in enumerate(read_video_frames(path, range(n))):
                yield f"{rel}#{i}", frame


@pytest.fixture(scope="module")
def maker(fixtures_dir):
    return _load_maker(fixtures_dir)


class TestMakeFixtures:
    def test_regenerates_committed_listing(self, maker, fixtures_dir, tmp_path):
        maker.make_all(tmp_path)
        assert _listing(tmp_path, maker.TREES) == _listing(fixtures_dir, maker.TREES)

    def test_render_face(self, maker):
        look = maker.subject_look("test/S001")
        rgb = maker.render_face(look, "happy", 1.0, "test/0")
        gray = maker.render_face(look, "happy", 1.0, "test/0", gray=True)
        assert rgb.shape == (maker.SIZE, maker.SIZE, 3) and rgb.dtype == np.uint8
        assert gray.shape == (maker.SIZE, maker.SIZE) and gray.dtype == np.uint8
        neutral = maker.render_face(look, "happy", 0.0, "test/0")
        changed = np.abs(rgb.astype(int) - neutral.astype(int)).max(axis=2) > 20
        assert changed.sum() > 100  # the expression warp shows around mouth and brows

    def test_size_budget(self, fixtures_dir):
        total = sum(p.stat().st_size for p in fixtures_dir.rglob("*") if p.is_file())
        assert total < 2_000_000
        assert sum(p.stat().st_size for p in (fixtures_dir / "video").rglob("*") if p.is_file()) < 200_000

    def test_talking_clips(self, maker, fixtures_dir):
        from facekit.media import VideoInfo, iter_video_frames
        for clip, blanks in maker.VIDEO_BLANKS.items():
            info = VideoInfo()
            frames = [f.image for f in iter_video_frames(fixtures_dir / "video" / clip, info=info)]
            assert info.decoded == info.header_frames == len(frames) >= 16
            for i in blanks:
                assert frames[i].std() < 2          # uniform grey
            shown = [f for i, f in enumerate(frames) if i not in blanks]
            assert min(np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(shown, shown[1:])) > 0.5

    def test_frames_differ(self, fixtures_dir):
        seq = sorted((fixtures_dir / "ck+" / "cohn-kanade-images" / "S005" / "001").glob("*.png"))
        first, last = read_image(seq[0]), read_image(seq[-1])
        assert np.abs(first.astype(int) - last.astype(int)).mean() > 1.0


class TestFixtureFaces:
    def test_mediapipe_finds_one_face_everywhere(self, maker, fixtures_dir, model_path):
        mp = pytest.importorskip("mediapipe")
        from mediapipe.tasks.python import BaseOptions, vision

        opts = vision.FaceLandmarkerOptions(base_options=BaseOptions(model_asset_path=str(model_path)),
                                            running_mode=vision.RunningMode.IMAGE, num_faces=2)
        landmarker = vision.FaceLandmarker.create_from_options(opts)
        counts = {}
        try:
            for name, rgb in _faces(fixtures_dir, maker.TREES):
                image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
                counts[name] = len(landmarker.detect(image).face_landmarks)
        finally:
            landmarker.close()
        blank = {f"video/{clip}#{i}" for clip, frames in maker.VIDEO_BLANKS.items() for i in frames}
        assert len(counts) > 150 and blank and blank <= set(counts)
        assert {name: n for name, n in counts.items() if n != (0 if name in blank else 1)} == {}
