"""``analyze``: images and videos -> one table row per image or video frame.

The run, in order:

1. the inputs are found (:mod:`facekit.analysis._inputs`) and cut into units:
   batches of images and single videos;
2. each unit is analysed, in this process or in worker processes, into part
   files under ``OUT.parts/`` (atomic; video rows in chunks);
3. the parts are joined, in input order, into OUT (a temporary file renamed
   when complete), and ``OUT.parts/`` is removed.

A run that stops (Ctrl-C, ``kill -9``, a dying worker) leaves ``OUT.parts/``
with every finished unit; ``resume=True`` redoes only what is missing (a video
continues after its last finished chunk). ``OUT.parts/run.json`` records the
settings: a resume with other settings is refused, and ``OUT.parts/lock`` keeps
two runs from writing the same output.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import FacekitError, FileError, OutputExistsError
from .._fs import TEMP_MARK, FileLock, atomic_output, printable, write_json_atomic
from .._workers import pool_context
from ._files import safe_file_name
from ._inputs import Input, discover
from ._worker import NO_FACE, Settings, Unit, UnitProcessor, UnitResult, read_done, video_chunks
from .table import columns, csv_header, parquet_available, read_csv_rows, table_format, to_frame

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["AnalyzeConfig", "AnalyzeSummary", "analyze", "run_analysis", "AnalysisFailedError", "pool_context",
           "NothingToAnalyseError", "parts_dir_for"]

#: version of the table layout; part files of another version are not reused
TABLE_VERSION = 1


class AnalysisFailedError(FacekitError):
    """The run could not finish (a worker died, parts are unreadable); finished parts are kept."""


class NothingToAnalyseError(FileError):
    """No image or video was found in the inputs."""


def parts_dir_for(out: str | os.PathLike) -> Path:
    """Where the part files of ``out`` live: ``OUT.parts/`` next to it."""
    out = Path(out)
    return out.with_name(out.name + ".parts")


@dataclass
class AnalyzeConfig:
    """Everything that defines an analysis run (see :func:`analyze` for the fields)."""

    inputs: Sequence[str | os.PathLike]
    out: Path | None = None
    mesh: bool = False
    every: int = 1
    aligned: Path | None = None
    face_size: int = 112
    grayscale: bool = False
    max_faces: int | None = None
    workers: int | None = None
    model: str | None = None
    resume: bool = False
    force: bool = False
    progress: bool = False
    chunk_frames: int = 256
    image_batch: int = 32

    def __post_init__(self) -> None:
        if isinstance(self.inputs, (str, os.PathLike)):
            self.inputs = [self.inputs]
        self.inputs = list(self.inputs)
        self.out = Path(self.out) if self.out is not None else None
        self.aligned = Path(self.aligned) if self.aligned is not None else None
        if self.every < 1:
            raise ValueError(f"every must be at least 1, got {self.every}")
        if self.face_size < 16:
            raise ValueError(f"face size must be at least 16 pixels, got {self.face_size}")
        if self.max_faces is not None and self.max_faces < 1:
            raise ValueError(f"max faces must be at least 1, got {self.max_faces}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.chunk_frames < 1 or self.image_batch < 1:
            raise ValueError("chunk_frames and image_batch must be at least 1")
        if self.resume and self.force:
            raise ValueError("--resume and --force exclude each other")
        if self.resume and self.out is None:
            raise ValueError("resume needs an output file (its parts are kept next to it)")
        if self.out is not None:
            table_format(self.out)

    @property
    def n_workers(self) -> int:
        return self.workers or os.cpu_count() or 1

    def output_settings(self, model_sha256: str) -> dict[str, Any]:
        """The settings that decide the table's content (``run.json``; a resume must match)."""
        return {"table_version": TABLE_VERSION, "mesh": self.mesh, "every": self.every,
                "aligned": str(self.aligned.resolve()) if self.aligned else None,
                "face_size": self.face_size, "grayscale": self.grayscale,
                "max_faces": self.max_faces, "model_sha256": model_sha256}


