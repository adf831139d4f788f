"""Tests of facekit.detect.face: the Face record, head pose from a matrix, blendshape names."""
import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from facekit.detect import BLENDSHAPE_NAMES, Face, HeadPose, pose_from_matrix, pose_matrix


class TestPoseFromMatrix:
    @pytest.mark.parametrize("pose", [(0, 0, 0), (10, -20, 5), (-35, 60, -80), (80, 10, 170), (-5, -89, 3)])
    def test_round_trip(self, pose):
        got = pose_from_matrix(pose_matrix(*pose))
        np.testing.assert_allclose(got, pose, atol=1e-6)

    @pytest.mark.parametrize("seed", range(5))
    def test_same_as_scipy_xyz(self, seed):
        """The documented convention: scipy's extrinsic 'xyz' angles are (-pitch, yaw, roll)."""
        r = Rotation.random(random_state=seed)
        ax, ay, az = r.as_euler("xyz", degrees=True)
        m = np.eye(4)
        m[:3, :3] = r.as_matrix()
        p = pose_from_matrix(m)
        np.testing.assert_allclose((p.pitch, p.yaw, p.roll), (-ax, ay, az), atol=1e-6)

    def test_scale_and_translation_ignored(self):
        m = np.eye(4)
        m[:3, :3] = 1.7 * pose_matrix(12, -7, 3)
        m[:3, 3] = (1, 2, -40)
        np.testing.assert_allclose(pose_from_matrix(m), (12, -7, 3), atol=1e-6)
        np.testing.assert_allclose(pose_from_matrix(m[:3]), (12, -7, 3), atol=1e-6)

    def test_axes_and_signs(self):
        """Camera frame x right, y up, z towards the camera: turning the nose (+z)
        towards +x is positive yaw, towards +y positive pitch; counter-clockwise
        (seen from the camera) positive roll."""
        nose = np.array([0.0, 0.0, 1.0])
        assert (pose_matrix(0, 30, 0) @ nose)[0] > 0          # yaw: nose to the image's right
        assert (pose_matrix(30, 0, 0) @ nose)[1] > 0          # pitch: nose up
        right = np.array([1.0, 0.0, 0.0])
        assert (pose_matrix(0, 0, 30) @ right)[1] > 0          # roll: +x turns towards +y (counter-clockwise)

    def test_identity_is_zero(self):
        assert pose_from_matrix(np.eye(4)) == HeadPose(0.0, 0.0, 0.0)
        assert math.isclose(pose_from_matrix(pose_matrix(0, 0, -45)).roll, -45)

    def test_gimbal_lock(self):
        p = pose_from_matrix(pose_matrix(0, 90, 25))
        assert p.yaw == pytest.approx(90) and p.pitch == 0 and p.roll == pytest.approx(25, abs=1e-6)

    def test_refuses_bad_matrices(self):
        with pytest.raises(ValueError, match="shape"):
            pose_from_matrix(np.eye(2))
        with pytest.raises(ValueError, match="reflection"):
            pose_from_matrix(np.diag([1.0, 1.0, -1.0]))


class TestFace:
    def _face(self, **kw):
        pts = np.zeros((478, 3), np.float32)
        pts[:, 0] = np.linspace(10, 50, 478)
        pts[:, 1] = np.linspace(20, 80, 478)
        return Face(pts, **kw)

    def test_box_and_area(self):
        f = self._face()
        assert f.box == f.bbox == (10.0, 20.0, 50.0, 80.0)
        assert f.area == pytest.approx(40 * 60)
        assert f.landmarks68.shape == (68, 2)

    def test_without_extras(self):
        f = self._face()
        assert f.pose is None and f.blendshapes is None and f.score is None and f.matrix is None

    def test_with_extras(self):
        m = np.eye(4, dtype=np.float32)
        m[:3, :3] = pose_matrix(5, -10, 15)
        scores = np.linspace(0, 1, 52, dtype=np.float32)
        f = self._face(matrix=m, blendshape_scores=scores, score=0.9)
        assert isinstance(f.pose, HeadPose)
        np.testing.assert_allclose(f.pose, (5, -10, 15), atol=1e-4)
        assert list(f.blendshapes) == list(BLENDSHAPE_NAMES)
        assert f.blendshapes["noseSneerRight"] == pytest.approx(1.0)
        assert np.asarray(f.pose, np.float32).shape == (3,)

    def test_blendshape_names(self):
        assert len(BLENDSHAPE_NAMES) == len(set(BLENDSHAPE_NAMES)) == 52
        assert BLENDSHAPE_NAMES[0] == "_neutral" and BLENDSHAPE_NAMES[25] == "jawOpen"

    def test_names_match_mediapipe(self):
        mp_vision = pytest.importorskip("mediapipe.tasks.python.vision.face_landmarker")
        enum = getattr(mp_vision, "Blendshapes", None)
        if enum is None:
            pytest.skip("this MediaPipe has no Blendshapes enum")
        assert len(enum) == 52
        for member in enum:  # BROW_DOWN_LEFT <-> browDownLeft, NEUTRAL <-> _neutral
            camel = "".join(w.capitalize() for w in member.name.lower().split("_"))
            name = BLENDSHAPE_NAMES[member.value]
            assert name.lstrip("_").lower() == camel.lower(), (member, name)
