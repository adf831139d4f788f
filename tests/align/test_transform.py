import cv2
import numpy as np
import pytest

from facekit.align import (compose_affine, estimate_similarity, invert_affine, rotation_about,
                           similarity_params, transform_points)


def _similarity(scale, degrees, tx, ty):
    t = np.radians(degrees)
    return np.array([[scale * np.cos(t), -scale * np.sin(t), tx], [scale * np.sin(t), scale * np.cos(t), ty]])


class TestEstimateSimilarity:
    def test_recovers_exact_transform(self):
        rng = np.random.default_rng(0)
        src = rng.uniform(0, 100, (13, 2))
        m = _similarity(1.7, 12.0, 5.0, -3.0)
        est = estimate_similarity(src, transform_points(m, src))
        np.testing.assert_allclose(est, m, atol=1e-4)

    def test_least_squares_with_noise(self):
        rng = np.random.default_rng(1)
        src = rng.uniform(0, 100, (50, 2))
        m = _similarity(0.8, -20.0, 1.0, 2.0)
        dst = transform_points(m, src) + rng.normal(0, 0.5, (50, 2))
        s, a, _, _ = similarity_params(estimate_similarity(src, dst))
        assert abs(s - 0.8) < 0.01 and abs(a + 20.0) < 0.5

    def test_matches_scikit_image(self):
        from skimage.transform import SimilarityTransform
        rng = np.random.default_rng(2)
        for _ in range(20):
            src, dst = rng.uniform(0, 100, (16, 2)), rng.uniform(0, 100, (16, 2))
            if hasattr(SimilarityTransform, "from_estimate"):      # scikit-image >= 0.26
                ref = SimilarityTransform.from_estimate(src, dst)
            else:
                ref = SimilarityTransform()
                ref.estimate(src, dst)
            np.testing.assert_allclose(estimate_similarity(src, dst), ref.params[:2], atol=1e-9)

    def test_two_points_define_it(self):
        est = estimate_similarity(np.array([[0, 0], [1, 0]]), np.array([[10, 10], [10, 12]]))
        s, a, tx, ty = similarity_params(est)
        assert s == pytest.approx(2.0) and a == pytest.approx(90.0) and (tx, ty) == pytest.approx((10, 10))

    @pytest.mark.parametrize("src,dst", [
        (np.zeros((5, 2)), np.ones((5, 2))),                      # coincident
        (np.array([[0, 0]]), np.array([[1, 1]])),                 # one point
        (np.array([[0, 0], [np.nan, 1]]), np.zeros((2, 2))),      # NaN
        (np.zeros((3, 2)), np.zeros((4, 2))),                     # mismatched
    ])
    def test_degenerate_input_raises(self, src, dst):
        with pytest.raises(ValueError):
            estimate_similarity(src, dst)


class TestTransformPoints:
    def test_scales_z_by_similarity_scale(self):
        m = _similarity(2.0, 30.0, 0, 0)
        out = transform_points(m, np.array([[1.0, 0.0, 3.0]]))
        assert out.shape == (1, 3) and out[0, 2] == pytest.approx(6.0)

    def test_batch_shape(self):
        assert transform_points(np.eye(2, 3), np.zeros((4, 68, 2))).shape == (4, 68, 2)


class TestAffineAlgebra:
    def test_invert_and_compose(self):
        m = _similarity(1.3, 7.0, 4.0, 9.0)
        np.testing.assert_allclose(compose_affine(invert_affine(m), m), np.eye(2, 3), atol=1e-12)

    def test_rotation_about_matches_opencv(self):
        np.testing.assert_allclose(rotation_about((30.5, 12.0), 15.0),
                                   cv2.getRotationMatrix2D((30.5, 12.0), 15.0, 1.0), atol=1e-12)

    def test_rotation_keeps_centre_fixed(self):
        c = (50.0, 60.0)
        np.testing.assert_allclose(transform_points(rotation_about(c, 33.0), np.array([c])), [c], atol=1e-4)
