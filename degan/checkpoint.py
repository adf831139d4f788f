"""Checkpoints: written atomically (temporary file, fsync, rename), validated on load, and the
one place that reads them back (raw payloads, networks rebuilt from them, stage 1 for reuse).

A checkpoint is a dict saved with ``torch.save``::

    {"format": "degan-checkpoint", "version": 1, "stage": "gan"|"local"|"baseline"|"pretrain"|"done",
     "epoch": int (epochs completed in that stage), "models": {name: state_dict},
     "optimizers": {name: state_dict}, "state": {...}, "config": dict (DeganConfig.to_dict),
     "meta": dict (method, fold, label names, identity names, channels, geometry, ...),
     "history": list[dict]; when done also "metrics", "seconds", "geometry"}

A partly written or truncated file never replaces a good one, so an interrupted run (or a
NaN stop) leaves the last good checkpoint in place. Checkpoints written by earlier versions
(a flat ``config``, ``meta["model"]``) load too.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facekit.store import atomic_output

from .config import DeganConfig, describe_differences, stage1_conflicts
from .errors import CheckpointError, RunDirError
from .models import DeganNets, Generator, build_baseline, build_degan

__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_config", "checkpoint_method", "fold_checkpoint",
           "build_networks", "load_fold_model", "load_stage1", "load_generator", "FORMAT", "VERSION"]

FORMAT = "degan-checkpoint"
VERSION = 1
_REQUIRED = ("stage", "epoch", "models", "config", "meta")


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, "version": VERSION, **payload}
    with atomic_output(path) as tmp:
        torch.save(data, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: missing, truncated/corrupt, or not a degan checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "checkpoint does not exist")
    try:
        data = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise CheckpointError(path, f"cannot be read as a checkpoint (corrupt or truncated?): "
                                    f"{type(exc).__name__}: {str(exc)[:200]}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(path, "not a degan checkpoint")
    if int(data.get("version", 0)) > VERSION:
        raise CheckpointError(path, f"checkpoint version {data.get('version')} is newer than this degan reads")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise CheckpointError(path, f"incomplete checkpoint: missing {', '.join(missing)}")
    return data


def fold_checkpoint(run_dir: str | os.PathLike, fold: int) -> Path:
    """``run_dir/fold_XX/checkpoint.pt``."""
    return Path(run_dir) / f"fold_{fold:02d}" / "checkpoint.pt"


def checkpoint_config(state: dict[str, Any], where: str | os.PathLike) -> DeganConfig:
    """The configuration a checkpoint (or a run's ``config.json``) records; :class:`CheckpointError`
    naming ``where`` when it cannot be read."""
    try:
        return DeganConfig.from_dict(state["config"])
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(where, f"unreadable config: {exc}") from None


def checkpoint_method(state: dict[str, Any]) -> str | None:
    """"degan", "baseline" or "pretrain" (``meta["method"]``; ``meta["model"]`` in earlier versions)."""
    meta = state.get("meta", {})
    return meta.get("method", meta.get("model"))


def build_networks(state: dict[str, Any], device: torch.device | str = "cpu",
                   where: str | os.PathLike = "checkpoint") -> DeganNets | nn.Module:
    """The networks of a fold checkpoint with its weights, in eval mode on ``device``: a
    :class:`~degan.models.DeganNets` for DE-GAN, the classifier for the baseline."""
    cfg = checkpoint_config(state, where)
    meta = state["meta"]
    n_classes = len(meta["label_names"])
    try:
        if checkpoint_method(state) == "baseline":
            model = build_baseline(cfg, meta["channels"], n_classes)
            model.load_state_dict(state["models"]["baseline"])
            return model.to(device).eval()
        nets = build_degan(cfg, meta["channels"], n_classes, meta["n_identities"])
        for k, m in nets.modules().items():
            m.load_state_dict(state["models"][k])
            m.to(device).eval()
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(meta.get("data", where), f"weights do not match the configuration: {exc}") \
            from None
    return nets


def load_fold_model(state: dict[str, Any], device: torch.device | str = "cpu",
                    where: str | os.PathLike = "checkpoint") -> Callable[[torch.Tensor], Any]:
    """The prediction function of a finished fold checkpoint (eval mode): the baseline classifier,
    or DE-GAN's stage-2 heads (:meth:`~degan.models.DeganNets.classify`)."""
    nets = build_networks(state, device, where)
    return nets.classify if isinstance(nets, DeganNets) else nets


def load_stage1(run_dir: str | os.PathLike, fold: int, cfg: DeganConfig) -> dict[str, Any]:
    """The checkpoint of ``run_dir/fold_XX`` if its stage 1 is finished and was trained with the
    stage-1 settings of ``cfg`` (:func:`degan.config.stage1_conflicts`); raises
    :class:`RunDirError` / :class:`CheckpointError` otherwise."""
    if cfg.method != "degan":
        raise RunDirError(run_dir, "--from-stage1 needs --method degan")
    ck = fold_checkpoint(run_dir, fold)
    if not ck.is_file():
        raise RunDirError(run_dir, f"--from-stage1: no checkpoint for fold {fold} ({ck.name} in fold_{fold:02d})")
    st = load_checkpoint(ck, "cpu")
    if st.get("stage") not in ("local", "done") or checkpoint_method(st) != "degan":
        raise CheckpointError(ck, f"stage 1 is not finished (stage {st.get('stage')!r}, "
                                  f"method {checkpoint_method(st)!r})")
    if int(st["meta"].get("fold", -2)) != fold:
        raise CheckpointError(ck, f"belongs to fold {st['meta'].get('fold')}, not {fold}")
    their_cfg = checkpoint_config(st, ck)
    if their_cfg.stage2.encoder_lr_scale > 0:
        raise CheckpointError(ck, f"its stage 2 trained G_en (stage2.encoder_lr_scale="
                                  f"{their_cfg.stage2.encoder_lr_scale}), so the checkpoint no longer holds the "
                                  "stage-1 encoder; use a run with a frozen G_en")
    diff = stage1_conflicts(their_cfg, cfg)
    if diff:
        raise CheckpointError(ck, f"stage 1 was trained with other settings (differs in: "
                                  f"{describe_differences(their_cfg, cfg, diff)})")
    return st


def load_generator(run_dir: str | os.PathLike, fold: int | None = None,
                   device: torch.device | str = "cpu") -> tuple[Generator, dict[str, Any], DeganConfig]:
    """G of a finished DE-GAN fold (the first fold past stage 1 when ``fold`` is None), its
    checkpoint meta and configuration."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise RunDirError(run_dir, "no config.json: not a degan run directory")
    cands = [fold_checkpoint(run_dir, fold)] if fold is not None else sorted(run_dir.glob("fold_*/checkpoint.pt"))
    for ck in cands:
        if not ck.is_file():
            continue
        state = load_checkpoint(ck, "cpu")
        if state["stage"] not in ("local", "done"):
            continue
        if checkpoint_method(state) != "degan":
            raise RunDirError(run_dir, "is a baseline run: only DE-GAN runs have a generator")
        cfg = checkpoint_config(state, ck)
        meta = state["meta"]
        nets = build_degan(cfg, meta["channels"], len(meta["label_names"]), meta["n_identities"])
        nets.G.load_state_dict(state["models"]["G"])
        return nets.G.to(device).eval(), meta, cfg
    which = f"fold {fold}" if fold is not None else "any fold"
    raise RunDirError(run_dir, f"no trained generator for {which} (a fold checkpoint past stage 1 is needed)")
