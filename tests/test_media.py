"""Tests of facekit.media: images and videos by content, frames with the decoder's numbers and times."""
import shutil
import struct
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from facekit.errors import ImageReadError
from facekit.media import VideoInfo, iter_video_frames, media_kind

AVI = "video/happy/S001-talk.avi"
MP4 = "video/surprise/S002-talk.mp4"


def decoder_reference(path) -> tuple[int, list[float], float]:
    """What OpenCV's FFmpeg decoder itself reports: frames grabbed, each one's
    CAP_PROP_POS_MSEC in seconds, and the container's fps."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    times = []
    while cap.grab():
        times.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return len(times), times, fps


def lying_avi(src, dst, claimed: int) -> None:
    """A copy of the MJPG AVI ``src`` whose main and stream headers claim ``claimed`` frames."""
    data = bytearray(src.read_bytes())
    assert data[:4] == b"RIFF" and data[8:12] == b"AVI " and data[24:28] == b"avih"
    data[48:52] = struct.pack("<I", claimed)          # avih.dwTotalFrames
    strh = data.find(b"strh")
    data[strh + 40:strh + 44] = struct.pack("<I", claimed)   # strh.dwLength
    dst.write_bytes(bytes(data))


class TestMediaKind:
    def test_by_content_not_by_name(self, fixtures_dir, tmp_path):
        shutil.copy(fixtures_dir / AVI, tmp_path / "clip.dat")
        shutil.copy(fixtures_dir / MP4, tmp_path / "clip")
        shutil.copy(fixtures_dir / "ck+/cohn-kanade-images/S005/001/S005_001_00000001.png", tmp_path / "scan0042")
        shutil.copy(fixtures_dir / "jaffe/AA.HA1.1.tif", tmp_path / "photo.avi")
        assert media_kind(tmp_path / "clip.dat") == "video"
        assert media_kind(tmp_path / "clip") == "video"
        assert media_kind(tmp_path / "scan0042") == "image"
        assert media_kind(tmp_path / "photo.avi") == "image"

    @pytest.mark.parametrize("fmt", ["GIF", "BMP", "WEBP", "PPM", "JPEG", "TIFF"])
    def test_image_formats(self, tmp_path, fmt):
        path = tmp_path / "img"
        Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(path, format=fmt)
        assert media_kind(path) == "image"

    def test_neither(self, tmp_path):
        (tmp_path / "empty.jpg").write_bytes(b"")
        (tmp_path / "notes.txt").write_text("a face? no\n")
        (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
        (tmp_path / "folder").mkdir()
        for name in ("empty.jpg", "notes.txt", "noise.mp4", "folder", "missing"):
            assert media_kind(tmp_path / name) is None, name

    def test_truncated_files_keep_their_kind(self, fixtures_dir, tmp_path):
        """The signature decides; decoding what is there is the reader's business."""
        png = (fixtures_dir / "folder/happy/S001_001_00000004.png").read_bytes()
        (tmp_path / "half.png").write_bytes(png[:len(png) // 2])
        assert media_kind(tmp_path / "half.png") == "image"
        mp4 = (fixtures_dir / MP4).read_bytes()
        (tmp_path / "half.mp4").write_bytes(mp4[:len(mp4) // 2])
        assert media_kind(tmp_path / "half.mp4") == "video"


class TestIterVideoFrames:
    @pytest.mark.parametrize("clip", [AVI, MP4])
    def test_numbers_and_times_are_the_decoders(self, fixtures_dir, clip):
        n, times, fps = decoder_reference(fixtures_dir / clip)
        info = VideoInfo()
        frames = list(iter_video_frames(fixtures_dir / clip, info=info))
        assert [f.index for f in frames] == list(range(n))              # no gaps, no duplicates
        np.testing.assert_allclose([f.timestamp for f in frames], times, atol=1e-9)
        np.testing.assert_allclose(times, np.arange(n) / fps, atol=1e-3)
        assert info.decoded == info.header_frames == n and info.fps == pytest.approx(fps)
        assert all(f.image.shape == (176, 176, 3) and f.image.dtype == np.uint8 for f in frames)

    def test_pixels_are_rgb_like_the_image_reader(self, fixtures_dir):
        from facekit.imageio import read_video_frames
        first = next(iter_video_frames(fixtures_dir / AVI))
        np.testing.assert_array_equal(first.image, read_video_frames(fixtures_dir / AVI, [0])[0])

    def test_every_and_start(self, fixtures_dir):
        frames = list(iter_video_frames(fixtures_dir / MP4, every=5, start=3))
        assert [f.index for f in frames] == list(range(3, 24))
        assert [f.index for f in frames if f.image is not None] == [5, 10, 15, 20]

    def test_lying_header(self, fixtures_dir, tmp_path):
        lying_avi(fixtures_dir / AVI, tmp_path / "lie.avi", 40)
        info = VideoInfo()
        frames = list(iter_video_frames(tmp_path / "lie.avi", info=info))
        assert info.header_frames == 40 and info.decoded == len(frames) == 16

    def test_truncated(self, fixtures_dir, tmp_path):
        data = (fixtures_dir / AVI).read_bytes()
        (tmp_path / "cut.avi").write_bytes(data[:int(len(data) * 0.7)])
        info = VideoInfo()
        frames = list(iter_video_frames(tmp_path / "cut.avi", info=info))
        assert 0 < len(frames) < 16 and info.header_frames == 16
        assert [f.index for f in frames] == list(range(len(frames)))

    @pytest.mark.parametrize("content, reason", [(b"", "empty"), (b"\x00" * 3000, "cannot be opened as a video")])
    def test_unreadable(self, tmp_path, content, reason):
        (tmp_path / "bad.mp4").write_bytes(content)
        with pytest.raises(ImageReadError, match=reason):
            list(iter_video_frames(tmp_path / "bad.mp4"))
        with pytest.raises(ImageReadError, match="does not exist"):
            list(iter_video_frames(tmp_path / "missing.mp4"))

    def test_stopping_early_stops_the_decoder_thread(self, fixtures_dir):
        import threading
        it = iter_video_frames(fixtures_dir / MP4, prefetch=2)
        next(it)
        it.close()
        assert not any(t.name == "facekit-video-decode" and t.is_alive() for t in threading.enumerate())

    def test_without_prefetch_same_frames(self, fixtures_dir):
        a = [(f.index, f.timestamp) for f in iter_video_frames(fixtures_dir / MP4, prefetch=0)]
        b = [(f.index, f.timestamp) for f in iter_video_frames(fixtures_dir / MP4, prefetch=3)]
        assert a == b

    def test_no_log_lines(self, tmp_path):
        """FFmpeg's and OpenCV's complaints about a broken file stay off the terminal."""
        (tmp_path / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 500)
        (tmp_path / "bad.avi").write_bytes(b"RIFF\x00\x10\x00\x00AVI LIST" + b"\x00" * 500)
        code = ("import sys\nfrom facekit.media import iter_video_frames, media_kind\n"
                "for p in sys.argv[1:]:\n"
                "    media_kind(p)\n"
                "    try:\n        list(iter_video_frames(p))\n    except Exception as e:\n        print(type(e).__name__)\n")
        r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "bad.mp4"), str(tmp_path / "bad.avi")],
                           capture_output=True, text=True, timeout=60)
        assert r.stdout.split() == ["ImageReadError", "ImageReadError"]
        assert r.stderr == ""
