import numpy as np
import pytest

from facekit.augment import PAPER_ANGLES, AugmentConfig, augment_face, patch_offsets, required_margin, sample_views


def _canvas(value=None, colour=False):
    rng = np.random.default_rng(0)
    shape = (140, 140, 3) if colour else (140, 140)
    if value is not None:
        return np.full(shape, value, np.uint8)
    return rng.integers(1, 255, shape, dtype=np.uint8)


BOX = (14, 14, 112)


class TestRequiredMargin:
    def test_paper_geometry(self):
        assert required_margin(112, 15) == 14
        assert required_margin(112, 0) == 1

    def test_grows_with_angle(self):
        assert required_margin(112, 5) < required_margin(112, 10) < required_margin(112, 15)


class TestPatchOffsets:
    def test_centre_and_corners(self):
        off = patch_offsets(112, 96)
        assert off.tolist() == [[8, 8], [0, 0], [16, 0], [0, 16], [16, 16]]

    def test_odd_room_whole_and_exact(self):
        assert patch_offsets(41, 32).tolist() == [[4, 4], [0, 0], [9, 0], [0, 9], [9, 9]]     # floor
        exact = patch_offsets(41, 32, exact=True)
        assert exact.dtype == np.float64 and exact.tolist() == [[4.5, 4.5], [0, 0], [9, 0], [0, 9], [9, 9]]

    def test_patch_larger_than_face(self):
        with pytest.raises(ValueError):
            patch_offsets(90, 96)


class TestSampleViews:
    def test_the_order_augment_face_stores(self):
        patch, angle, flip = sample_views()
        r = augment_face(_canvas(), BOX)
        assert len(patch) == 110 == AugmentConfig().samples_per_face
        np.testing.assert_array_equal(patch, r.patch)
        np.testing.assert_array_equal(angle, r.angle)
        np.testing.assert_array_equal(flip, r.flip)
        assert (patch.dtype, angle.dtype, flip.dtype) == (np.int8, np.float32, np.uint8)
        assert (patch[0], angle[0], flip[0]) == (0, 0.0, 0)
        assert len(set(zip(patch.tolist(), angle.tolist(), flip.tolist()))) == 110

    def test_reduced_grid(self):
        patch, angle, flip = sample_views(AugmentConfig(angles=(0.0, 5.0), patches=(0, 3), flips=False))
        assert patch.tolist() == [0, 3, 0, 3] and angle.tolist() == [0, 0, 5, 5] and flip.tolist() == [0] * 4


class TestAugmentFace:
    def test_count_is_110(self):
        r = augment_face(_canvas(), BOX)
        assert r.images.shape == (110, 96, 96) and r.images.dtype == np.uint8
        assert AugmentConfig().samples_per_face == 110

    def test_documented_order(self):
        r = augment_face(_canvas(), BOX)
        k = np.arange(110)
        assert (r.flip == k % 2).all()
        assert (r.patch == (k // 2) % 5).all()
        assert (r.angle == np.array(PAPER_ANGLES, np.float32)[k // 10]).all()
        assert set(np.abs(r.angle).tolist()) == {0, 3, 6, 9, 12, 15}

    def test_sample_zero_is_the_unrotated_centre_crop(self):
        c = _canvas()
        r = augment_face(c, BOX)
        np.testing.assert_array_equal(r.images[0], c[22:118, 22:118])
        np.testing.assert_array_equal(r.images[1], c[22:118, 22:118][:, ::-1])
        np.testing.assert_array_equal(r.images[2], c[14:110, 14:110])            # top-left, angle 0

    def test_no_black_borders_at_any_angle(self):
        r = augment_face(_canvas(255), BOX)
        assert r.images.min() == 255
        rc = augment_face(_canvas(200, colour=True), BOX)
        assert rc.images.shape == (110, 96, 96, 3) and rc.images.min() == 200

    def test_rotation_direction_is_counter_clockwise(self):
        """A bright dot right of the centre moves up for a positive angle."""
        c = np.zeros((140, 140), np.uint8)
        c[69:72, 110:113] = 255                                      # right of centre (69.5, 69.5)
        cfg = AugmentConfig(angles=(0.0, 15.0), patches=(0,), flips=False)
        r = augment_face(c, BOX, cfg)
        y0 = np.argwhere(r.images[0] > 100)[:, 0].mean()
        y1 = np.argwhere(r.images[1] > 100)[:, 0].mean()
        assert y1 < y0 - 5

    def test_landmarks_follow_the_pixels(self):
        c = np.zeros((140, 140), np.uint8)
        pts = np.zeros((68, 2), np.float32)
        pts[:] = (70, 70)
        pts[36] = (50.0, 60.0)                                       # image-left eye corner
        pts[45] = (90.0, 60.0)
        c[59:62, 49:52] = 255
        r = augment_face(c, BOX, landmarks68=pts)
        for k in (0, 1, 10, 11, 57, 108):
            # the marked point stays on the bright pixels; in mirrored samples it is on the
            # image right, so it carries index 45 (iBUG indices keep their image-side meaning)
            x, y = np.rint(r.landmarks[k, 45 if r.flip[k] else 36]).astype(int)
            assert r.images[k][y - 1:y + 2, x - 1:x + 2].max() > 100, k
        # mirroring keeps index 36 on the image-left side
        assert (r.landmarks[1::2, 36, 0] < r.landmarks[1::2, 45, 0]).all()

    def test_too_small_canvas_raises(self):
        with pytest.raises(ValueError, match="margin of 14"):
            augment_face(np.zeros((130, 130), np.uint8), (9, 9, 112))

    def test_custom_grid(self):
        cfg = AugmentConfig(patch_size=64, angles=(0.0,), patches=(0, 4), flips=False)
        r = augment_face(np.zeros((80, 80), np.uint8), (8, 8, 64), cfg)
        assert r.images.shape == (2, 64, 64)
