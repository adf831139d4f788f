"""Reading images and video frames into numpy arrays.

All readers return ``uint8`` arrays: ``(H, W)`` for grayscale, ``(H, W, 3)`` RGB
for colour. Failures raise :class:`~facekit.errors.ImageReadError` naming the
file and the reason (also for files that cannot be read at all, e.g. without
read permission).

Size limit: an image whose header announces more than ``max_pixels`` pixels
(default :data:`DEFAULT_MAX_PIXELS`, 50 megapixels) is refused *before* it is
decoded, so a decompression bomb (a small file that decodes to gigabytes) is an
:class:`~facekit.errors.ImageReadError`, not an out-of-memory kill. The header
is read with Pillow (already installed with matplotlib); formats Pillow does not
know are decoded by OpenCV and checked afterwards. Video frames are checked
against the size the container declares.
"""
from __future__ import annotations

import io
import os
import re
import stat
import struct
import warnings
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from .errors import ImageReadError

__all__ = ["read_image", "read_video_frames", "video_frame_count", "to_rgb", "to_gray",
           "DEFAULT_MAX_PIXELS"]

#: pixels (width x height) above which an image is refused before decoding: 50 megapixels
#: (an 8000x6000 photo fits; decoded RGB that is ~150 MB, and MediaPipe makes copies)
DEFAULT_MAX_PIXELS = 50_000_000


def _check_file(path: Path) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImageReadError(path, "file does not exist") from None
    except OSError as exc:
        raise ImageReadError(path, f"cannot be read ({exc.strerror or exc})") from None
    if path.is_dir():
        raise ImageReadError(path, "is a directory, not an image")
    if not stat.S_ISREG(st.st_mode):
        raise ImageReadError(path, "is not a regular file (a pipe, socket or device)")
    if st.st_size == 0:
        raise ImageReadError(path, "file is empty (0 bytes)")


def _read_bytes(path: Path) -> np.ndarray:
    try:
        return np.fromfile(path, dtype=np.uint8)  # works with non-ASCII paths
    except OSError as exc:
        raise ImageReadError(path, f"cannot be read ({exc.strerror or exc})") from None


def _header_pixels(data: np.ndarray) -> tuple[int, str] | None:
    """``(pixels, "WxH")`` from an encoded image's header, without decoding the pixels;
    ``None`` when the header cannot be parsed (unknown format, corrupt).

    PNG, JPEG, TIFF and BMP (the formats of the supported datasets) are read here: a
    few bytes, where Pillow took 0.4 ms per JAFFE TIFF (three times the decoding) and
    80 ms to load its plugins in every worker. Other formats go to Pillow."""
    buf = data.tobytes()
    try:
        size = _quick_size(buf)
    except (IndexError, struct.error, ValueError):
        size = None
    if size is None:
        size = _pillow_size(buf)
        if isinstance(size, int):                   # Pillow's bomb error gave only a pixel count
            return size, f"{size} pixels"
    if size is None:
        return None
    w, h = size
    return w * h, f"{w}x{h}"


_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _quick_size(buf: bytes) -> tuple[int, int] | None:
    """``(width, height)`` of a PNG, JPEG, TIFF or BMP from its header bytes, else ``None``."""
    if buf[:8] == b"\x89PNG\r\n\x1a\n" and buf[12:16] == b"IHDR":
        return struct.unpack(">II", buf[16:24])
    if buf[:2] == b"\xff\xd8":                       # JPEG: walk the markers to the frame header
        i = 2
        while i + 9 < len(buf):
            if buf[i] != 0xFF:
                return None
            marker = buf[i + 1]
            if marker == 0xFF:                          # fill byte
                i += 1
                continue
            if marker in _JPEG_SOF:
                h, w = struct.unpack(">HH", buf[i + 5:i + 9])
                return w, h
            if marker == 0x01 or 0xD0 <= marker <= 0xD8:
                i += 2
                continue
            i += 2 + struct.unpack(">H", buf[i + 2:i + 4])[0]
        return None
    if buf[:4] in (b"II*\x00", b"MM\x00*"):            # TIFF: tags 256/257 of the first IFD
        end = "<" if buf[0] == 0x49 else ">"
        ifd = struct.unpack(end + "I", buf[4:8])[0]
        n = struct.unpack(end + "H", buf[ifd:ifd + 2])[0]
        found: dict[int, int] = {}
        for k in range(n):
            e = ifd + 2 + 12 * k
            tag, kind = struct.unpack(end + "HH", buf[e:e + 4])
            if tag in (256, 257):
                fmt = {3: "H", 4: "I"}.get(kind)
                if fmt is None:
                    return None
                found[tag] = struct.unpack(end + fmt, buf[e + 8:e + 8 + struct.calcsize(fmt)])[0]
        return (found[256], found[257]) if len(found) == 2 else None
    if buf[:2] == b"BM":
        dib = struct.unpack("<I", buf[14:18])[0]
        if dib == 12:
            return struct.unpack("<HH", buf[18:22])
        if dib >= 40:
            w, h = struct.unpack("<ii", buf[18:26])
            return abs(w), abs(h)
    return None


