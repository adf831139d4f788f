import subprocess
import sys

import cv2
import numpy as np
import pytest
import skimage.data

from facekit.detect import Landmarker, detect_landmarks
from facekit.errors import NoFaceError


class TestLandmarker:
    def test_detects_478_points_inside_the_image(self, landmarker, face_image):
        face = landmarker.detect(face_image)
        assert face.landmarks.shape == (478, 3) and face.landmarks.dtype == np.float32
        x0, y0, x1, y1 = face.bbox
        assert 0 <= x0 < x1 <= 256 and 0 <= y0 < y1 <= 256
        assert face.landmarks68.shape == (68, 2)

    def test_small_grayscale_input_is_upscaled(self, landmarker, face_image):
        """A 48x48 grayscale crop (CK+48 / FER2013 size) is found, in input pixels."""
        big = landmarker.detect(face_image).landmarks68
        small = cv2.resize(cv2.cvtColor(face_image, cv2.COLOR_RGB2GRAY), (48, 48), interpolation=cv2.INTER_AREA)
        pts = landmarker.detect(small).landmarks68
        assert pts[:, 0].max() <= 48 and pts[:, 1].max() <= 48
        # same face, same place: within 1.5 px of the scaled-down big-image points
        assert np.abs(pts - big * 48 / 256).mean() < 1.5

    def test_largest_face_is_picked(self, landmarker, face_image):
        canvas = np.zeros((300, 560, 3), np.uint8)
        canvas[20:276, 294:550] = face_image                                    # large face, right
        canvas[40:240, 10:210] = cv2.resize(face_image, (200, 200))            # smaller face, left
        faces = landmarker.detect_all(canvas)
        assert len(faces) == 2
        assert faces[0].area > faces[1].area
        assert landmarker.detect(canvas).bbox[0] > 294

    def test_no_face_names_the_file(self, landmarker):
        cat = skimage.data.chelsea()
        with pytest.raises(NoFaceError, match="cat.png: no face found"):
            landmarker.detect(cat, path="cat.png")
        with pytest.raises(NoFaceError):
            landmarker.detect(np.full((120, 120), 128, np.uint8))

    def test_closed_landmarker_refuses(self, model_path, face_image):
        lm = Landmarker(model_path)
        lm.close()
        lm.close()  # idempotent
        with pytest.raises(RuntimeError, match="closed"):
            lm.detect(face_image)

    def test_one_shot_helper(self, model_path, face_image):
        assert detect_landmarks(face_image, model_path).landmarks.shape == (478, 3)


class TestTerminalStaysClean:
    def test_no_native_log_lines_and_no_complaint_at_exit(self, model_path):
        """Creating, using and *not* closing a Landmarker prints nothing on stderr."""
        code = (
            "import numpy as np, skimage.data\n"
            "from facekit.detect import Landmarker\n"
            f"lm = Landmarker({str(model_path)!r})\n"
            "lm.detect(np.ascontiguousarray(skimage.data.astronaut()[0:256, 110:366]))\n"
            "print('ok')\n"
        )
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "ok"
        assert r.stderr == ""


