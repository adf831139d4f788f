"""``prepare``: dataset folder -> aligned, augmented HDF5 (the main job)."""
from __future__ import annotations

import multiprocessing as mp
import shutil
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from tqdm import tqdm

from ..datasets import ScanResult, get_dataset
from ..detect import resolve_model_path
from ..detect.weights import sha256_file
from ..errors import FacekitError, FileError, OutputExistsError
from ..store import assemble, read_part_meta, schema
from .config import PrepareConfig
from .plan import Part, plan_items, plan_parts, relative_source, stale_temp_files
from ._worker import PartProcessor, PartResult, init_worker, run_part

__all__ = ["prepare", "PrepareSummary", "NothingUsableError"]


class NothingUsableError(FacekitError):
    """The layout was right but no face could be used."""


@dataclass
class PrepareSummary:
    """What a run did (printed at the end of ``facekit prepare``)."""

    out: str
    dataset: str
    sequences: int = 0
    sequences_skipped: int = 0
    frames: int = 0
    faces: int = 0
    samples: int = 0
    rejects: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    parts_total: int = 0
    parts_done: int = 0
    parts_reused: int = 0
    seconds: float = 0.0
    complete: bool = False
    workers: int = 1

    @property
    def images_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": self.out, "dataset": self.dataset, "complete": self.complete,
            "sequences": self.sequences, "sequences_skipped": self.sequences_skipped,
            "frames": self.frames, "faces_aligned": self.faces, "samples_written": self.samples,
            "rejects": dict(self.rejects), "skipped": dict(self.skipped),
            "parts": {"total": self.parts_total, "written": self.parts_done, "reused": self.parts_reused},
            "workers": self.workers, "seconds": round(self.seconds, 3),
            "images_per_second": round(self.images_per_second, 1),
        }

    def format(self) -> str:
        lines = [
            f"{'wrote' if self.complete else 'parts in'} {self.out}" if self.complete
            else f"parts written to {self.out}.parts ({self.parts_done + self.parts_reused}/{self.parts_total} "
                 "present; run again with --resume once all shards are there)",
            f"  sequences   {self.sequences} used, {self.sequences_skipped} entries skipped by the adapter",
            f"  frames      {self.frames} selected, {self.faces} faces aligned, "
            f"{sum(self.rejects.values())} rejected",
            f"  samples     {self.samples} written",
            f"  time        {self.seconds:.1f} s, {self.images_per_second:.1f} images/s, {self.workers} workers",
        ]
        if self.parts_reused:
            lines.append(f"  resumed     {self.parts_reused} of {self.parts_total} parts reused")
        for title, counter in (("skipped", self.skipped), ("rejected", self.rejects)):
            for reason, n in counter.most_common():
                lines.append(f"  {title:<11} {n:>5}  {reason}")
        return "\n".join(lines)


def _check_output(cfg: PrepareConfig) -> Path:
    out = cfg.out
    parts_dir = Path(schema.parts_dir_for(str(out)))
    if out.is_dir():
        raise FileError(out, "is a folder; give the path of the .h5 file to write")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = out.parent / f".{out.name}.write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise FileError(out, f"cannot write here ({exc.strerror or exc})") from None
    if cfg.force:
        out.unlink(missing_ok=True)
        if parts_dir.is_dir():
            shutil.rmtree(parts_dir)
    elif not cfg.resume:
        if out.exists():
            raise OutputExistsError(out, "already exists; use --force to overwrite it")
        if parts_dir.is_dir() and any(parts_dir.glob("part-*.h5")):
            raise OutputExistsError(parts_dir, "holds parts of an unfinished run; use --resume to continue "
                                               "it or --force to start over")
    return parts_dir


class _Progress:
    """tqdm bar fed from a multiprocessing queue by a background thread."""

    def __init__(self, total: int, enabled: bool, desc: str) -> None:
        self.bar = tqdm(total=total, unit="img", desc=desc, disable=not enabled, dynamic_ncols=True,
                        smoothing=0.1)
        self.queue: Any = None
        self._thread: threading.Thread | None = None

    def attach(self, queue: Any) -> None:
        self.queue = queue
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            n = self.queue.get()
            if n is None:
                return
            self.bar.update(n)

    def close(self) -> None:
        if self._thread is not None:
            self.queue.put(None)
            self._thread.join(timeout=5)
        self.bar.close()