def _pillow_size(buf: bytes) -> tuple[int, int] | int | None:
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # Pillow's own DecompressionBombWarning
        try:
            with Image.open(io.BytesIO(buf)) as im:
                return int(im.size[0]), int(im.size[1])
        except Image.DecompressionBombError as exc:
            # above twice Pillow's own limit: its message gives the pixel count only
            m = re.search(r"\((\d+) pixels\)", str(exc))
            return int(m.group(1)) if m else None
        except Exception:                          # noqa: BLE001 - any parse failure: size unknown
            return None


def _too_large(path: Path, pixels: int, size: str, max_pixels: int | None, what: str = "image") -> None:
    if max_pixels is not None and pixels > max_pixels:
        raise ImageReadError(path, f"{what} is too large ({size}, {pixels / 1e6:.1f} megapixels; the limit is "
                                   f"{max_pixels / 1e6:g} megapixels, see --max-pixels)")


def read_image(path: str | os.PathLike, *, grayscale: bool = False,
               max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file.

    Palette images are expanded, 16-bit images reduced to 8 bits (OpenCV's
    high byte), alpha dropped. Images larger than ``max_pixels`` (``None``: no
    limit) are refused before decoding (see the module docstring).

    Returns:
        ``(H, W)`` uint8 if ``grayscale`` else ``(H, W, 3)`` uint8 RGB.
    """
    path = Path(path)
    _check_file(path)
    data = _read_bytes(path)
    if max_pixels is not None:
        header = _header_pixels(data)
        if header is not None:
            _too_large(path, *header, max_pixels)
    flag = cv2.IMREAD_GRAYSCALE if grayscale else cv2.IMREAD_COLOR
    try:
        img = cv2.imdecode(data, flag)
    except cv2.error as exc:
        raise ImageReadError(path, "cannot be decoded as an image ("
                                   f"{str(exc).strip().splitlines()[-1][:200]})") from None
    except MemoryError:
        raise ImageReadError(path, "not enough memory to decode it") from None
    if img is not None and max_pixels is not None:
        _too_large(path, img.shape[0] * img.shape[1], f"{img.shape[1]}x{img.shape[0]}", max_pixels)
    if img is None or img.size == 0:
        raise ImageReadError(path, "cannot be decoded as an image (corrupt, truncated or not an image file)")
    if grayscale:
        return img
    # OpenCV's channel swap: 0.01 ms for a 256x256 image, where a reversed-stride numpy
    # copy (img[..., ::-1]) took 0.5 ms, 4 % of a JAFFE image's landmark detection
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def video_frame_count(path: str | os.PathLike) -> int:
    """Number of frames in a video file (decoded count when the header lies)."""
    path = Path(path)
    _check_file(path)
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise ImageReadError(path, "cannot be opened as a video")
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if n > 0:
            return n
        n = 0
        while cap.grab():
            n += 1
        if n == 0:
            raise ImageReadError(path, "video has no decodable frames")
        return n
    finally:
        cap.release()


def read_video_frames(path: str | os.PathLike, indices: Sequence[int], *,
                      grayscale: bool = False, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> list[np.ndarray]:
    """Decode the frames ``indices`` (0-based) of a video, in the order given.

    Decodes sequentially (seeking is unreliable for many codecs), stopping after
    the largest index requested. Videos whose declared frame size is above
    ``max_pixels`` are refused before any frame is decoded.
    """
    path = Path(path)
    _check_file(path)
    wanted = sorted(set(int(i) for i in indices))
    if not wanted:
        return []
    if wanted[0] < 0:
        raise ValueError(f"negative frame index {wanted[0]}")
    cap = cv2.VideoCapture(str(path))
    got: dict[int, np.ndarray] = {}
    try:
        if not cap.isOpened():
            raise ImageReadError(path, "cannot be opened as a video")
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        _too_large(path, w * h, f"{w}x{h}", max_pixels, "video frame")
        i = 0
        last = wanted[-1]
        want = set(wanted)
        while i <= last:
            if not cap.grab():
                break
            if i in want:
                ok, frame = cap.retrieve()
                if not ok:
                    raise ImageReadError(path, f"frame {i} cannot be decoded")
                got[i] = (cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if grayscale
                          else cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            i += 1
    finally:
        cap.release()
    missing = [j for j in wanted if j not in got]
    if missing:
        raise ImageReadError(path, f"video ends before frame {missing[0]} ({i} frames decoded)")
    return [got[int(j)] for j in indices]


def to_rgb(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 3|4)`` uint8 -> contiguous ``(H, W, 3)`` uint8 RGB."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[..., :3])
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    raise ValueError(f"expected (H, W), (H, W, 3) or (H, W, 4) image, got shape {image.shape}")


def to_gray(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 3)`` RGB uint8 -> ``(H, W)`` uint8."""
    if image.ndim == 2:
        return image
    return cv2.cvtColor(to_rgb(image), cv2.COLOR_RGB2GRAY)
