"""Inputs for the analyze tests: the fixture clips, and a tree that mixes them with bad input."""
from __future__ import annotations

import importlib.util
import shutil
import struct
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

AVI = "video/happy/S001-talk.avi"
MP4 = "video/surprise/S002-talk.mp4"


def _maker(fixtures_dir: Path):
    spec = importlib.util.spec_from_file_location("make_fixtures", fixtures_dir / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.fixture(scope="session")
def video_blanks(fixtures_dir) -> dict[str, tuple[int, ...]]:
    """Clip path relative to fixtures/ -> the frames the generator blanked (no face)."""
    return {f"video/{k}": v for k, v in _maker(fixtures_dir).VIDEO_BLANKS.items()}


def _decoder_frames(path) -> tuple[int, list[float]]:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    times = []
    while cap.grab():
        times.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
    cap.release()
    return len(times), times


@pytest.fixture(scope="session")
def decoder_frames():
    """``decoder_frames(path) -> (count, times in s)`` as OpenCV's FFmpeg decoder reports them,
    independently of facekit."""
    return _decoder_frames


def lying_avi(src: Path, dst: Path, claimed: int) -> None:
    """A copy of an MJPG AVI whose headers claim ``claimed`` frames."""
    data = bytearray(src.read_bytes())
    data[48:52] = struct.pack("<I", claimed)
    strh = data.find(b"strh")
    data[strh + 40:strh + 44] = struct.pack("<I", claimed)
    dst.write_bytes(bytes(data))


@pytest.fixture
def mixed_tree(fixtures_dir, tmp_path) -> Path:
    """``tmp/in``: clips, stills of mixed sizes and formats, and bad input::

        in/clips/a.avi  b.mp4  lie.avi (header says 40 of 16)  cut.avi (truncated)  empty.mp4  noise.mp4
        in/stills/big.jpg (512x512)  small.png (48x48 grey)  cat.png (no face)  scan0042 (PNG, no extension)
                  anim.gif  half.png (truncated)  zero.jpg (0 bytes)
        in/stills/notes.txt  .DS_Store   (skipped)
    """
    root = tmp_path / "in"
    clips, stills = root / "clips", root / "stills"
    clips.mkdir(parents=True)
    stills.mkdir()
    shutil.copy(fixtures_dir / AVI, clips / "a.avi")
    shutil.copy(fixtures_dir / MP4, clips / "b.mp4")
    lying_avi(fixtures_dir / AVI, clips / "lie.avi", 40)
    data = (fixtures_dir / AVI).read_bytes()
    (clips / "cut.avi").write_bytes(data[:int(len(data) * 0.7)])
    (clips / "empty.mp4").write_bytes(b"")
    (clips / "noise.mp4").write_bytes(np.random.default_rng(1).bytes(3000))
    photo = skimage.data.astronaut()
    cv2.imwrite(str(stills / "big.jpg"), photo[..., ::-1])
    face = np.ascontiguousarray(photo[0:256, 110:366])
    cv2.imwrite(str(stills / "small.png"), cv2.resize(cv2.cvtColor(face, cv2.COLOR_RGB2GRAY), (48, 48),
                                                     interpolation=cv2.INTER_AREA))
    cv2.imwrite(str(stills / "cat.png"), skimage.data.chelsea()[..., ::-1])
    png = cv2.imencode(".png", face[..., ::-1])[1].tobytes()
    (stills / "scan0042").write_bytes(png)
    (stills / "half.png").write_bytes(png[:len(png) // 2])
    from PIL import Image
    Image.fromarray(face).save(stills / "anim.gif")
    (stills / "zero.jpg").write_bytes(b"")
    (stills / "notes.txt").write_text("not a picture\n")
    (stills / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    return root