@dataclass
class AnalyzeSummary:
    """What a run did (``facekit analyze`` prints it; ``--json`` as :meth:`to_dict`)."""

    out: str | None
    inputs: int = 0
    images: int = 0
    videos: int = 0
    rows: int = 0
    frames: int = 0
    faces: int = 0
    no_face: int = 0
    inputs_rejected: int = 0
    rejects: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    units: int = 0
    units_reused: int = 0
    workers: int = 1
    seconds: float = 0.0
    analysed_frames: int = 0
    complete: bool = False

    @property
    def frames_per_second(self) -> float:
        """Frames analysed in this run (not reused ones) per second of the run."""
        return self.analysed_frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"out": self.out, "complete": self.complete, "inputs": self.inputs, "images": self.images,
                "videos": self.videos, "inputs_rejected": self.inputs_rejected, "rows": self.rows,
                "frames": self.frames, "faces": self.faces, "no_face": self.no_face,
                "rejects": dict(self.rejects), "skipped": dict(self.skipped), "warnings": list(self.warnings),
                "units": {"total": self.units, "reused": self.units_reused}, "workers": self.workers,
                "seconds": round(self.seconds, 3), "analysed_frames": self.analysed_frames,
                "frames_per_second": round(self.frames_per_second, 1)}

    def format(self) -> str:
        lines = [
            f"wrote {self.out}" if self.complete else f"parts kept in {self.out}.parts",
            f"  inputs      {self.inputs}: {self.images} images, {self.videos} videos, "
            f"{self.inputs_rejected} unreadable",
            f"  frames      {self.frames} rows, {self.faces} with a face, {self.no_face} without",
            f"  time        {self.seconds:.1f} s, {self.frames_per_second:.1f} frames/s, {self.workers} workers",
        ]
        if self.units_reused:
            lines.append(f"  resumed     {self.units_reused} of {self.units} units reused")
        for title, counter in (("skipped", self.skipped), ("rejected", self.rejects)):
            for reason, n in counter.most_common():
                lines.append(f"  {title:<11} {n:>5}  {reason}")
        lines.extend(f"  warning     {w}" for w in self.warnings)
        return "\n".join(lines)


# --- planning -------------------------------------------------------------------------------
def _stat_key(path: str) -> str:
    try:
        st = os.stat(path)
        return f"{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}"
    except OSError:
        return os.path.abspath(path)


def _uid(prefix: str, inputs: Sequence[Input]) -> str:
    h = hashlib.sha1("\n".join(f"{i.kind}|{i.name}|{_stat_key(i.path)}" for i in inputs).encode(
        "utf-8", "backslashreplace"))
    return prefix + h.hexdigest()[:20]