def prepare(config: PrepareConfig) -> PrepareSummary:
    """Run the whole preparation; see :class:`PrepareConfig`.

    Raises:
        LayoutError, UnknownDatasetError: the root is not the named layout.
        OutputExistsError: the output exists and neither ``force`` nor ``resume``.
        NothingUsableError: no sequence or no face could be used.
        ModelNotFoundError: no landmark model.
    """
    t0 = time.perf_counter()
    cfg = config
    adapter = get_dataset(cfg.dataset, **cfg.options)
    parts_dir = _check_output(cfg)
    model_path = resolve_model_path(cfg.model)
    cfg.model = str(model_path)
    with ExitStack() as stack:
        # A fresh run starts its worker processes now: they load their landmarkers (~0.1 s, and
        # MediaPipe's import) while this process scans and plans. A resumed run that finds
        # finished parts waits until it knows what is left (maybe nothing). On success the
        # workers exit while the output is assembled (the stack closes after it).
        resuming = cfg.resume and any(parts_dir.glob("part-*.h5"))
        pool = _Pool(cfg, stack) if cfg.n_workers > 1 and not resuming else None
        summary = _prepare(cfg, adapter, parts_dir, model_path, pool, stack)
    summary.seconds = time.perf_counter() - t0
    return summary


def _prepare(cfg: PrepareConfig, adapter: Any, parts_dir: Path, model_path: Path,
             pool: "_Pool | None", stack: ExitStack) -> PrepareSummary:
    scan: ScanResult = adapter.scan(cfg.root)
    frames = cfg.frames or adapter.default_frames
    items, extra_skips = plan_items(scan, frames, cfg.limit)
    skipped = [*scan.skipped, *extra_skips]
    summary = PrepareSummary(out=str(cfg.out), dataset=adapter.name, sequences=len(items),
                             sequences_skipped=len(skipped),
                             skipped=Counter(s.reason for s in skipped))
    if not items:
        reasons = "; ".join(f"{n} x {r}" for r, n in summary.skipped.most_common(3)) or "no sequences found"
        raise NothingUsableError(f"{cfg.root}: nothing usable for {adapter.name} ({reasons})")

    settings = cfg.output_settings(frames, sha256_file(model_path))
    fingerprint = PrepareConfig.fingerprint(settings)
    parts = plan_parts(items, cfg.part_faces)
    summary.parts_total = len(parts)
    mine = parts if cfg.shard is None else [p for p in parts if p.index % cfg.shard[1] == cfg.shard[0]]
    for stale in stale_temp_files(parts_dir, mine):
        stale.unlink(missing_ok=True)

    todo: list[Part] = []
    known: dict[int, dict[str, Any]] = {}      # part index -> its meta, to open each part once
    for p in mine:
        path = parts_dir / p.filename
        meta = read_part_meta(path) if cfg.resume and path.exists() else {}
        if meta.get("fingerprint") == fingerprint and meta.get("items_digest") == p.items_digest(cfg.root):
            summary.parts_reused += 1
            summary.frames += p.n_frames
            known[p.index] = meta
            continue
        todo.append(p)

    attrs = {"fingerprint": fingerprint, "dataset": adapter.name}
    if pool is None and min(cfg.n_workers, len(todo)) > 1:
        pool = _Pool(cfg, stack, min(cfg.n_workers, len(todo)))
    results = _run_parts(cfg, todo, parts_dir, attrs, summary, pool)
    for r in results:
        summary.frames += r.frames
        summary.parts_done += 1
        known[r.index] = {"fingerprint": fingerprint, "n_faces": r.faces}

    written = {r.index: r.contents for r in results}       # no need to reopen these parts
    present = [parts_dir / p.filename for p in parts]
    metas = [known[p.index] if p.index in known else (read_part_meta(path) if path.exists() else {})
             for p, path in zip(parts, present)]
    complete = all(m.get("fingerprint") == fingerprint for m in metas)
    if complete and sum(int(m.get("n_faces", 0)) for m in metas) == 0:
        n_rej = Counter()
        for r in results:
            n_rej.update(r.rejects)
        shutil.rmtree(parts_dir, ignore_errors=True)  # nothing worth keeping; do not block a re-run
        raise NothingUsableError(f"{cfg.root}: no face could be aligned in {summary.frames} frames "
                                 f"({'; '.join(f'{n} x {r}' for r, n in n_rej.most_common(3))})")
    if complete:
        counts = assemble(
            cfg.out, present, dataset=adapter.name, label_names=scan.labels, config=settings,
            extra_rejects=[(relative_source(s.path, cfg.root), s.reason) for s in skipped],
            counts={"sequences_used": len(items), "sequences_skipped": len(skipped),
                    "frames_selected": sum(p.n_frames for p in parts)},
            attrs={"augment": cfg.augment, "face_box": list(cfg.align_config.box),
                   "patch_size": cfg.patch_size,
                   "canvas_size": cfg.align_config.canvas, "frames": frames},
            contents=[written.get(p.index) for p in parts])
        summary.faces, summary.samples = counts["faces"], counts["samples"]
        summary.complete = True
        summary.rejects = Counter(counts["rejects_by_reason"])
        summary.rejects.subtract(summary.skipped)  # adapter skips are listed separately
        summary.rejects = +summary.rejects
    else:
        for r in results:
            summary.faces += r.faces
            summary.samples += r.samples
            summary.rejects.update(r.rejects)
    return summary


