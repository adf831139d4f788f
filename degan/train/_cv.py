"""The cross-validation driver: the run directory, resuming, parallel folds (``--jobs``) and the
run's aggregate metrics.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import distributed as dist_
from ..checkpoint import load_checkpoint
from ..config import ConfigError, DeganConfig
from ..data import FileInfo, make_split, read_file_info, set_cache_jobs
from ..errors import RunDirError
from .._jsonio import write_json
from ..evaluate import summarize_run
from ._fold import load_stage1, train_fold
from ._loop import _recorded_fields
from ._pretrain import pretrain_gan


def run_cv(data: str | os.PathLike, cfg: DeganConfig, run_dir: str | os.PathLike, *, folds: Sequence[int] | None = None,
           resume: bool = False, pretrain: str | os.PathLike | None = None, device: str | None = None,
           progress: bool = True, stop_after: int | None = None,
           from_stage1: str | os.PathLike | None = None, jobs: int = 1,
           threads_per_job: int | None = None, fold_lines: bool | None = None) -> dict[str, Any]:
    """Train and evaluate ``folds`` (default: all of the file's folds) into ``run_dir``.

    ``progress`` shows progress bars; ``fold_lines`` prints one plain line per finished fold
    on stderr (accuracy, minutes, time left), which suits logs (default: as ``progress``;
    ``degan-train --no-progress`` keeps the lines and drops the bars).

    ``jobs`` > 1 trains up to that many folds at once, each in its own process with
    ``threads_per_job`` torch threads (default: the CPUs this process may use / ``jobs``);
    the results equal those of ``jobs=1`` at the same thread count (see :mod:`degan._fold_pool`).
    Not under torchrun (there, every process already works on the same fold).

    ``from_stage1``: the directory of a DE-GAN run whose folds have finished stage 1 with the
    same stage-1 configuration (:meth:`DeganConfig.stage1_fields`); each fold starts from its
    G and D and trains stage 2 only (with this ``cfg``'s stage-2 fields).

    Writes ``config.json`` first, then per fold ``fold_XX/``, and after every
    fold the aggregate ``metrics.json`` (mean, std, per-fold accuracy, pooled
    per-class recall and confusion) and ``confusion.png``. With ``resume``
    finished folds are kept and an interrupted one continues from its checkpoint.

    Raises:
        RunDirError: ``run_dir`` holds another run (without ``resume``) or ``resume`` finds no run.
        NoFoldsError, FoldError, NotAFacekitFileError, CacheMemoryError: bad input (nothing written).
    """
    dinfo = dist_.setup(device)
    if jobs < 1 or (threads_per_job is not None and threads_per_job < 1):
        raise ConfigError(f"jobs and threads per job must be >= 1 (got {jobs}, {threads_per_job})")
    if jobs > 1 and dinfo.distributed:
        raise ConfigError("--jobs > 1 cannot be combined with torchrun (DDP): use one or the other")
    run_dir = Path(run_dir)
    info = read_file_info(data)
    if info.fold is None:
        make_split(info, 0, cfg)          # raises NoFoldsError with the message
    k = info.k
    fold_list = list(range(k)) if folds is None else [int(f) for f in folds]
    for f in fold_list:
        make_split(info, f, cfg)          # validate every fold before writing anything
    stage1 = {f: load_stage1(from_stage1, f, cfg) for f in fold_list} if from_stage1 is not None else {}
    cfg_path = run_dir / "config.json"
    run_record = {"config": cfg.to_dict(), "data": str(Path(data).resolve()), "folds": fold_list, "k": k,
                  "pretrain": str(Path(pretrain).resolve()) if pretrain else None,
                  "from_stage1": str(Path(from_stage1).resolve()) if from_stage1 is not None else None,
                  "fold_attrs": {kk: (str(v) if not isinstance(v, (int, float, str)) else v)
                                 for kk, v in info.fold_attrs.items()},
                  "world_size": dinfo.world_size, "device": str(dinfo.device),
                  "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                  "torch": torch.__version__}
    problem: str | None = None          # decided on rank 0 alone (rank 0 creates the directory)
    if dinfo.main:
        if resume:
            if not cfg_path.is_file():
                problem = "--resume: no config.json here; nothing to resume"
            else:
                old = json.loads(cfg_path.read_text())
                want = cfg.result_fields()
                theirs = _recorded_fields(old["config"], cfg_path)
                if any(theirs.get(kk) != v for kk, v in want.items()):
                    diff = sorted(kk for kk, v in want.items() if theirs.get(kk) != v)
                    problem = (f"--resume: the run was started with another configuration "
                               f"(differs in: {', '.join(diff)}); resume with the same options")
                else:
                    run_record["created"] = old.get("created", run_record["created"])
                    run_record["folds"] = sorted(set(old.get("folds", [])) | set(fold_list))
        elif run_dir.exists() and any(run_dir.iterdir()):
            problem = "exists and is not empty; pass --resume to continue it, or choose another --out"
        if problem is None:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_json(cfg_path, run_record)
    problem = dist_.broadcast_object(problem)  # type: ignore[assignment]
    if problem is not None:
        raise RunDirError(run_dir, str(problem))
    pretrained = None
    if pretrain is not None and cfg.model == "degan" and cfg.pretrain_epochs > 0:
        pretrained = pretrain_gan(cfg, pretrain, run_dir, dinfo, resume, progress, info.channels)
    fold_metrics: dict[int, dict[str, Any]] = {}
    t0 = time.perf_counter()
    todo: list[int] = []
    for fold in fold_list:
        ck = run_dir / f"fold_{fold:02d}" / "checkpoint.pt"
        if resume and ck.exists():
            st = load_checkpoint(ck, "cpu")
            if st["stage"] == "done":
                fold_metrics[fold] = st["metrics"]
                continue
        todo.append(fold)

    parallel = jobs > 1 and len(todo) > 1
    print_lines = progress if fold_lines is None else fold_lines
    new_seconds: list[float] = []

    def finished(fold: int, metrics: dict[str, Any]) -> None:
        fold_metrics[fold] = metrics
        _write_run_metrics(run_dir, fold_metrics, info, cfg, time.perf_counter() - t0)
        if print_lines:
            new_seconds.append(float(metrics.get("seconds") or 0.0))
            left = len(todo) - len(new_seconds)        # folds still training or waiting
            at_once = min(jobs, left) if parallel else 1
            eta = sum(new_seconds) / len(new_seconds) * left / max(1, at_once)
            _report_fold(fold, metrics, len(fold_metrics), len(fold_list), eta)

    if parallel:
        from .._fold_pool import run_in_processes
        threads = threads_per_job or max(1, _cpus() // jobs)
        tasks = [(fold, (str(data), cfg, fold, str(run_dir / f"fold_{fold:02d}"), resume, pretrained,
                         str(from_stage1) if from_stage1 is not None else None, threads, device, progress,
                         stop_after, min(jobs, len(todo)))) for fold in todo]
        with contextlib.closing(run_in_processes(_fold_job, tasks, jobs)) as done:
            for fold, metrics in done:
                finished(fold, metrics)
    else:
        for fold in todo:
            res = train_fold(cfg, info, fold, run_dir / f"fold_{fold:02d}", dinfo=dinfo, resume=resume,
                             pretrained=pretrained, progress=progress, stop_after=stop_after, stage1=stage1.get(fold))
            if dinfo.main:
                finished(fold, res.metrics)
    if dinfo.main and fold_metrics:
        return _write_run_metrics(run_dir, fold_metrics, info, cfg, time.perf_counter() - t0)
    return {}


def _cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                       # not on Linux
        return os.cpu_count() or 1


def _report_fold(fold: int, metrics: dict[str, Any], n_done: int, n_folds: int, eta_s: float) -> None:
    """One line per finished fold (printed above any progress bars); ``eta_s``: the rest of the run,
    estimated from the mean time of the folds this invocation trained and the folds trained at once."""
    from tqdm.auto import tqdm
    sec = metrics.get("seconds")
    took = f" in {sec / 60:.1f} min" if isinstance(sec, (int, float)) else ""
    eta = f", about {eta_s / 60:.0f} min left" if n_done < n_folds else ""
    tqdm.write(f"fold {fold}: {metrics['accuracy']:.2f} %{took} ({n_done}/{n_folds} folds done{eta})",
               file=sys.stderr)


def _fold_job(data: str, cfg: DeganConfig, fold: int, fold_dir: str, resume: bool,
              pretrained: dict[str, Any] | None, from_stage1: str | None, threads: int, device: str | None,
              progress: bool, stop_after: int | None, jobs: int = 1, *,
              bar_position: int | None = None) -> dict[str, Any]:
    """One fold in a ``--jobs`` worker process (see :func:`run_cv`); returns its metrics."""
    torch.set_num_threads(threads)
    set_cache_jobs(jobs)                      # the folds running at once share the cache's memory budget
    info = read_file_info(data)
    stage1 = load_stage1(from_stage1, fold, cfg) if from_stage1 is not None else None
    res = train_fold(cfg, info, fold, Path(fold_dir), dinfo=dist_.setup(device), resume=resume,
                     pretrained=pretrained, progress=progress, stop_after=stop_after, stage1=stage1,
                     bar_position=bar_position)
    return res.metrics


def _write_run_metrics(run_dir: Path, fold_metrics: dict[int, dict[str, Any]], info: FileInfo, cfg: DeganConfig,
                       wall: float) -> dict[str, Any]:
    from ..plots import plot_confusion
    agg = summarize_run(dict(sorted(fold_metrics.items())), info.label_names, cfg, wall_seconds_this_invocation=wall)
    write_json(run_dir / "metrics.json", agg)
    plot_confusion(np.array(agg["confusion"]), info.label_names, run_dir / "confusion.png",
                   title=f"{cfg.model} ({agg['n_folds']} folds): {agg['mean']:.2f} ± {agg['std']:.2f}%")
    return agg
