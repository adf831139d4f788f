import numpy as np

from facekit.align import EYE_CENTRES, RIGID_POINTS, TEMPLATE_68, eye_centres, fit_template
from facekit.align.transform import transform_points


class TestTemplate:
    def test_shape_and_extent(self):
        assert TEMPLATE_68.shape == (68, 2)
        assert 0 < TEMPLATE_68.min() and TEMPLATE_68.max() < 1   # the face fits its box
        np.testing.assert_allclose(eye_centres(TEMPLATE_68), EYE_CENTRES, atol=1e-3)

    def test_symmetric_about_vertical_axis(self):
        from facekit.detect import IBUG68_FLIP
        mirrored = TEMPLATE_68.copy()
        mirrored[:, 0] = 1 - mirrored[:, 0]
        assert np.abs(mirrored[IBUG68_FLIP] - TEMPLATE_68).max() < 0.02

    def test_rigid_points_exclude_mouth_brows_and_jaw(self):
        assert set(RIGID_POINTS.tolist()) <= set(range(27, 48))


class TestFitTemplate:
    def test_recovers_mean_shape_from_transformed_copies(self):
        rng = np.random.default_rng(0)
        shapes = []
        for _ in range(20):
            t = np.radians(rng.uniform(-20, 20))
            s = rng.uniform(50, 200)
            m = np.array([[s * np.cos(t), -s * np.sin(t), rng.uniform(0, 99)],
                          [s * np.sin(t), s * np.cos(t), rng.uniform(0, 99)]])
            shapes.append(transform_points(m, TEMPLATE_68 + rng.normal(0, 0.002, (68, 2))))
        fitted = fit_template(np.stack(shapes))
        assert np.abs(fitted - TEMPLATE_68).max() < 0.005
        np.testing.assert_allclose(eye_centres(fitted), EYE_CENTRES, atol=1e-6)
