"""What one worker does (private): turn a unit of inputs into part files of table rows.

A unit is a batch of images (IMAGE mode, one landmarker per worker, reused) or
one video (VIDEO mode, a landmarker of its own). A video's rows are written in
chunks, ``<uid>.<seq>.<next>.csv`` (``next``: the first decoder position not
covered), and ``<uid>.done.json`` last; a resumed video continues after its last
chunk with a fresh landmarker. Every file is written atomically, so a killed run
leaves only complete parts behind.
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from .._fs import atomic_output, write_json_atomic
from .._quiet import native_stderr_silenced
from .._workers import BatchedProgress, OneOpenCVThread, become_worker
from ..align import AlignConfig, align_face
from ..detect import Landmarker
from ..errors import FileError
from ..imageio import read_image
from ..media import VideoInfo, iter_video_frames
from ._inputs import Input
from .table import empty_row, face_row, write_csv_rows

__all__ = ["Settings", "Unit", "UnitResult", "UnitProcessor", "video_chunks", "NO_FACE"]

Progress = Callable[[int], None]

NO_FACE = "no face found"
_CHUNK = re.compile(r"^(?P<uid>[^.]+)\.(?P<seq>\d{6})\.(?P<next>\d{9,})\.csv$")


@dataclass(frozen=True)
class Settings:
    """What workers need to know (picklable; the output-defining part is fingerprinted)."""

    model: str
    parts_dir: str
    columns: tuple[str, ...]
    mesh: bool = False
    every: int = 1
    max_faces_image: int = 4
    max_faces_video: int = 1
    aligned_dir: str | None = None
    face_size: int = 112
    grayscale: bool = False
    chunk_frames: int = 256


@dataclass(frozen=True)
class Unit:
    """A batch of images (``kind="images"``, rejected inputs included) or one video.

    ``stems`` are the aligned-face file names' stems, one per input.
    ``estimate``: frames expected (progress only).
    """

    index: int
    uid: str
    kind: str
    inputs: tuple[Input, ...]
    stems: tuple[str, ...]
    estimate: int | None = None


@dataclass
class UnitResult:
    """What a worker reports for a finished unit (small; crosses processes)."""

    index: int
    uid: str
    rows: int = 0
    frames: int = 0
    ticks: int = 0          # progress steps reported (to correct the estimate)
    estimate: int | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def video_chunks(parts_dir: Path, uid: str) -> list[tuple[int, int, Path]]:
    """``(seq, next frame, path)`` of the finished chunks of video ``uid``, in order."""
    out = []
    for p in parts_dir.glob(f"{uid}.*.csv"):
        m = _CHUNK.match(p.name)
        if m and m.group("uid") == uid:
            out.append((int(m.group("seq")), int(m.group("next")), p))
    return sorted(out)


class UnitProcessor:
    """Holds a worker's IMAGE-mode landmarker and processes units."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.parts = Path(settings.parts_dir)
        self.align_cfg = AlignConfig(size=settings.face_size, grayscale=settings.grayscale)
        self._image_lm: Landmarker | None = None
        self._cv_threads = OneOpenCVThread()      # as in prepare; restored on close

    def close(self) -> None:
        if self._image_lm is not None:
            self._image_lm.close()
            self._image_lm = None
        self._cv_threads.restore()

    def _landmarker(self, mode: str) -> Landmarker:
        if mode == "video":
            return Landmarker(self.s.model, mode="video", max_faces=self.s.max_faces_video,
                              pose=True, blendshapes=True)
        if self._image_lm is None:
            self._image_lm = Landmarker(self.s.model, max_faces=self.s.max_faces_image, pose=True, blendshapes=True)
        return self._image_lm

    # ------------------------------------------------------------------ rows
    def _aligned(self, image: np.ndarray, face: Any, stem: str, frame: int) -> str | None:
        if self.s.aligned_dir is None:
            return None
        name = f"{stem}_{frame:06d}.png"
        out = align_face(image, face.landmarks, self.align_cfg).image
        ok, buf = cv2.imencode(".png", out if out.ndim == 2 else cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
        if not ok:  # pragma: no cover - PNG encoding of a uint8 array does not fail
            raise RuntimeError(f"cannot encode {name}")
        with atomic_output(Path(self.s.aligned_dir) / name, sync=False, clean=False) as tmp:
            tmp.write_bytes(buf.tobytes())
        return name

    def _row(self, inp: Input, stem: str, frame: int, image: np.ndarray, faces: list, timestamp: float
             ) -> dict[str, Any]:
        h, w = image.shape[:2]
        if not faces:
            row = empty_row(inp.name, frame, timestamp=timestamp, reason=NO_FACE, width=w, height=h)
            if self.s.aligned_dir is not None:
                row["aligned"] = ""
            return row
        return face_row(inp.name, frame, faces[0], faces=len(faces), width=w, height=h, timestamp=timestamp,
                        mesh=self.s.mesh, aligned=self._aligned(image, faces[0], stem, frame))

    def _reject(self, inp: Input, reason: str) -> dict[str, Any]:
        row = empty_row(inp.name, -1, reason=reason)
        if self.s.aligned_dir is not None:
            row["aligned"] = ""
        return row

    def _write(self, rows: list[dict[str, Any]], path: Path) -> None:
        with atomic_output(path, clean=False) as tmp:     # the run cleans OUT.parts/ once, under its lock
            write_csv_rows(rows, self.s.columns, tmp)

    # ------------------------------------------------------------------ units
    def process(self, unit: Unit, progress: Progress | None = None) -> UnitResult:
        t0 = time.perf_counter()
        res = UnitResult(unit.index, unit.uid, estimate=unit.estimate)
        if unit.kind == "video":
            self._video(unit, res, progress)
        else:
            self._images(unit, res, progress)
        res.seconds = time.perf_counter() - t0
        return res

    def _images(self, unit: Unit, res: UnitResult, progress: Progress | None) -> None:
        rows = []
        for inp, stem in zip(unit.inputs, unit.stems):
            if inp.kind == "reject":
                rows.append(self._reject(inp, inp.reason))
            else:
                try:
                    with native_stderr_silenced():   # libpng & co. print their complaints themselves
                        image = read_image(inp.path)
                except FileError as exc:
                    rows.append(self._reject(inp, exc.reason))
                except OSError as exc:            # e.g. permission denied between scan and read
                    rows.append(self._reject(inp, f"cannot be read ({exc.strerror or exc})"))
                else:
                    try:
                        faces = self._landmarker("image").detect_all(image)
                    except (RuntimeError, ValueError) as exc:
                        rows.append(self._reject(inp, f"landmark detection failed ({exc})"))
                        self._drop_image_landmarker()
                    else:
                        rows.append(self._row(inp, stem, 0, image, faces, float("nan")))
            if progress:
                progress(1)
        self._write(rows, self.parts / f"{unit.uid}.csv")
        res.rows = res.ticks = len(rows)
        res.frames = sum(r["frame"] >= 0 for r in rows)

    def _drop_image_landmarker(self) -> None:
        if self._image_lm is not None:
            self._image_lm.close()
            self._image_lm = None

    def _video(self, unit: Unit, res: UnitResult, progress: Progress | None) -> None:
        inp, stem = unit.inputs[0], unit.stems[0]
        chunks = video_chunks(self.parts, unit.uid)
        seq = chunks[-1][0] + 1 if chunks else 0
        start = chunks[-1][1] if chunks else 0
        rows: list[dict[str, Any]] = []
        info = VideoInfo()
        lm: Landmarker | None = None
        last_ms = -1
        n_rows = n_frames = n_ticks = 0

        def flush(next_frame: int) -> None:
            nonlocal seq, rows, n_rows, n_frames
            if rows:
                self._write(rows, self.parts / f"{unit.uid}.{seq:06d}.{next_frame:09d}.csv")
                seq += 1
                n_rows += len(rows)
                n_frames += sum(r["frame"] >= 0 for r in rows)
                rows = []

        try:
            for fr in iter_video_frames(inp.path, every=self.s.every, start=start, info=info):
                if fr.image is None:
                    continue
                ms = max(int(round(fr.timestamp * 1000.0)), last_ms + 1)
                try:
                    if lm is None:
                        lm = self._landmarker("video")
                    faces = lm.detect_all_for_video(fr.image, ms)
                except (RuntimeError, ValueError) as exc:
                    h, w = fr.image.shape[:2]
                    row = empty_row(inp.name, fr.index, timestamp=fr.timestamp, width=w, height=h,
                                    reason=f"landmark detection failed ({exc})")
                    if self.s.aligned_dir is not None:
                        row["aligned"] = ""
                    rows.append(row)
                    if lm is not None:   # a fresh track (and timestamps) from the next frame on
                        lm.close()
                        lm = None
                else:
                    rows.append(self._row(inp, stem, fr.index, fr.image, faces, fr.timestamp))
                last_ms = ms
                n_ticks += 1
                if progress:
                    progress(1)
                if len(rows) >= self.s.chunk_frames:
                    flush(fr.index + 1)
        except FileError as exc:
            rows = [self._reject(inp, exc.reason)]
        finally:
            if lm is not None:
                lm.close()
        decoded = info.decoded
        if not rows and decoded == 0 and start == 0 and not chunks:
            rows = [self._reject(inp, "video has no decodable frames")]
        flush(max(decoded, start))
        if info.header_frames is not None and decoded and decoded != info.header_frames:
            res.notes.append(f"{inp.name}: the container says {info.header_frames} frames, the decoder gave "
                             f"{decoded}; rows follow the decoder")
        write_json_atomic(self.parts / f"{unit.uid}.done.json",
                          {"input": inp.name, "decoded": decoded, "header_frames": info.header_frames,
                           "fps": info.fps, "notes": res.notes}, clean=False)
        res.rows, res.frames = n_rows, n_frames
        res.ticks = n_ticks


def read_done(parts_dir: Path, uid: str) -> dict[str, Any] | None:
    """The ``done.json`` of a finished video unit, or ``None``."""
    try:
        return json.loads((parts_dir / f"{uid}.done.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# --- process-pool plumbing ------------------------------------------------------------
_STATE: dict[str, Any] = {}


def init_worker(settings: Settings, progress: Any) -> None:
    """Pool initializer: one processor per worker process."""
    # terminated (by the parent, or because it died): leave at once. concurrent.futures would
    # catch a SystemExit and go on, and unwinding through a running MediaPipe task can hang in
    # its thread pools; a temporary part file left behind is removed by the next run, which
    # holds the lock
    _STATE["parent"] = become_worker(unwind=False)
    _STATE["proc"] = UnitProcessor(settings)
    _STATE["progress"] = progress      # the writing end of the parent's progress pipe
    from multiprocessing.util import Finalize
    Finalize(None, _STATE["proc"].close, exitpriority=10)


def run_unit(unit: Unit) -> UnitResult:
    if os.getppid() != _STATE.get("parent", os.getppid()):
        raise SystemExit(143)            # the run that wanted this is gone
    conn = _STATE["progress"]
    progress = BatchedProgress(conn.send) if conn is not None else None
    try:
        return _STATE["proc"].process(unit, progress)
    finally:
        if progress is not None:
            progress.flush()
