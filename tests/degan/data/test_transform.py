from __future__ import annotations

from pathlib import Path

import torch

from facekit.augment import PAPER_ANGLES

from degan.data import make_transform, paper_views, read_file_info, scoring_views
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