def _pool_context() -> Any:
    """``fork`` (fast worker start) unless this process already ran MediaPipe, whose
    thread pools make forked children deadlock; then ``forkserver``."""
    from ..detect.landmarker import mediapipe_started, preload
    if "fork" in mp.get_all_start_methods() and not mediapipe_started():
        preload()  # once here rather than once per worker
        return mp.get_context("fork")
    ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(["facekit.prepare._worker"])
    return ctx


class _Pool:
    """The worker processes of a run, started before the dataset is scanned.

    Registered on ``stack``: when the run ends normally (:meth:`close` called after the last
    part) the stack waits for the workers to exit; on an error or Ctrl-C it terminates them.
    """

    def __init__(self, cfg: PrepareConfig, stack: ExitStack, size: int | None = None) -> None:
        ctx = _pool_context()
        self.size = size or cfg.n_workers
        self.queue = ctx.SimpleQueue()
        self._pool = ctx.Pool(self.size, initializer=init_worker, initargs=(cfg, self.queue))
        self._closed = False
        stack.callback(self._shutdown)

    def imap_unordered(self, jobs: list[tuple[Part, str, dict[str, Any]]]) -> Iterator[PartResult]:
        return self._pool.imap_unordered(run_part, jobs)

    def close(self) -> None:
        """No more work: the workers exit (closing their landmarkers) when the stack closes."""
        self._pool.close()
        self._closed = True

    def terminate(self) -> None:
        self._pool.terminate()
        self._pool.join()

    def _shutdown(self) -> None:
        if self._closed:
            self._pool.join()
        else:
            self.terminate()


def _run_parts(cfg: PrepareConfig, todo: list[Part], parts_dir: Path, attrs: dict[str, Any],
               summary: PrepareSummary, pool: _Pool | None) -> list[PartResult]:
    """Write the parts in ``todo``, in ``pool``'s workers or, without one, in this process."""
    summary.workers = max(1, min(pool.size if pool else 1, len(todo)))
    parts_dir.mkdir(parents=True, exist_ok=True)
    progress = _Progress(sum(p.n_frames for p in todo), cfg.progress, f"{cfg.dataset} -> {cfg.out.name}")
    results: list[PartResult] = []
    try:
        if not todo:
            if pool is not None:
                pool.terminate()     # nothing left to do (all parts reused): do not wait for start-up
            return results
        if pool is None:
            proc = PartProcessor(cfg, attrs)
            try:
                for p in todo:
                    results.append(proc.process(p, parts_dir / p.filename, progress=progress.bar.update))
            finally:
                proc.close()
            return results
        progress.attach(pool.queue)  # a thread: started after the fork, so it holds no lock while forking
        try:
            jobs = [(p, str(parts_dir / p.filename), attrs) for p in todo]
            for r in pool.imap_unordered(jobs):
                results.append(r)
        except BaseException:
            pool.terminate()
            raise
        return results
    finally:
        if pool is not None:
            pool.close()
        progress.close()
