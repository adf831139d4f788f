"""Images and videos recognised by content, and video frames with the decoder's timestamps.

:func:`media_kind` tells an image from a video by the file's first bytes (the
format signature), not by its name, so ``scan0042`` (a PNG without extension), a
GIF or a ``.dat`` that holds an AVI are found; a file without a known signature
counts as an image when one of OpenCV's image decoders recognises it, and as a
video when it has a video extension and OpenCV's FFmpeg backend opens it and
decodes a frame.

:func:`iter_video_frames` decodes a video sequentially with OpenCV's FFmpeg
backend and yields every frame's 0-based decoder position and its presentation
time in seconds (``CAP_PROP_POS_MSEC`` of the grabbed frame). The container's
frame count is never trusted for numbering: a header that claims more or fewer
frames than the stream holds changes nothing but :attr:`VideoInfo.header_frames`.
Decoding runs one frame ahead in a background thread (OpenCV releases the GIL
while decoding), so it overlaps with the caller's work on the previous frame.

FFmpeg's and OpenCV's own log lines (``moov atom not found`` ...) are kept off
the terminal: the reason a video cannot be read comes back as an
:class:`~facekit.errors.ImageReadError` instead.
"""
from __future__ import annotations

import contextlib
import os
import queue
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import ImageReadError

__all__ = ["media_kind", "VideoInfo", "VideoFrame", "iter_video_frames", "open_video", "VIDEO_EXTENSIONS",
           "quiet_video_logs"]

# FFmpeg reads its log level once, when OpenCV first loads it: quiet unless the user set one
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

#: (offset, signature) of still-image formats
_IMAGE_SIGNATURES: tuple[tuple[int, bytes], ...] = (
    (0, b"\x89PNG\r\n\x1a\n"), (0, b"\xff\xd8\xff"), (0, b"GIF87a"), (0, b"GIF89a"), (0, b"BM"),
    (0, b"II*\x00"), (0, b"MM\x00*"), (0, b"II+\x00"), (0, b"MM\x00+"),            # TIFF, BigTIFF
    (0, b"\x00\x00\x00\x0cjP  \r\n\x87\n"), (0, b"\xff\x4f\xff\x51"),                # JPEG 2000
    (0, b"#?RADIANCE"), (0, b"#?RGBE"), (0, b"\x76\x2f\x31\x01"),                    # HDR, OpenEXR
    (0, b"\x59\xa6\x6a\x95"), (0, b"\x00\x00\x00\x0cJXL "), (0, b"\xff\x0a"),        # Sun raster, JPEG XL
)
#: (offset, signature) of video containers and streams
_VIDEO_SIGNATURES: tuple[tuple[int, bytes], ...] = (
    (0, b"\x1a\x45\xdf\xa3"),                      # Matroska / WebM
    (0, b"FLV\x01"), (0, b"OggS"), (0, b"YUV4MPEG2"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"),      # ASF / WMV
    (0, b"\x00\x00\x01\xba"), (0, b"\x00\x00\x01\xb3"),   # MPEG program stream, MPEG-1/2 video
    (4, b"moov"), (4, b"mdat"), (4, b"wide"), (4, b"free"), (4, b"skip"),   # QuickTime without ftyp
)
#: ISO-BMFF brands (``ftyp``) of still images (HEIF, AVIF); every other brand is a video
_IMAGE_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif",
                           b"avis"})
#: extensions under which a file without a known signature is tried as a video
VIDEO_EXTENSIONS = frozenset({".avi", ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".m2v",
                              ".ts", ".mts", ".m2ts", ".vob", ".wmv", ".asf", ".flv", ".ogv", ".3gp",
                              ".3g2", ".y4m", ".h264", ".264", ".h265", ".265", ".hevc", ".mjpeg", ".mjpg",
                              ".dv", ".divx", ".xvid", ".rm", ".rmvb", ".f4v", ".mxf", ".nut"})


def _signature_kind(head: bytes) -> str | None:
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "image" if head[8:12] in _IMAGE_BRANDS else "video"
    if len(head) >= 12 and head[:4] == b"RIFF":
        form = head[8:12]
        if form == b"WEBP":
            return "image"
        if form in (b"AVI ", b"AVIX", b"AMV "):
            return "video"
    if len(head) >= 377 and head[0] == 0x47 and head[188] == 0x47 and head[376] == 0x47:
        return "video"                            # MPEG transport stream (188-byte packets)
    if len(head) >= 3 and head[0:1] == b"P" and head[1:2] in b"1234567" and head[2:3] in b" \t\r\n":
        return "image"                            # PNM / PAM
    for offset, sig in _IMAGE_SIGNATURES:
        if head[offset:offset + len(sig)] == sig:
            return "image"
    for offset, sig in _VIDEO_SIGNATURES:
        if head[offset:offset + len(sig)] == sig:
            return "video"
    return None


def media_kind(path: str | os.PathLike, *, try_decode: bool = True) -> str | None:
    """``"image"``, ``"video"`` or ``None`` (neither) for the file at ``path``, by content.

    Args:
        path: a file.
        try_decode: without a known signature, ask OpenCV whether one of its image
            decoders recognises the file (and, for files with a video extension,
            open it as a video and decode a frame).

    Returns ``None`` for empty or unreadable files, folders, and anything that is not
    a regular file (a pipe or a device is never opened: that could block).
    """
    p = Path(path)
    try:
        if not stat.S_ISREG(os.stat(p).st_mode):
            return None
        with open(p, "rb") as f:
            head = f.read(512)
    except OSError:
        return None
    if not head:
        return None
    kind = _signature_kind(head)
    if kind is not None or not try_decode:
        return kind
    with quiet_video_logs():
        if cv2.haveImageReader(str(p)):   # OpenCV's own signature check (reads the header only)
            return "image"
    if p.suffix.lower() in VIDEO_EXTENSIONS:
        with quiet_video_logs():
            cap = open_video(p)
            try:
                if cap is not None and cap.grab():
                    return "video"
            finally:
                if cap is not None:
                    cap.release()
    return None