def _rotated(image: np.ndarray, degrees: float) -> np.ndarray:
    """``image`` rotated counter-clockwise (as displayed) about its centre."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)


def _turned(image: np.ndarray, box: tuple[float, ...], shift: float) -> np.ndarray:
    """The face's middle (nose) moved ``shift`` px to the right between the box's sides,
    the sides kept: the subject looks turned towards the image's right (their left)."""
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = np.clip((xx - box[0]) / (box[2] - box[0]), 0, 1)
    return cv2.remap(image, xx - shift * np.sin(np.pi * t), yy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _geometric_pose(landmarks: np.ndarray) -> tuple[float, float]:
    """(pitch, yaw) in degrees of the face's forward direction, from the 3D landmarks alone
    (eye corners and forehead-chin line span the face; x right, y up, z towards the camera)."""
    p = np.c_[landmarks[:, 0], -landmarks[:, 1], -landmarks[:, 2]].astype(np.float64)
    up, right = p[10] - p[152], p[263] - p[33]
    fwd = np.cross(right, up)
    fwd /= np.linalg.norm(fwd)
    return float(np.degrees(np.arcsin(fwd[1]))), float(np.degrees(np.arctan2(fwd[0], fwd[2])))


@pytest.fixture(scope="module")
def posed(model_path):
    with Landmarker(model_path, pose=True, blendshapes=True) as lm:
        yield lm


class TestLandmarkerOutputs:
    def test_plain_landmarker_asks_for_nothing_more(self, landmarker, face_image):
        face = landmarker.detect(face_image)
        assert face.matrix is None and face.pose is None and face.blendshapes is None
        assert not landmarker.pose and not landmarker.blendshapes and landmarker.mode == "image"

    def test_pose_and_blendshapes_when_asked(self, posed, face_image):
        face = posed.detect(face_image)
        assert face.matrix.shape == (4, 4) and face.matrix.dtype == np.float32
        assert all(abs(v) < 20 for v in face.pose)          # the astronaut faces the camera
        assert face.blendshape_scores.shape == (52,) and np.isfinite(face.blendshape_scores).all()
        assert 0 <= min(face.blendshapes.values()) and max(face.blendshapes.values()) <= 1
        assert face.box == face.bbox and face.score is None   # MediaPipe reports no face score

    def test_only_one_of_them(self, model_path, face_image):
        with Landmarker(model_path, blendshapes=True) as lm:
            face = lm.detect(face_image)
            assert face.blendshapes is not None and face.pose is None
        with Landmarker(model_path, pose=True) as lm:
            face = lm.detect(face_image)
            assert face.pose is not None and face.blendshapes is None

    def test_same_landmarks_with_and_without_extras(self, landmarker, posed, face_image):
        np.testing.assert_array_equal(landmarker.detect(face_image).landmarks, posed.detect(face_image).landmarks)

    def test_blendshapes_follow_the_expression(self, posed, face_image):
        """The mouth opened by a local warp raises jawOpen."""
        h, w = face_image.shape[:2]
        face = posed.detect(face_image)
        chin = face.landmarks[152, :2]
        lips = face.landmarks[14, :2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        bump = np.exp(-((xx - chin[0]) ** 2 + (yy - (lips[1] + chin[1]) / 2) ** 2) / (2 * 14.0 ** 2))
        opened = cv2.remap(face_image, xx, yy - 14 * bump, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        assert posed.detect(opened).blendshapes["jawOpen"] > face.blendshapes["jawOpen"] + 0.05

    def test_bad_mode(self, model_path):
        with pytest.raises(ValueError, match="mode"):
            Landmarker(model_path, mode="stream")


class TestPoseConvention:
    """The documented signs (facekit.detect.face) on real detections."""

    @pytest.mark.parametrize("degrees", [15, -15])
    def test_in_plane_rotation_is_roll(self, posed, face_image, degrees):
        base = posed.detect(face_image).pose
        turned = posed.detect(_rotated(face_image, degrees)).pose
        assert turned.roll - base.roll == pytest.approx(degrees, abs=4)   # counter-clockwise is positive
        assert abs(turned.yaw - base.yaw) < 4 and abs(turned.pitch - base.pitch) < 4

    def test_rotated_left_and_right_give_opposite_roll(self, posed, face_image):
        left, right = (posed.detect(_rotated(face_image, d)).pose.roll for d in (20, -20))
        assert left > 10 and right < -10

    def test_yaw_sign_and_mirror(self, posed, face_image):
        box = posed.detect(face_image).box
        turned = _turned(face_image, box, 18)
        yaw = posed.detect(turned).pose.yaw
        mirrored = posed.detect(np.ascontiguousarray(turned[:, ::-1])).pose
        assert yaw > 8                                   # turned to the subject's left: image right
        assert mirrored.yaw == pytest.approx(-yaw, abs=4)
        assert posed.detect(_turned(face_image, box, -18)).pose.yaw < -8

    def test_mirror_flips_roll(self, posed, face_image):
        tilted = _rotated(face_image, 12)
        roll = posed.detect(tilted).pose.roll
        assert posed.detect(np.ascontiguousarray(tilted[:, ::-1])).pose.roll == pytest.approx(-roll, abs=3)

    def test_agrees_with_the_landmarks_geometry(self, posed, face_image):
        """Pitch and yaw from the matrix point the way the 3D landmarks' own face normal does."""
        box = posed.detect(face_image).box
        for image in (face_image, _turned(face_image, box, 18), _turned(face_image, box, -18),
                      _rotated(face_image, 15)):
            face = posed.detect(image)
            pitch, yaw = _geometric_pose(face.landmarks)
            assert face.pose.pitch == pytest.approx(pitch, abs=6)
            assert face.pose.yaw == pytest.approx(yaw, abs=6)


class TestVideoMode:
    def _frames(self, face_image, n=12):
        return [_rotated(face_image, 3 * np.sin(i / 2)) for i in range(n)]

    def test_tracks_and_agrees_with_image_mode(self, model_path, posed, face_image):
        frames = self._frames(face_image)
        with Landmarker(model_path, mode="video", max_faces=1, pose=True, blendshapes=True) as lm:
            video = [lm.detect_for_video(f, 40 * i) for i, f in enumerate(frames)]
        iod = np.linalg.norm(video[0].landmarks68[45] - video[0].landmarks68[36])
        for f, v in zip(frames, video):
            img = posed.detect(f)
            assert np.linalg.norm(v.landmarks68 - img.landmarks68, axis=1).mean() < 0.05 * iod
            assert v.pose.roll == pytest.approx(img.pose.roll, abs=3)
            assert v.blendshapes is not None

    def test_timestamps_must_increase(self, model_path, face_image):
        with Landmarker(model_path, mode="video") as lm:
            lm.detect_all_for_video(face_image, 0)
            lm.detect_all_for_video(face_image, 1)
            with pytest.raises(ValueError, match="increase"):
                lm.detect_all_for_video(face_image, 1)
        with Landmarker(model_path, mode="video") as lm:
            with pytest.raises(ValueError, match=">= 0"):
                lm.detect_all_for_video(face_image, -5)

    def test_lost_and_found_again(self, model_path, face_image):
        grey = np.full_like(face_image, 128)
        with Landmarker(model_path, mode="video", max_faces=1) as lm:
            got = [len(lm.detect_all_for_video(f, 33 * i))
                   for i, f in enumerate([face_image, grey, grey, face_image, face_image])]
            with pytest.raises(NoFaceError, match="clip.avi#5: no face found"):
                lm.detect_for_video(grey, 200, path="clip.avi#5")
        assert got == [1, 0, 0, 1, 1]

    def test_small_frames(self, model_path, face_image):
        """48x48 frames are upscaled and padded as in IMAGE mode; points come back in frame pixels."""
        small = cv2.resize(face_image, (48, 48), interpolation=cv2.INTER_AREA)
        with Landmarker(model_path, mode="video", max_faces=1) as lm:
            faces = [lm.detect_for_video(small, 40 * i) for i in range(3)]
        for f in faces:
            assert f.landmarks68[:, 0].max() <= 48 and f.landmarks68[:, 1].max() <= 48

    def test_modes_keep_to_their_methods(self, model_path, landmarker, face_image):
        with pytest.raises(RuntimeError, match="IMAGE mode"):
            landmarker.detect_for_video(face_image, 0)
        with Landmarker(model_path, mode="video") as lm:
            with pytest.raises(RuntimeError, match="VIDEO mode"):
                lm.detect(face_image)
