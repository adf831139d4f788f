import numpy as np
import pytest

from facekit.detect import IBUG68_FLIP, MESH_TO_IBUG68, to_ibug68


class TestMapping:
    def test_68_distinct_mesh_vertices(self):
        assert MESH_TO_IBUG68.shape == (68,)
        assert len(set(MESH_TO_IBUG68.tolist())) == 68
        assert MESH_TO_IBUG68.max() < 468

    def test_flip_is_an_involution(self):
        assert sorted(IBUG68_FLIP.tolist()) == list(range(68))
        assert (IBUG68_FLIP[IBUG68_FLIP] == np.arange(68)).all()

    def test_to_ibug68_shapes(self):
        mesh = np.random.rand(478, 3)
        assert to_ibug68(mesh).shape == (68, 3)
        assert to_ibug68(np.random.rand(2, 478, 2)).shape == (2, 68, 2)
        with pytest.raises(ValueError):
            to_ibug68(np.zeros((68, 2)))


class TestOnARealFace:
    def test_anatomical_order(self, face_image, landmarker):
        p = landmarker.detect(face_image).landmarks68
        assert p[36, 0] < p[39, 0] < p[42, 0] < p[45, 0]           # eye corners left to right
        assert p[0, 0] < p[8, 0] < p[16, 0]                         # jaw
        assert p[8, 1] == p[:, 1].max()                             # chin lowest
        assert p[17:27, 1].mean() < p[36:48, 1].mean() < p[30, 1] < p[51, 1] < p[57, 1]
        assert p[48, 0] < p[51, 0] < p[54, 0]

    def test_mirror_consistency(self, face_image, landmarker):
        """Detecting on the mirrored image and flipping back gives the same iBUG points."""
        w = face_image.shape[1]
        a = landmarker.detect(face_image).landmarks68
        b = landmarker.detect(np.ascontiguousarray(face_image[:, ::-1])).landmarks68
        b[:, 0] = (w - 1) - b[:, 0]
        b = b[IBUG68_FLIP]
        iod = np.linalg.norm(a[36:42].mean(0) - a[42:48].mean(0))
        err = np.linalg.norm(a - b, axis=1) / iod
        assert err.mean() < 0.05 and err.max() < 0.12
