"""``prepare``: dataset folder -> aligned, augmented HDF5 (the main job)."""
from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..datasets import ScanResult, Skipped, get_dataset
from ..datasets._common import excluding_output
from ..detect import resolve_model_path
from ..detect.weights import sha256_file
from ..errors import FacekitError, FileError, OutputExistsError, OutputLockedError
from ..store import assemble, open_facekit, read_part_meta, schema
from .._fs import TEMP_MARK, printable, remove_stale_temps
from .._workers import pool_context
from ..store._lock import FileLock, lock_output, lock_path
from ..store.assemble import existing_folds
from ..store.reader import part_files
from .config import PrepareConfig
from .plan import Part, part_index_of, plan_items, plan_parts, relative_source
from ._pool import WorkerPool
from ._worker import PartProcessor, PartResult

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
    unchanged: bool = False                 # complete already: nothing written, OUT left as it was
    assembled_elsewhere: str | None = None  # a shard found OUT being assembled by another run

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
            "images_per_second": round(self.images_per_second, 1), "unchanged": self.unchanged,
        }

    def format(self) -> str:
        if self.unchanged:
            head = f"{self.out} is complete and up to date (nothing to do; left as it was)"
        elif self.complete:
            head = f"wrote {self.out}"
        elif self.assembled_elsewhere:
            head = (f"parts written to {self.out}.parts (all {self.parts_total} present); {self.out} is being "
                    f"assembled by another run: {self.assembled_elsewhere}")
        else:
            head = (f"parts written to {self.out}.parts ({self.parts_done + self.parts_reused}/{self.parts_total} "
                    "present; the shard run that completes them writes OUT, or run again with --resume)")
        lines = [
            head,
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


def _check_location(cfg: PrepareConfig, parts_dir: Path) -> None:
    """Refuse outputs that cannot work, before anything is locked or written."""
    out = cfg.out
    if out.is_dir():
        raise FileError(out, "is a folder; give the path of the .h5 file to write")
    if parts_dir.exists() and not parts_dir.is_dir():
        raise FileError(parts_dir, "exists but is not a folder (the part files of OUT go there); move it away "
                                   "or choose another OUT")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = out.parent / f".{out.name}.write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise FileError(out, f"cannot write here ({exc.strerror or exc})") from None


def _clear_or_refuse(cfg: PrepareConfig, parts_dir: Path, fingerprint: str) -> None:
    """``--force``: remove OUT and its parts (with ``--shard`` this shard's parts only: the
    other shards may be running). Otherwise refuse an existing OUT (unless ``--resume``)
    and unfinished parts (unless ``--resume``, or ``--shard`` and parts of these settings)."""
    out = cfg.out
    if cfg.force:
        out.unlink(missing_ok=True)
        if cfg.shard is None:
            if parts_dir.is_dir():
                shutil.rmtree(parts_dir)
        elif parts_dir.is_dir():
            i, n = cfg.shard
            for f in parts_dir.glob("part-*.h5"):
                idx = part_index_of(f.name)
                if idx is not None and idx % n == i:
                    f.unlink(missing_ok=True)
        return
    if cfg.resume:
        return
    if out.exists():
        raise OutputExistsError(out, "already exists; use --force to overwrite it")
    present = sorted(parts_dir.glob("part-*.h5")) if parts_dir.is_dir() else []
    if not present:
        return
    if cfg.shard is None:
        raise OutputExistsError(parts_dir, "holds parts of an unfinished run; use --resume to continue "
                                           "it or --force to start over")
    for f in present:
        theirs = read_part_meta(f).get("fingerprint")
        if theirs is not None and theirs != fingerprint:
            raise OutputExistsError(parts_dir, f"holds parts made with other settings (e.g. {f.name}); the shards "
                                               "of one run need the same options; use --force to start over")


def _reuses(cfg: PrepareConfig) -> bool:
    """Whether finished parts of these settings are reused: with ``--resume``, and in every
    shard run (the shards of one run fill one ``OUT.parts/``)."""
    return cfg.resume or cfg.shard is not None


def prepare(config: PrepareConfig) -> PrepareSummary:
    """Run the whole preparation; see :class:`PrepareConfig`.

    The output is locked for the run (``OUT.lock``, or ``OUT.shard-I-of-N.lock``
    for a shard; :func:`facekit.store.lock_output`), and temporary files that
    killed runs left behind (``OUT.tmp-*``, part temporaries) are removed.

    Raises:
        LayoutError, UnknownDatasetError: the root is not the named layout.
        OutputExistsError: the output exists and neither ``force`` nor ``resume``.
        OutputLockedError: another run holds the output.
        NothingUsableError: no sequence or no face could be used.
        WorkerDiedError: a worker process died while writing a part.
        ModelNotFoundError, InvalidModelError: no usable landmark model.
    """
    t0 = time.perf_counter()
    cfg = config
    adapter = get_dataset(cfg.dataset, **cfg.options)
    parts_dir = Path(schema.parts_dir_for(str(cfg.out)))
    _check_location(cfg, parts_dir)
    model_path = resolve_model_path(cfg.model)
    cfg.model = str(model_path)
    frames = cfg.frames or adapter.default_frames
    settings = cfg.output_settings(frames, sha256_file(model_path))
    fingerprint = PrepareConfig.fingerprint(settings)
    with lock_output(cfg.out, doing="prepare", shard=cfg.shard, fingerprint=fingerprint), ExitStack() as stack:
        _clear_or_refuse(cfg, parts_dir, fingerprint)
        remove_stale_temps(parts_dir)
        remove_stale_temps(cfg.out.parent, cfg.out.name + TEMP_MARK)
        # A fresh run starts its worker processes now: they load their landmarkers (~0.1 s, and
        # MediaPipe's import) while this process scans and plans. A resumed run that finds
        # finished parts waits until it knows what is left (maybe nothing). On success the
        # workers exit while the output is assembled (the stack closes after it).
        resuming = _reuses(cfg) and any(parts_dir.glob("part-*.h5"))
        pool = _Pool(cfg, stack) if cfg.n_workers > 1 and not resuming else None
        summary = _prepare(cfg, adapter, parts_dir, frames, settings, fingerprint, pool, stack)
    summary.seconds = time.perf_counter() - t0
    return summary


def _sanitised(skipped: list[Skipped]) -> list[Skipped]:
    """Skips with printable, storable (UTF-8) paths and reasons."""
    return [s if printable(s.path) == s.path and printable(s.reason) == s.reason
            else Skipped(printable(s.path), printable(s.reason)) for s in skipped]


def _prepare(cfg: PrepareConfig, adapter: Any, parts_dir: Path, frames: str, settings: dict[str, Any],
             fingerprint: str, pool: "_Pool | None", stack: ExitStack) -> PrepareSummary:
    with excluding_output(cfg.out):          # OUT and OUT.parts/ may lie inside the dataset folder
        scan: ScanResult = adapter.scan(cfg.root)
    items, extra_skips = plan_items(scan, frames, cfg.limit)
    skipped = _sanitised([*scan.skipped, *extra_skips])
    summary = PrepareSummary(out=str(cfg.out), dataset=adapter.name, sequences=len(items),
                             sequences_skipped=len(skipped),
                             skipped=Counter(s.reason for s in skipped))
    if not items:
        reasons = "; ".join(f"{n} x {r}" for r, n in summary.skipped.most_common(3)) or "no sequences found"
        raise NothingUsableError(f"{cfg.root}: nothing usable for {adapter.name} ({reasons})")

    parts = plan_parts(items, cfg.part_faces)
    summary.parts_total = len(parts)
    mine = parts if cfg.shard is None else [p for p in parts if p.index % cfg.shard[1] == cfg.shard[0]]
    digests = {p.index: p.items_digest(cfg.root) for p in parts}

    todo: list[Part] = []
    known: dict[int, dict[str, Any]] = {}      # part index -> its meta, to open each part once
    for p in mine:
        path = parts_dir / p.filename
        meta = read_part_meta(path) if _reuses(cfg) and path.exists() else {}
        if meta.get("fingerprint") == fingerprint and meta.get("items_digest") == digests[p.index]:
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
        known[r.index] = {"fingerprint": fingerprint, "n_faces": r.faces, "items_digest": digests[r.index]}

    written = {r.index: r.contents for r in results}       # no need to reopen these parts
    present = [parts_dir / p.filename for p in parts]
    metas = [known[p.index] if p.index in known else (read_part_meta(path) if path.exists() else {})
             for p, path in zip(parts, present)]
    complete = all(m.get("fingerprint") == fingerprint and m.get("items_digest") == digests[p.index]
                   for p, m in zip(parts, metas))
    if complete and sum(int(m.get("n_faces", 0)) for m in metas) == 0:
        n_rej = Counter()
        for r in results:
            n_rej.update(r.rejects)
        shutil.rmtree(parts_dir, ignore_errors=True)  # nothing worth keeping; do not block a re-run
        raise NothingUsableError(f"{cfg.root}: no face could be aligned in {summary.frames} frames "
                                 f"({'; '.join(f'{n} x {r}' for r, n in n_rej.most_common(3))})")
    if not complete:
        for r in results:
            summary.faces += r.faces
            summary.samples += r.samples
            summary.rejects.update(r.rejects)
        return summary
    if not results and _up_to_date(cfg.out, fingerprint, present):
        with open_facekit(cfg.out) as f:          # nothing was written: OUT stays as it is, folds included
            counts = f.counts
        summary.unchanged = True
    else:
        with ExitStack() as assembly:
            if cfg.shard is not None:             # the last shard run assembles; one at a time
                try:
                    assembly.enter_context(FileLock(lock_path(cfg.out), cfg.out, {"doing": "assembly"}))
                except OutputLockedError as exc:
                    summary.assembled_elsewhere = exc.reason
                    return summary
            counts = assemble(
                cfg.out, present, dataset=adapter.name, label_names=[printable(n) for n in scan.labels],
                config=settings,
                extra_rejects=[(relative_source(s.path, cfg.root), s.reason) for s in skipped],
                counts={"sequences_used": len(items), "sequences_skipped": len(skipped),
                        "frames_selected": sum(p.n_frames for p in parts)},
                attrs={"augment": cfg.augment, "face_box": list(cfg.align_config.box),
                       "patch_size": cfg.patch_size,
                       "canvas_size": cfg.align_config.canvas, "frames": frames},
                contents=[written.get(p.index) for p in parts],
                keep_folds=existing_folds(cfg.out) if cfg.out.exists() else None)
    summary.faces, summary.samples = counts["faces"], counts["samples"]
    summary.complete = True
    summary.rejects = Counter(counts["rejects_by_reason"])
    summary.rejects.subtract(summary.skipped)  # adapter skips are listed separately
    summary.rejects = +summary.rejects
    return summary


def _up_to_date(out: Path, fingerprint: str, parts: list[Path]) -> bool:
    """Whether ``out`` is a valid facekit file of these settings over exactly ``parts``
    (a run that wrote no part then leaves it untouched, folds included)."""
    if not out.is_file():
        return False
    try:
        with open_facekit(out) as f:
            if "parts" not in f.h5.attrs or PrepareConfig.fingerprint(f.config) != fingerprint:
                return False
            used = {os.path.realpath(p) for p in part_files(f.h5, out).values()}
    except FacekitError:
        return False
    return used == {os.path.realpath(p) for p in parts}


class _Pool:
    """The worker processes of a run (:class:`~facekit.prepare._pool.WorkerPool`), started
    before the dataset is scanned.

    Registered on ``stack``: when the run ends normally (:meth:`close` called after the last
    part) the stack waits for the workers to exit; on an error or Ctrl-C it terminates them.
    """

    def __init__(self, cfg: PrepareConfig, stack: ExitStack, size: int | None = None) -> None:
        self.size = size or cfg.n_workers
        self._pool = WorkerPool(pool_context(), self.size, cfg)
        self._closed = False
        stack.callback(self._shutdown)

    def run(self, jobs: list[tuple[Part, str, dict[str, Any]]], progress: Any) -> Iterator[PartResult]:
        return self._pool.run(jobs, progress)

    def close(self) -> None:
        """No more work: the workers exit (closing their landmarkers); the stack waits for them."""
        if not self._closed:
            self._pool.close()
            self._closed = True

    def terminate(self) -> None:
        self._pool.terminate()

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
    bar = tqdm(total=sum(p.n_frames for p in todo), unit="img", desc=f"{cfg.dataset} -> {cfg.out.name}",
               disable=not cfg.progress, dynamic_ncols=True, smoothing=0.1)
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
                    results.append(proc.process(p, parts_dir / p.filename, progress=bar.update))
            finally:
                proc.close()
            return results
        try:
            for r in pool.run([(p, str(parts_dir / p.filename), attrs) for p in todo], bar.update):
                results.append(r)
        except BaseException:
            pool.terminate()
            raise
        return results
    finally:
        if pool is not None:
            pool.close()
        bar.close()