def _stems(inputs: Sequence[Input]) -> dict[str, str]:
    """Input name -> the stem of its aligned-face files (unique within the run)."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for inp in inputs:
        stem = safe_file_name(inp.name)
        if stem in used:
            stem = f"{stem}-{hashlib.sha1(inp.name.encode('utf-8', 'backslashreplace')).hexdigest()[:8]}"
        used.add(stem)
        out[inp.name] = stem
    return out


def _header_frames(path: str) -> int | None:
    import cv2

    from ..media import open_video, quiet_video_logs
    with quiet_video_logs():
        cap = open_video(path)
        if cap is None:
            return None
        try:
            n = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        finally:
            cap.release()
    return int(n) if n and n > 0 else None


def plan_units(inputs: Sequence[Input], batch: int, every: int) -> list[Unit]:
    """Videos one unit each; runs of other inputs (images, rejects) in batches of ``batch``, in order."""
    stems = _stems(inputs)
    units: list[Unit] = []
    run: list[Input] = []

    def close_run() -> None:
        for i in range(0, len(run), batch):
            part = tuple(run[i:i + batch])
            units.append(Unit(len(units), _uid("i", part), "images", part, tuple(stems[p.name] for p in part),
                              estimate=len(part)))
        run.clear()

    for inp in inputs:
        if inp.kind == "video":
            close_run()
            n = _header_frames(inp.path)
            units.append(Unit(len(units), _uid("v", [inp]), "video", (inp,), (stems[inp.name],),
                              estimate=None if n is None else math.ceil(n / every)))
        else:
            run.append(inp)
    close_run()
    return units


def _unit_done(parts: Path, unit: Unit) -> bool:
    if unit.kind == "video":
        return read_done(parts, unit.uid) is not None
    return (parts / f"{unit.uid}.csv").is_file()


def _remaining(parts: Path, unit: Unit, every: int) -> Unit:
    """``unit`` with the frames its finished chunks hold taken off its estimate."""
    chunks = video_chunks(parts, unit.uid) if unit.kind == "video" else []
    if not chunks or unit.estimate is None:
        return unit
    done = math.ceil(chunks[-1][1] / every)
    return replace(unit, estimate=max(0, unit.estimate - done))


def _unit_files(parts: Path, unit: Unit) -> list[Path]:
    if unit.kind == "video":
        return [p for _, _, p in video_chunks(parts, unit.uid)]
    return [parts / f"{unit.uid}.csv"]


# --- progress and pool ----------------------------------------------------------------------
class _Progress:
    """tqdm bar (frames, rate, ETA), fed directly or, from worker processes, through a pipe
    that a thread of this process reads.

    The workers write small counts to one pipe end without a lock (writes under the pipe's
    atomic size do not interleave), so a worker killed at any moment cannot leave a lock held
    that the rest of the run would wait for."""

    def __init__(self, total: int | None, enabled: bool, desc: str) -> None:
        from tqdm import tqdm
        self.bar = tqdm(total=total, unit="frame", desc=desc, disable=not enabled, dynamic_ncols=True,
                        smoothing=0.1)
        self._reader: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def attach(self, reader: Any) -> None:
        self._reader = reader
        self._thread = threading.Thread(target=self._drain, name="facekit-analyze-progress", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                if self._reader.poll(0.1):
                    self.bar.update(self._reader.recv())
            except (EOFError, OSError):
                return

    def correct(self, result: UnitResult) -> None:
        """A unit gave a different number of frames than estimated: fix the total."""
        if self.bar.total is not None and result.estimate is not None and result.ticks != result.estimate:
            self.bar.total += result.ticks - result.estimate
            self.bar.refresh()

    def close(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._reader.close()
        self.bar.close()


def _terminate(executor: ProcessPoolExecutor) -> None:
    procs = list(getattr(executor, "_processes", {}).values())
    for p in procs:
        if p.is_alive():
            p.terminate()
    executor.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            p.kill()
            p.join(timeout=5)


def _run_units(todo: list[Unit], settings: Settings, n_workers: int, progress: _Progress,
               parts: Path) -> list[UnitResult]:
    results: list[UnitResult] = []
    if n_workers <= 1 or len(todo) <= 1:
        proc = UnitProcessor(settings)
        try:
            for unit in todo:
                r = proc.process(unit, progress.bar.update)
                progress.correct(r)
                results.append(r)
        finally:
            proc.close()
        return results
    from ._worker import init_worker, run_unit
    ctx = pool_context()
    reader, writer = ctx.Pipe(duplex=False)
    executor = ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=init_worker,
                                   initargs=(settings, writer))
    futures: dict[Any, Unit] = {}
    try:
        # longest first: the workers finish together
        for unit in sorted(todo, key=lambda u: -(u.estimate or 10 ** 9)):
            futures[executor.submit(run_unit, unit)] = unit
        progress.attach(reader)  # a thread: started after the workers were forked
        for fut in as_completed(futures):
            r = fut.result()
            progress.correct(r)
            results.append(r)
    except BrokenProcessPool:
        _terminate(executor)
        writer.close()
        unfinished = [u for f, u in futures.items() if not f.done() or f.exception() is not None]
        names = ", ".join(u.inputs[0].name for u in unfinished[:3])
        more = f" and {len(unfinished) - 3} more units" if len(unfinished) > 3 else ""
        raise AnalysisFailedError(
            f"a worker process died (killed, or out of memory) while analysing; unfinished: {names}{more}. "
            f"Finished inputs are kept in {parts}; run the same command with --resume to continue") from None
    except BaseException:
        _terminate(executor)
        writer.close()
        raise
    executor.shutdown(wait=True)
    writer.close()      # after the workers are gone: one started late still gets it
    return results


# --- assembly ---------------------------------------------------------------------------------
def _check_header(path: Path, header: str) -> None:
    with open(path, encoding="utf-8", newline="") as f:
        if f.readline() != header:
            raise AnalysisFailedError(f"{path}: part file has other columns than this run; "
                                      "start over with --force")


def _assemble(out: Path, files: list[Path], cols: Sequence[str]) -> None:
    """Join the part files, in order, into ``out`` (atomically), without loading them all."""
    header = csv_header(cols)
    for p in files:
        _check_header(p, header)
    with atomic_output(out) as tmp:
        if table_format(out) == "csv":
            with open(tmp, "w", encoding="utf-8", newline="") as dst:
                dst.write(header)
                for p in files:
                    with open(p, encoding="utf-8", newline="") as src:
                        src.readline()
                        shutil.copyfileobj(src, dst, 1 << 20)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq
            writer = None
            try:
                for p in files:
                    table = pa.Table.from_pandas(read_csv_rows(p, cols), preserve_index=False)
                    if writer is None:
                        writer = pq.ParquetWriter(str(tmp), table.schema)
                    writer.write_table(table.cast(writer.schema))
            finally:
                if writer is not None:
                    writer.close()


def _summarise(summary: AnalyzeSummary, files: list[Path], parts: Path, units: list[Unit]) -> None:
    import pandas as pd
    for p in files:
        df = pd.read_csv(p, usecols=["frame", "success", "reason"], dtype={"reason": "str"},
                         keep_default_na=False)
        summary.rows += len(df)
        real = df[df["frame"] >= 0]
        summary.frames += len(real)
        summary.faces += int((real["success"] == 1).sum())
        summary.no_face += int((real["reason"] == NO_FACE).sum())
        summary.inputs_rejected += int((df["frame"] < 0).sum())
        summary.rejects.update(df.loc[df["success"] == 0, "reason"].tolist())
    for unit in units:
        if unit.kind == "video":
            done = read_done(parts, unit.uid) or {}
            summary.warnings.extend(done.get("notes", []))


# --- the run ----------------------------------------------------------------------------------
def _check_output(cfg: AnalyzeConfig, parts: Path) -> None:
    out = cfg.out
    assert out is not None
    if out.is_dir():
        raise FileError(out, "is a folder; give the path of the .csv or .parquet file to write")
    if table_format(out) == "parquet" and not parquet_available():
        raise FileError(out, "writing Parquet needs pyarrow: pip install pyarrow (or facekit[parquet]), "
                             "or write .csv")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = out.parent / f".{out.name}.write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise FileError(out, f"cannot write here ({exc.strerror or exc})") from None
    has_parts = parts.is_dir() and any(parts.iterdir())
    if cfg.force:
        return
    if cfg.resume:
        if out.exists() and not has_parts:
            raise OutputExistsError(out, "already exists and there is nothing to resume (that run finished); "
                                         "use --force to analyse again")
        return
    if out.exists():
        raise OutputExistsError(out, "already exists; use --force to overwrite it")
    if has_parts:
        raise OutputExistsError(parts, "holds parts of an unfinished run; use --resume to continue it or "
                                       "--force to start over")


def _check_run_json(parts: Path, settings: dict[str, Any], resume: bool) -> None:
    path = parts / "run.json"
    if resume and path.is_file():
        try:
            before = json.loads(path.read_text(encoding="utf-8")).get("settings", {})
        except (OSError, ValueError):
            before = None
        if before != settings:
            diff = sorted(k for k in set(settings) | set(before or {})
                          if (before or {}).get(k) != settings.get(k))
            what = ", ".join(f"{k} {(before or {}).get(k)!r} -> {settings.get(k)!r}" for k in diff[:4])
            raise OutputExistsError(parts, f"holds parts made with other settings ({what or 'unreadable run.json'});"
                                           " run with the same settings, or --force to start over")
        return
    write_json_atomic(path, {"settings": settings})


def run_analysis(cfg: AnalyzeConfig) -> AnalyzeSummary:
    """Run the analysis that ``cfg`` describes and write ``cfg.out``.

    Raises:
        FileError: an input path does not exist, or the output cannot be written.
        NothingToAnalyseError: no image or video among the inputs.
        OutputExistsError: output or parts exist without ``resume``/``force``,
            or a resume with other settings.
        AnalysisFailedError: a worker died; finished parts are kept.
        ModelNotFoundError: no landmark model.
    """
    if cfg.out is None:
        raise ValueError("run_analysis writes a table: give cfg.out (analyze() works without one)")
    return _analyse(cfg, None)[0]


def _analyse(cfg: AnalyzeConfig, keep_parts: Path | None) -> tuple[AnalyzeSummary, list[Path], tuple[str, ...]]:
    """The run; without ``cfg.out`` the parts stay in ``keep_parts`` (the caller's folder).
    Returns the summary, the part files in table order and the columns."""
    from ..detect.weights import resolve_model_path, sha256_file
    t0 = time.perf_counter()
    model = resolve_model_path(cfg.model)
    own = [p for p in (parts_dir_for(cfg.out) if cfg.out is not None else keep_parts, cfg.aligned) if p is not None]
    inputs, skipped = discover(cfg.inputs, exclude=own)
    if not inputs:
        what = "; ".join(f"{n} x {r}" for r, n in skipped.most_common(3)) or "no files"
        raise NothingToAnalyseError(printable(cfg.inputs[0]), f"no images or videos found ({what})")
    if cfg.out is not None:
        parts = parts_dir_for(cfg.out)
        _check_output(cfg, parts)
    else:
        assert keep_parts is not None, "without an output file the caller provides the parts folder"
        parts = keep_parts
    parts.mkdir(parents=True, exist_ok=True)
    if cfg.aligned is not None:
        try:
            cfg.aligned.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FileError(cfg.aligned, f"cannot create the folder for aligned faces ({exc.strerror or exc})") \
                from None
    summary = AnalyzeSummary(out=str(cfg.out) if cfg.out is not None else None, skipped=skipped)
    summary.inputs = len(inputs)
    summary.images = sum(i.kind == "image" for i in inputs)
    summary.videos = sum(i.kind == "video" for i in inputs)
    with FileLock(parts / "lock", cfg.out or parts, {"doing": "analyze"}) as lock:
        for old in parts.iterdir():     # we hold the lock: every temporary file is stale
            if old != lock.path and (cfg.force or TEMP_MARK in old.name):
                shutil.rmtree(old) if old.is_dir() else old.unlink(missing_ok=True)
        settings = cfg.output_settings(sha256_file(model))
        _check_run_json(parts, settings, cfg.resume)
        cols = tuple(columns(mesh=cfg.mesh, aligned=cfg.aligned is not None))
        worker_settings = Settings(
            model=str(model), parts_dir=str(parts), columns=cols, mesh=cfg.mesh, every=cfg.every,
            max_faces_image=cfg.max_faces or 4, max_faces_video=cfg.max_faces or 1,
            aligned_dir=str(cfg.aligned) if cfg.aligned is not None else None, face_size=cfg.face_size,
            grayscale=cfg.grayscale, chunk_frames=cfg.chunk_frames)
        units = plan_units(inputs, cfg.image_batch, cfg.every)
        todo = [_remaining(parts, u, cfg.every) for u in units if not _unit_done(parts, u)]
        summary.units, summary.units_reused = len(units), len(units) - len(todo)
        total = None if any(u.estimate is None for u in todo) else sum(u.estimate or 0 for u in todo)
        n_workers = max(1, min(cfg.n_workers, len(todo)))
        summary.workers = n_workers
        name = cfg.out.name if cfg.out is not None else "table"
        progress = _Progress(total, cfg.progress, f"analyze -> {name}")
        try:
            results = _run_units(todo, worker_settings, n_workers, progress, parts)
        except (OSError, FileError) as exc:   # disk full, an output folder made read-only ...
            where, why = ((exc.path, exc.reason) if isinstance(exc, FileError)
                          else (exc.filename or parts, exc.strerror or exc))
            raise AnalysisFailedError(f"{where}: {why}; finished inputs are kept in {parts}; "
                                      "run the same command with --resume to continue") from None
        finally:
            progress.close()
        summary.analysed_frames = sum(r.frames for r in results)
        files = [p for u in units for p in _unit_files(parts, u)]
        _summarise(summary, files, parts, units)
        if cfg.out is not None:
            _assemble(cfg.out, files, cols)
            summary.complete = True
    if cfg.out is not None:
        shutil.rmtree(parts, ignore_errors=True)
    summary.seconds = time.perf_counter() - t0
    return summary, files, cols


def analyze(inputs: str | os.PathLike | Sequence[str | os.PathLike], out: str | os.PathLike | None = None, *,
            mesh: bool = False, every: int = 1, aligned: str | os.PathLike | None = None, face_size: int = 112,
            grayscale: bool = False, max_faces: int | None = None, workers: int | None = 1,
            landmarker: str | os.PathLike | None = None, resume: bool = False, force: bool = False,
            progress: bool = False) -> "pd.DataFrame":
    """Per-frame landmarks, head pose and blendshapes of images and videos, as a table.

    Args:
        inputs: image files, video files and folders (searched recursively), in
            any mix; images and videos are recognised by content.
        out: also write the table here (``.csv``, or ``.parquet`` with pyarrow),
            atomically; ``None`` writes nothing.
        mesh: add all 478 MediaPipe points (``mesh_x_*``, ``mesh_y_*``, ``mesh_z_*``).
        every: analyse every N-th video frame (frame numbers stay the decoder's).
        aligned: write each found face, aligned as ``facekit prepare`` aligns
            it, as a PNG into this folder (named by input and frame).
        face_size, grayscale: the aligned faces' side in pixels and colour.
        max_faces: faces MediaPipe may return per frame (the largest is the
            row's face); default 4 for images and 1 for videos (VIDEO mode then
            tracks the face and skips the face detector).
        workers: processes (one landmarker each); ``None``: all cores.
        landmarker: ``face_landmarker.task`` (default: ``$FACEKIT_MODEL``, the
            cache, a download).
        resume: continue an interrupted run into ``out`` (needs ``out``).
        force: overwrite ``out`` and the parts of an earlier run.
        progress: show a progress bar (frames/s, ETA) on stderr.

    Returns:
        A DataFrame with one row per image or analysed video frame (columns:
        :mod:`facekit.analysis.table`); ``df.attrs["facekit"]`` holds the run's
        summary (:meth:`AnalyzeSummary.to_dict`).
    """
    cfg = AnalyzeConfig(inputs=inputs if not isinstance(inputs, (str, os.PathLike)) else [inputs],
                        out=Path(out) if out is not None else None, mesh=mesh, every=every,
                        aligned=Path(aligned) if aligned is not None else None, face_size=face_size,
                        grayscale=grayscale, max_faces=max_faces, workers=workers,
                        model=str(landmarker) if landmarker is not None else None, resume=resume,
                        force=force, progress=progress)
    if cfg.out is not None:
        from .table import read_table
        summary = run_analysis(cfg)
        df = read_table(cfg.out)
    else:
        import pandas as pd
        tmp = Path(tempfile.mkdtemp(prefix="facekit-analyze-"))
        try:
            summary, files, cols = _analyse(cfg, tmp)
            df = pd.concat([read_csv_rows(p, cols) for p in files], ignore_index=True) if files \
                else to_frame([], cols)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    df.attrs["facekit"] = summary.to_dict()
    return df
