"""The cross-validation driver: checks, the run directory, resuming, pre-training, the folds
(one after the other, or ``--jobs`` at a time in worker processes), progress with a whole-run
time estimate, and the run's aggregate metrics.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import distributed as dist_
from ..checkpoint import (check_checkpoint_data, check_weights, checkpoint_config, fold_checkpoint, load_checkpoint,
                          load_stage1)
from ..config import ConfigError, DeganConfig, resume_conflicts
from ..data import FileInfo, all_labelled_split, check_cache_fits, make_split, read_file_info, set_cache_jobs
from ..data.fingerprint import DataFingerprint, data_fingerprint, fingerprint_mismatch, recorded_fingerprint
from ..deviations import deviations
from ..errors import DataNotCheckedWarning, RunDirError
from ..outputs import check_writable_dir, write_json
from ..metrics import summarize_run
from .fold import FoldTrainer, epoch_images, train_fold
from .pretrain import PRETRAIN_CHECKPOINT, pretrain_gan

__all__ = ["run_cv", "RunProgress", "check_pretrain"]


def run_cv(data: str | os.PathLike, cfg: DeganConfig, run_dir: str | os.PathLike, *, folds: Sequence[int] | None = None,
           resume: bool = False, pretrain: str | os.PathLike | None = None, device: str | None = None,
           progress: bool = True, stop_after: int | None = None,
           from_stage1: str | os.PathLike | None = None, jobs: int = 1,
           threads_per_job: int | None = None, fold_lines: bool | None = None,
           started: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """Train and evaluate ``folds`` (default: all of the file's folds) into ``run_dir``.

    ``progress`` shows progress bars: each epoch's, and the whole run's (images still to train
    in every fold and stage at the average rate so far, so with an estimate of the time left).
    ``fold_lines`` prints one plain line per finished fold on stderr (accuracy, minutes, time
    left), and the line about a resume's changed runtime settings, which suits logs (default:
    as ``progress``; ``degan-train -q`` keeps the lines and drops the bars).

    ``jobs`` > 1 trains up to that many folds at once, each in its own process with
    ``threads_per_job`` torch threads (default: the CPUs this process may use / ``jobs``);
    the results equal those of ``jobs=1`` at the same thread count (see :mod:`degan.train.pool`).
    Not under torchrun (there, every process already works on the same fold).

    ``from_stage1``: the directory of a DE-GAN run whose folds have finished stage 1 with the
    same stage-1 settings (:func:`degan.config.stage1_conflicts`); each fold starts from its
    G and D and trains stage 2 only (with this ``cfg``'s stage-2 settings).

    ``pretrain``: the file stage 1 is pre-trained on; required when ``cfg.stage1.pretrain`` is
    on (the ``paper`` preset) and refused when it is off or for the baseline
    (:func:`check_pretrain`). ``config.json`` and the run's ``metrics.json`` record every
    departure of ``cfg`` from the paper (:func:`degan.deviations.deviations`; a run without the
    paper's pre-training has ``stage1.pretrain`` among them).

    Everything that can be refused is checked before the run directory is created: the device,
    the data file and its folds, ``from_stage1``, the pre-training file, the in-memory cache
    (``runtime.cache="on"``), and that ``run_dir`` can be written. Then ``config.json`` is
    written, then per fold ``fold_XX/``, and after every fold the aggregate ``metrics.json``
    (mean, std, per-fold accuracy, pooled per-class recall and confusion) and ``confusion.png``.
    With ``resume`` finished folds are kept (any of their outputs that is missing is written
    again from the fold's checkpoint) and an interrupted one continues from its checkpoint;
    only ``runtime`` settings may differ from the run's (:func:`degan.config.resume_conflicts`).
    ``started`` is called (on rank 0) with ``run_dir`` once it has been created.

    ``config.json`` and every checkpoint record the data's fingerprint
    (:mod:`degan.data.fingerprint`); ``resume``, ``from_stage1`` and the reuse of ``pretrain.pt``
    refuse data other than what they were trained on (a run or checkpoint from before
    fingerprints were recorded is accepted with a :class:`~degan.errors.DataNotCheckedWarning`).
    ``config.json`` also records the torch threads per process, ``jobs`` and the device; a
    resume that changes them says so in one line.

    Raises:
        RunDirError: ``run_dir`` holds another run (without ``resume``), ``resume`` finds no run, one
            with other settings or one trained on other data, or ``run_dir`` cannot be written.
        DeviceError, ConfigError, NoFoldsError, FoldError, NotAFacekitFileError, CacheMemoryError,
        CheckpointError: bad input (nothing written).
        NonFiniteLossError, WorkerDiedError: a failure during training (checkpoints are kept).
    """
    if jobs < 1 or (threads_per_job is not None and threads_per_job < 1):
        raise ConfigError(f"jobs and threads per job must be >= 1 (got {jobs}, {threads_per_job})")
    dinfo = dist_.setup(device)
    if jobs > 1 and dinfo.distributed:
        raise ConfigError("--jobs > 1 cannot be combined with torchrun (DDP): use one or the other")
    run_dir = Path(run_dir)
    info = read_file_info(data)
    if info.fold is None:
        make_split(info, 0, cfg)          # raises NoFoldsError with the message
    k = info.k
    fold_list = list(range(k)) if folds is None else [int(f) for f in folds]
    n_train = {f: make_split(info, f, cfg).n_train_items for f in fold_list}   # validates every fold
    fingerprint = data_fingerprint(info)
    stage1 = ({f: load_stage1(from_stage1, f, cfg, fingerprint) for f in fold_list}
              if from_stage1 is not None else {})
    pre_info = None
    if pretrain is not None:
        pre_info = read_file_info(pretrain)
        if pre_info.channels != info.channels:
            raise RunDirError(pretrain, f"pre-training file has {pre_info.channels} channel(s), the target "
                                        f"{info.channels}")
    pre_fingerprint = data_fingerprint(pretrain) if pretrain is not None else None
    old_record = _check_resumed_data(run_dir, fingerprint, pre_fingerprint, pre_info is not None) if resume else None
    check_pretrain(cfg, pretrain, from_stage1)     # after the resume check, which names what the run was pre-trained on
    print_lines = progress if fold_lines is None else fold_lines
    run_record = {"config": cfg.to_dict(), "data": str(Path(data).resolve()), "folds": fold_list, "k": k,
                  "fingerprint": fingerprint.to_dict(),
                  "pretrain": str(Path(pretrain).resolve()) if pretrain else None,
                  "pretrain_fingerprint": pre_fingerprint.to_dict() if pre_fingerprint is not None else None,
                  "from_stage1": str(Path(from_stage1).resolve()) if from_stage1 is not None else None,
                  "fold_attrs": {kk: (str(v) if not isinstance(v, (int, float, str)) else v)
                                 for kk, v in info.fold_attrs.items()},
                  "deviations": [d.to_dict() for d in deviations(cfg)],
                  "world_size": dinfo.world_size, "device": str(dinfo.device),
                  "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                  "torch": torch.__version__}
    fold_metrics: dict[int, dict[str, Any]] = {}
    todo: list[int] = []
    left: dict[int, int] = {}
    regenerate: list[int] = []          # finished folds with an output missing
    for fold in fold_list:
        ck = fold_checkpoint(run_dir, fold)
        stage, epoch = (("gan", cfg.stage1.epochs) if fold in stage1 else (None, 0))
        if resume and ck.exists():
            st = load_checkpoint(ck, "cpu")
            check_checkpoint_data(st, fingerprint, ck)
            check_weights(st, ck)
            if st["stage"] == "done":
                fold_metrics[fold] = st["metrics"]
                if _lacks_outputs(ck.parent, st):
                    regenerate.append(fold)
                continue
            stage, epoch = st["stage"], int(st["epoch"])
        todo.append(fold)
        left[fold] = _images_left(cfg, n_train[fold], stage, epoch, dinfo.world_size)
    parallel = jobs > 1 and len(todo) > 1
    threads = (threads_per_job or max(1, _cpus() // jobs)) if parallel else torch.get_num_threads()
    run_record.update(threads=threads, jobs=jobs)
    if old_record is not None and print_lines:
        changed = _execution_changes(old_record, run_record)
        if changed:
            _say(f"resume: {changed}")
    if cfg.runtime.cache == "on":
        check_cache_fits(info.path, info.image_bytes, min(jobs, len(todo)) if parallel else 1)
    problem: str | None = None          # decided on rank 0 alone (rank 0 creates the directory)
    if dinfo.main:
        try:
            _prepare_run_dir(run_dir, cfg, run_record, resume, say=_say if print_lines else None)
        except RunDirError as exc:
            problem = exc.reason
    problem = dist_.broadcast_object(problem)  # type: ignore[assignment]
    if problem is not None:
        raise RunDirError(run_dir, str(problem))
    if started is not None and dinfo.main:
        started(run_dir)
    if dinfo.main:
        for fold in regenerate:
            trainer = FoldTrainer.for_fold(cfg, info, fold, run_dir / f"fold_{fold:02d}", resume=True, dinfo=dinfo,
                                           progress=False)
            written = trainer.write_missing_outputs()
            if print_lines and written:
                _say(f"fold {fold}: wrote the missing {', '.join(written)} from its checkpoint")

    pre_images = cfg.stage1.pretraining_epochs * epoch_images(all_labelled_split(pre_info, cfg).n_train_items,
                                                              cfg.train.batch_size, dinfo.world_size) \
        if pre_info is not None else 0
    bar = RunProgress(sum(left.values()) + pre_images, enabled=progress and dinfo.main,
                      position=0 if parallel else None)
    t0 = time.perf_counter()
    new_seconds: list[float] = []

    def finished(fold: int, metrics: dict[str, Any]) -> None:
        fold_metrics[fold] = metrics
        _write_run_metrics(run_dir, fold_metrics, info, cfg, time.perf_counter() - t0)
        if print_lines:
            new_seconds.append(float(metrics.get("seconds") or 0.0))
            n_left = len(todo) - len(new_seconds)        # folds still training or waiting
            at_once = min(jobs, n_left) if parallel else 1
            eta = sum(new_seconds) / len(new_seconds) * n_left / max(1, at_once)
            _report_fold(fold, metrics, len(fold_metrics), len(fold_list), eta)

    with contextlib.closing(bar):
        pretrained = None
        if pre_info is not None:
            pretrained = pretrain_gan(cfg, pretrain, run_dir, dinfo, resume, progress,  # type: ignore[arg-type]
                                      info.channels, on_images=bar.update)
        if parallel:
            from .pool import run_in_processes
            offset = 1 if bar.enabled else 0
            tasks = [(fold, (str(data), cfg, fold, str(run_dir / f"fold_{fold:02d}"), resume, pretrained,
                             str(from_stage1) if from_stage1 is not None else None, threads, device, progress,
                             stop_after, min(jobs, len(todo)), offset)) for fold in todo]
            with contextlib.closing(run_in_processes(_fold_job, tasks, jobs,
                                                     on_progress=(lambda _, n: bar.update(n)) if bar.enabled
                                                     else None)) as done:
                for fold, metrics in done:
                    finished(fold, metrics)
        else:
            for fold in todo:
                res = train_fold(cfg, info, fold, run_dir / f"fold_{fold:02d}", dinfo=dinfo, resume=resume,
                                 pretrained=pretrained, progress=progress, stop_after=stop_after,
                                 stage1=stage1.get(fold), on_images=bar.update if bar.enabled else None)
                if dinfo.main:
                    finished(fold, res.metrics)
    if dinfo.main and fold_metrics:
        return _write_run_metrics(run_dir, fold_metrics, info, cfg, time.perf_counter() - t0)
    return {}


def check_pretrain(cfg: DeganConfig, pretrain: str | os.PathLike | None,
                   from_stage1: str | os.PathLike | None = None) -> None:
    """Refuse a pre-training file that would be ignored, or a missing one that the settings need.

    DE-GAN with ``stage1.pretrain`` on (the ``paper`` preset: the paper pre-trains stage 1 on
    BU-4DFE) needs ``pretrain``, unless stage 1 comes ``from_stage1`` of another run (which
    was checked when that run started); ``pretrain`` needs ``stage1.pretrain`` on, at least one
    pre-training epoch, and DE-GAN (the baseline has no stage 1).

    Raises:
        ConfigError: naming the option and what to do.
    """
    if cfg.method != "degan":
        if pretrain is not None:
            raise ConfigError("--pretrain: pre-training is DE-GAN's stage 1; the baseline has none to pre-train")
        return
    if pretrain is None:
        if cfg.stage1.pretrain and from_stage1 is None:
            raise ConfigError(f"--pretrain: the {cfg.preset} settings pre-train stage 1 on another file, as the paper "
                              "does on BU-4DFE: give --pretrain FILE, or --no-pretrain to train without it (the run "
                              "records it as a deviation from the paper)")
        return
    if not cfg.stage1.pretrain:
        raise ConfigError(f"--pretrain {pretrain}: stage1.pretrain is off in these settings; turn it on (--set "
                          "stage1.pretrain=true) or leave out --pretrain")
    if cfg.stage1.pretraining_epochs <= 0:
        raise ConfigError(f"--pretrain {pretrain}: 0 pre-training epochs (stage1.pretrain_epochs and stage1.epochs "
                          "are 0) would ignore it; set stage1.pretrain_epochs")


class RunProgress:
    """The whole run's progress bar: ``total`` training images over every fold and stage still
    to train; the time left is estimated at the average rate so far (tqdm, ``smoothing=0``)."""

    def __init__(self, total: int, enabled: bool, position: int | None = None) -> None:
        self.total, self.enabled, self.done = total, enabled, 0
        self._bar: Any = None
        if enabled:
            from tqdm.auto import tqdm
            self._bar = tqdm(total=total, desc="run", unit="img", position=position, smoothing=0, leave=False,
                             mininterval=1.0, dynamic_ncols=True, file=sys.stderr)

    def update(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _images_left(cfg: DeganConfig, n_train: int, stage: str | None, epoch: int, world: int) -> int:
    """Training images a fold still has to process, given the stage and epoch of its checkpoint."""
    per_epoch = epoch_images(n_train, cfg.train.batch_size, world)
    if cfg.method == "baseline":
        return max(0, cfg.baseline.epochs - (epoch if stage == "baseline" else 0)) * per_epoch
    gan = max(0, cfg.stage1.epochs - (epoch if stage == "gan" else 0)) if stage in (None, "gan") else 0
    local = max(0, cfg.stage2.epochs - (epoch if stage == "local" else 0)) if stage != "done" else 0
    return (gan + local) * per_epoch


def _lacks_outputs(fold_dir: Path, state: dict[str, Any]) -> bool:
    """Whether a finished fold's directory lacks one of the outputs it writes (:data:`FOLD_OUTPUTS`)."""
    from .fold import FOLD_OUTPUTS
    degan = state.get("meta", {}).get("method", state.get("meta", {}).get("model")) == "degan"
    return any(not (fold_dir / n).is_file() for n in FOLD_OUTPUTS if n != "synthesis.png" or degan)


def _check_resumed_data(run_dir: Path, fingerprint: DataFingerprint, pre_fingerprint: DataFingerprint | None,
                        pretraining: bool) -> dict[str, Any] | None:
    """The ``config.json`` record of the run ``--resume`` continues (None when there is none: the
    caller says so), after checking that it was trained on this data (and pre-trained on this
    pre-training file, whose ``pretrain.pt`` is loaded and checked too). A run that records no
    fingerprint is accepted with a :class:`DataNotCheckedWarning`."""
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        return None
    try:
        old = json.loads(cfg_path.read_text())
        recorded = recorded_fingerprint(old)
    except ValueError as exc:
        raise RunDirError(cfg_path, f"cannot be read: {exc}") from None
    if recorded is None:
        warnings.warn(f"{cfg_path}: records no data fingerprint (written before degan recorded one): "
                      f"{fingerprint.path} is not checked against the data the run was trained on; "
                      "it is recorded from now on", DataNotCheckedWarning, stacklevel=3)
    else:
        problem = fingerprint_mismatch(recorded, fingerprint)
        if problem:
            raise RunDirError(run_dir, f"--resume: {problem}")
    if old.get("pretrain") and pre_fingerprint is None:
        raise RunDirError(run_dir, f"--resume: the run was pre-trained on {old['pretrain']}; give --pretrain "
                                   "with that file")
    try:
        pre_recorded = recorded_fingerprint({"fingerprint": old.get("pretrain_fingerprint")})
    except ValueError as exc:
        raise RunDirError(cfg_path, f"cannot be read: {exc}") from None
    if pre_fingerprint is not None and pre_recorded is not None:
        problem = fingerprint_mismatch(pre_recorded, pre_fingerprint, "pre-trained")
        if problem:
            raise RunDirError(run_dir, f"--resume: --pretrain {problem}")
    ck = run_dir / PRETRAIN_CHECKPOINT
    if pretraining and ck.exists():
        st = load_checkpoint(ck, "cpu")
        check_weights(st, ck)
        assert pre_fingerprint is not None
        if not check_checkpoint_data(st, pre_fingerprint, ck, "pre-trained"):
            warnings.warn(f"{ck}: records no data fingerprint (written before degan recorded one): "
                          f"{pre_fingerprint.path} is not checked against the data it was pre-trained on",
                          DataNotCheckedWarning, stacklevel=3)
    return old


def _execution_changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    """What a resumed run's record changes in how the work is carried out, as one phrase
    (``"threads per process 2 -> 1, device cuda:0 -> cpu (results may differ from an
    uninterrupted run's)"``; empty when nothing changed). Only what the run recorded is compared."""
    names = {"threads": "threads per process", "device": "device", "world_size": "processes", "jobs": "jobs"}
    changed = [k for k in names if k in old and old[k] != new.get(k)]
    if not changed:
        return ""
    text = ", ".join(f"{names[k]} {old[k]} -> {new[k]}" for k in changed)
    if changed == ["jobs"]:
        return f"{text} (the same results: folds in parallel equal folds one at a time at the same thread count)"
    return f"{text} (results may differ from an uninterrupted run's)"


def _say(message: str) -> None:
    from tqdm.auto import tqdm
    tqdm.write(message, file=sys.stderr)


def _prepare_run_dir(run_dir: Path, cfg: DeganConfig, run_record: dict[str, Any], resume: bool,
                     say: Callable[[str], None] | None) -> None:
    """Check ``run_dir`` (a fresh, empty or writable directory; with ``resume`` one holding a run
    with the same settings but for ``runtime``), then create it and write ``config.json``."""
    cfg_path = run_dir / "config.json"
    if resume:
        if not cfg_path.is_file():
            raise RunDirError(run_dir, "--resume: no config.json here; nothing to resume")
        old = json.loads(cfg_path.read_text())
        theirs = checkpoint_config(old, cfg_path)
        conflicts = resume_conflicts(theirs, cfg)
        if conflicts.refused:
            raise RunDirError(run_dir, f"--resume: the run was started with another configuration (differs in: "
                                       f"{conflicts.describe(theirs, cfg, conflicts.refused)}); resume with the "
                                       "same options")
        if conflicts.runtime and say is not None:
            say(f"resume: runtime settings differ from the run's: "
                f"{conflicts.describe(theirs, cfg, conflicts.runtime)}")
        run_record["created"] = old.get("created", run_record["created"])
        run_record["folds"] = sorted(set(old.get("folds", [])) | set(run_record["folds"]))
    elif run_dir.exists() and run_dir.is_dir() and any(run_dir.iterdir()):
        raise RunDirError(run_dir, "exists and is not empty; pass --resume to continue it, or choose another --out")
    check_writable_dir(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(cfg_path, run_record)
    except OSError as exc:
        raise RunDirError(run_dir, f"cannot be written ({exc.strerror or exc})") from None


def _cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                       # not on Linux
        return os.cpu_count() or 1


def _report_fold(fold: int, metrics: dict[str, Any], n_done: int, n_folds: int, eta_s: float) -> None:
    """One line per finished fold (printed above any progress bars); ``eta_s``: the rest of the run,
    estimated from the mean time of the folds this invocation trained and the folds trained at once."""
    sec = metrics.get("seconds")
    took = f" in {sec / 60:.1f} min" if isinstance(sec, (int, float)) else ""
    eta = f", about {eta_s / 60:.0f} min left" if n_done < n_folds else ""
    _say(f"fold {fold}: {metrics['accuracy']:.2f} %{took} ({n_done}/{n_folds} folds done{eta})")


def _fold_job(data: str, cfg: DeganConfig, fold: int, fold_dir: str, resume: bool,
              pretrained: dict[str, Any] | None, from_stage1: str | None, threads: int, device: str | None,
              progress: bool, stop_after: int | None, jobs: int = 1, bar_offset: int = 0, *,
              bar_position: int | None = None, report: Callable[[int], None] | None = None) -> dict[str, Any]:
    """One fold in a ``--jobs`` worker process (see :func:`run_cv`); returns its metrics."""
    torch.set_num_threads(threads)
    set_cache_jobs(jobs)                      # the folds running at once share the cache's memory budget
    info = read_file_info(data)
    stage1 = load_stage1(from_stage1, fold, cfg, data_fingerprint(info)) if from_stage1 is not None else None
    res = train_fold(cfg, info, fold, Path(fold_dir), dinfo=dist_.setup(device), resume=resume,
                     pretrained=pretrained, progress=progress, stop_after=stop_after, stage1=stage1,
                     bar_position=None if bar_position is None else bar_position + bar_offset, on_images=report)
    return res.metrics


def _write_run_metrics(run_dir: Path, fold_metrics: dict[int, dict[str, Any]], info: FileInfo, cfg: DeganConfig,
                       wall: float) -> dict[str, Any]:
    from ..plots import accuracy_title, plot_confusion
    extra: dict[str, Any] = {"deviations": [d.to_dict() for d in deviations(cfg)]}
    val = [m["validation"]["accuracy"] for m in fold_metrics.values() if "validation" in m]
    if val:
        extra["validation_mean"] = float(np.mean(val))    # the inner validation subjects' accuracy, over folds
    agg = summarize_run(dict(sorted(fold_metrics.items())), info.label_names, cfg, wall_seconds_this_invocation=wall,
                        **extra)
    write_json(run_dir / "metrics.json", agg)
    plot_confusion(np.array(agg["confusion"]), info.label_names, run_dir / "confusion.png",
                   title=accuracy_title(cfg.method, agg["folds"]))
    return agg
