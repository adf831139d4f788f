from __future__ import annotations

from pathlib import Path

import torch

import numpy as np

from facekit.augment import PAPER_ANGLES, AugmentConfig, augment_face, sample_geometry, sample_views

from degan.config import Data
from degan.data import BatchTransform, make_transform, paper_views, read_file_info, scoring_views
from degan.presets import get_preset


class TestBatchTransform:
    def test_centre_view_is_the_centre_crop(self, canvas_file: Path) -> None:
        info = read_file_info(canvas_file)          # canvas 44, face box (4, 4, 36), patch 32
        tf = make_transform(info, get_preset("tiny").replace(image_size=32), train=False)
        img = torch.randint(0, 256, (2, 1, 44, 44), dtype=torch.uint8)
        expect = img[:, :, 6:38, 6:38].float() / 127.5 - 1
        torch.testing.assert_close(tf(img), expect, atol=1e-4, rtol=0)

    def test_paper_views_mirror_and_corner(self, canvas_file: Path) -> None:
        info = read_file_info(canvas_file)
        tf = make_transform(info, get_preset("tiny").replace(image_size=32), train=False)
        img = torch.randint(0, 256, (1, 1, 44, 44), dtype=torch.uint8)
        flipped = tf(img, view=(0, 0.0, 1))
        torch.testing.assert_close(flipped, tf(img).flip(-1), atol=1e-4, rtol=0)
        top_left = tf(img, view=(1, 0.0, 0))
        torch.testing.assert_close(top_left, img[:, :, 4:36, 4:36].float() / 127.5 - 1, atol=1e-4, rtol=0)
        bottom_right = tf(img, view=(4, 0.0, 0))
        torch.testing.assert_close(bottom_right, img[:, :, 8:40, 8:40].float() / 127.5 - 1, atol=1e-4, rtol=0)

    def test_patch_size_setting(self, canvas_file: Path) -> None:
        info = read_file_info(canvas_file)
        tf = make_transform(info, get_preset("tiny").replace({"arch.image_size": 16, "data.patch_size": 16}),
                            train=False)
        img = torch.randint(0, 256, (1, 1, 44, 44), dtype=torch.uint8)
        torch.testing.assert_close(tf(img), img[:, :, 14:30, 14:30].float() / 127.5 - 1, atol=1e-4, rtol=0)

    def test_online_augmentation_is_seeded(self, canvas_file: Path) -> None:
        info = read_file_info(canvas_file)
        tf = make_transform(info, get_preset("tiny"), train=True)
        assert tf.online
        img = torch.randint(0, 256, (4, 1, 44, 44), dtype=torch.uint8)
        a = tf(img, torch.Generator().manual_seed(1))
        b = tf(img, torch.Generator().manual_seed(1))
        c = tf(img, torch.Generator().manual_seed(2))
        assert a.shape == (4, 1, 16, 16)
        torch.testing.assert_close(a, b)
        assert not torch.allclose(a, c)

    def test_stored_patches_resized_only(self, paper_file: Path) -> None:
        info = read_file_info(paper_file)
        tf = make_transform(info, get_preset("tiny").replace(image_size=32), train=True)
        assert not tf.online
        img = torch.randint(0, 256, (2, 1, 32, 32), dtype=torch.uint8)
        torch.testing.assert_close(tf(img), img.float() / 127.5 - 1)


class TestViews:
    def test_110_paper_views_of_facekits_angles(self) -> None:
        views = paper_views()
        assert len(views) == 110 == len(set(views))
        assert {a for _, a, _ in views} == set(PAPER_ANGLES) and views[0] == (0, 0.0, 0)

    def test_views_per_setting(self) -> None:
        assert scoring_views("centre") == [None] and scoring_views("mirror") == [None, (0, 0.0, 1)]
        assert scoring_views("all") == paper_views()


class TestPaperViewRendering:
    """``data.augment="paper"`` renders the copies facekit stores: augment_face's views (cv2 rotation,
    then whole-pixel slices) against BatchTransform's one grid_sample, at the patch's own size."""

    @staticmethod
    def _render(canvas: np.ndarray, box: tuple[int, int, int], patch: int) -> tuple[np.ndarray, np.ndarray]:
        geo = sample_geometry(canvas.shape, box, patch, stored_patches=False)
        tf = BatchTransform(geo, Data(augment="paper"), patch, train=True)
        assert not tf.online
        imgs = torch.from_numpy(canvas)[None, None].repeat(110, 1, 1, 1)
        rendered = (tf(imgs, view_index=torch.arange(110))[:, 0].numpy() + 1) * 127.5
        return rendered, augment_face(canvas, box, AugmentConfig(patch_size=patch)).images.astype(np.float64)

    def test_all_110_views_are_the_stored_copies(self) -> None:
        canvas = np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)    # noise: any offset shows
        rendered, stored = self._render(canvas, (6, 6, 36), 32)
        diff = np.abs(rendered - stored)
        _, angle, _ = sample_views()
        assert diff[angle == 0].max() < 1e-2                  # un-rotated: the same pixels
        assert diff.max() <= 0.51                             # rotated: the stored copy's rounding to uint8
        assert diff.mean() < 0.3

    def test_views_follow_facekits_order(self, canvas_file: Path) -> None:
        info = read_file_info(canvas_file)
        tf = make_transform(info, get_preset("paper").replace(image_size=32), train=True)
        img = torch.randint(0, 256, (1, 1, 44, 44), dtype=torch.uint8)
        patch, angle, flip = sample_views()
        for k in (0, 1, 7, 33, 109):
            torch.testing.assert_close(tf(img, view_index=torch.tensor([k])),
                                       tf(img, view=(int(patch[k]), float(angle[k]), int(flip[k]))))
        many = tf(img.repeat(3, 1, 1, 1), view_index=torch.tensor([0, 1, 9]))
        torch.testing.assert_close(many[0], make_transform(info, get_preset("paper").replace(image_size=32),
                                                           train=False)(img)[0])
        torch.testing.assert_close(many[1], many[0].flip(-1))

    def test_stored_patches_ignore_the_view(self, paper_file: Path) -> None:
        info = read_file_info(paper_file)
        tf = make_transform(info, get_preset("paper").replace(image_size=32), train=True)
        img = torch.randint(0, 256, (2, 1, 32, 32), dtype=torch.uint8)
        torch.testing.assert_close(tf(img, view_index=torch.tensor([5, 9])), img.float() / 127.5 - 1)