_QUIET_LOCK = threading.Lock()
_QUIET = {"depth": 0, "saved": None}


@contextlib.contextmanager
def quiet_video_logs() -> Iterator[None]:
    """OpenCV's own log lines off while any thread is inside such a block (FFmpeg's
    are off from its first use); the previous level comes back when the last one leaves."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:  # pragma: no cover - OpenCV without the logging module
        yield
        return
    with _QUIET_LOCK:
        if _QUIET["depth"] == 0:
            _QUIET["saved"] = logging.getLogLevel()
            logging.setLogLevel(logging.LOG_LEVEL_SILENT)
        _QUIET["depth"] += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _QUIET["depth"] -= 1
            if _QUIET["depth"] == 0:
                logging.setLogLevel(_QUIET["saved"])


def open_video(path: str | os.PathLike) -> "cv2.VideoCapture | None":
    """An opened ``cv2.VideoCapture`` on OpenCV's FFmpeg backend (so that image
    sequences and OpenCV's own MJPEG reader never answer for it), or ``None``."""
    api = cv2.CAP_FFMPEG if cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG) else cv2.CAP_ANY
    cap = cv2.VideoCapture(str(path), api)
    if not cap.isOpened():
        cap.release()
        return None
    return cap


@dataclass
class VideoInfo:
    """What the container says about a video (filled when it is opened).

    ``header_frames``: the container's frame count (``None`` when it gives none;
    may be wrong); ``fps``: its frame rate (``None`` when it gives none);
    ``width``, ``height``: frame size in pixels; ``decoded``: frames decoded so
    far (the true count once iteration has ended).
    """

    header_frames: int | None = None
    fps: float | None = None
    width: int = 0
    height: int = 0
    decoded: int = 0


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame: 0-based decoder position, time in seconds, RGB pixels
    (``(H, W, 3)`` uint8; ``None`` for frames skipped by ``every``)."""

    index: int
    timestamp: float
    image: np.ndarray | None


def _timestamp(cap: "cv2.VideoCapture", index: int, fps: float | None, previous: float | None) -> float:
    """The grabbed frame's time in seconds: the decoder's, else ``index / fps``; never
    earlier than ``previous`` (a stream whose times go backwards keeps them flat)."""
    ms = cap.get(cv2.CAP_PROP_POS_MSEC)
    if ms is None or not np.isfinite(ms) or ms < 0 or (index > 0 and ms == 0):
        ms = 1000.0 * index / fps if fps else float(index)
    t = ms / 1000.0
    return t if previous is None else max(t, previous)


def iter_video_frames(path: str | os.PathLike, *, every: int = 1, start: int = 0,
                      info: VideoInfo | None = None, prefetch: int = 2) -> Iterator[VideoFrame]:
    """Decode ``path`` and yield its frames in order.

    Args:
        path: a video file.
        every: pixels only for frames whose index is a multiple of ``every``;
            the others are yielded with ``image=None`` (grabbed, not converted),
            so that positions and times stay the decoder's.
        start: frames before ``start`` are grabbed and not yielded (resuming).
        info: filled with the container's numbers on open and ``decoded`` as
            frames come.
        prefetch: frames decoded ahead in a background thread (0: none).

    Raises:
        ImageReadError: the file is missing or empty, or cannot be opened as a
            video. A stream that ends early (truncated) simply ends; check
            ``info.decoded`` against ``info.header_frames``.
    """
    p = Path(path)
    if not p.exists():
        raise ImageReadError(p, "file does not exist")
    if p.stat().st_size == 0:
        raise ImageReadError(p, "file is empty (0 bytes)")
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    info = info if info is not None else VideoInfo()
    with quiet_video_logs():
        cap = open_video(p)
    if cap is None:
        raise ImageReadError(p, "cannot be opened as a video (corrupt, truncated or not a video OpenCV can decode)")
    n = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    fps = cap.get(cv2.CAP_PROP_FPS)
    info.header_frames = int(n) if n and n > 0 else None
    info.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else None
    info.width, info.height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))

    def decode() -> Iterator[VideoFrame]:
        index, previous = 0, None
        with quiet_video_logs():
            while cap.grab():
                t = _timestamp(cap, index, info.fps, previous)
                previous = t
                image = None
                if index >= start and index % every == 0:
                    ok, bgr = cap.retrieve()
                    if ok and bgr is not None and bgr.size:
                        image = (cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB) if bgr.ndim == 2
                                 else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                    else:  # grabbed but not decodable: the end of what this file holds
                        break
                index += 1
                info.decoded = index
                if index > start:
                    yield VideoFrame(index - 1, t, image)

    try:
        if prefetch <= 0:
            yield from decode()
            return
        yield from _ahead(decode(), prefetch)
    finally:
        cap.release()


_DONE = object()


def _ahead(frames: Iterator[VideoFrame], depth: int) -> Iterator[VideoFrame]:
    """``frames``, produced by a background thread up to ``depth`` items ahead."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in frames:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # handed to the consumer
            q.put(exc)
        finally:
            frames.close()  # leaves the generator's blocks in this thread

    worker = threading.Thread(target=produce, name="facekit-video-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                pass
            worker.join(timeout=0.05)
