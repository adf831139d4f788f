"""facekit.augment.geometry: a file's metadata -> face box, canvas and patch size."""
import numpy as np
import pytest

from facekit.augment import PAPER_ANGLES, SampleGeometry, patch_offsets, sample_geometry


class TestSampleGeometry:
    def test_canvas_with_recorded_box_and_patch(self):
        g = sample_geometry((44, 44), (4, 4, 36), 32, stored_patches=False)
        assert g == SampleGeometry(44, (4, 4, 36), 32, False)
        assert g.crop_box == (4, 4, 36)
        np.testing.assert_array_equal(g.offsets(), patch_offsets(36, 32, exact=True))

    @pytest.mark.parametrize("box, patch, want", [
        ((14, 14, 112), 0, 96),        # no patch_size recorded: the paper's 96
        ((14, 14, 112), 112, 96),      # as large as the box: the paper's ratio
        ((14, 14, 112), 200, 96),
        ((6, 6, 40), 0, 34),           # 96 does not fit a 40-px box: round(40 * 96 / 112)
        ((6, 6, 40), 32, 32),
    ])
    def test_patch_fallbacks(self, box, patch, want):
        assert sample_geometry((box[2] + 2 * box[0],) * 2, box, patch, stored_patches=False).patch_size == want

    def test_no_face_box_means_whole_canvas(self):
        g = sample_geometry((50, 50, 3), (0, 0, 0), 0, stored_patches=False)
        assert g.face_box == (0, 0, 50) and g.patch_size == round(50 * 96 / 112)

    def test_override_capped_by_the_box(self):
        assert sample_geometry((44, 44), (4, 4, 36), 32, stored_patches=False, patch_override=20).patch_size == 20
        assert sample_geometry((44, 44), (4, 4, 36), 32, stored_patches=False, patch_override=99).patch_size == 36

    def test_stored_patches_are_the_sample(self):
        g = sample_geometry((32, 32), (4, 4, 36), 32, stored_patches=True, patch_override=20)
        assert (g.sample_size, g.patch_size, g.face_box, g.crop_box) == (32, 32, (4, 4, 36), (0, 0, 32))
        np.testing.assert_array_equal(g.offsets(), np.zeros((5, 2)))


class TestPaperAngles:
    def test_one_definition_eleven_angles(self):
        import facekit.augment.fivecrop as fc
        assert PAPER_ANGLES is fc.PAPER_ANGLES and PAPER_ANGLES[0] == 0.0
        assert sorted(PAPER_ANGLES) == [-15.0, -12.0, -9.0, -6.0, -3.0, 0.0, 3.0, 6.0, 9.0, 12.0, 15.0]
