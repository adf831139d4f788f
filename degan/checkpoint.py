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

Loading is safe: :func:`load_checkpoint` reads with ``torch.load(..., weights_only=True)``,
which rebuilds tensors, dicts, lists, tuples, strings, numbers, booleans and None and
refuses anything else, so a file carrying a pickled object (a ``__reduce__`` payload) is
refused before any of it runs. Everything degan saves is of those types
(:func:`save_checkpoint` turns numpy values into lists and numbers and refuses any other
object). Weights are copied into networks with :func:`load_weights`, which names the file
and the tensor when one is missing or of another shape.
"""
from __future__ import annotations

import os
import re
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facekit.store import atomic_output

from .config import DeganConfig, describe_differences, stage1_conflicts
from .data.fingerprint import DataFingerprint, fingerprint_mismatch, recorded_fingerprint
from .errors import CheckpointError, DataNotCheckedWarning, RunDirError
from .models import DeganNets, Generator, build_baseline, build_degan

__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_config", "checkpoint_method", "fold_checkpoint",
           "build_networks", "load_fold_model", "load_stage1", "load_generator", "load_weights", "plain_payload",
           "check_checkpoint_data", "check_weights", "FORMAT", "VERSION"]

FORMAT = "degan-checkpoint"
VERSION = 1
_REQUIRED = ("stage", "epoch", "models", "config", "meta")


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = plain_payload({"format": FORMAT, "version": VERSION, **payload})
    with atomic_output(path) as tmp:
        torch.save(data, tmp)
    return path


def plain_payload(obj: Any, where: str = "payload") -> Any:
    """``obj`` with numpy arrays turned into lists, numpy scalars into Python numbers and paths
    into strings, so that ``torch.load(..., weights_only=True)`` reads it back; containers are
    rebuilt only where something changed. ``TypeError`` for any other object (a checkpoint
    holds tensors, dicts, lists, tuples, strings, numbers, booleans and None only)."""
    if obj is None or isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):             # before float/str: np.float64 and np.str_ subclass them
        return obj.item()
    if isinstance(obj, (str, bool, int, float)):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, dict):
        items = {k: plain_payload(v, f"{where}/{k}") for k, v in obj.items()}
        if all(items[k] is obj[k] for k in obj):
            return obj
        out: dict[Any, Any] = OrderedDict(items) if isinstance(obj, OrderedDict) else dict(items)
        if hasattr(obj, "_metadata"):           # a module's state_dict keeps its layers' versions here
            out._metadata = obj._metadata  # type: ignore[attr-defined]
        return out
    if isinstance(obj, (list, tuple)):
        vals = [plain_payload(v, f"{where}/{i}") for i, v in enumerate(obj)]
        if all(a is b for a, b in zip(vals, obj)):
            return obj
        return vals if isinstance(obj, list) else tuple(vals)
    raise TypeError(f"{where}: a {type(obj).__module__}.{type(obj).__name__} cannot go into a checkpoint "
                    "(tensors, dicts, lists, tuples, strings, numbers, booleans and None only)")


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: missing, truncated/corrupt, or not a degan checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "checkpoint does not exist")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad or unsafe file
        unsafe = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if unsafe:
            raise CheckpointError(path, f"refused: holds a Python object degan never stores ({unsafe.group(1)}); "
                                        "not loaded, nothing in it was run") from None
        first = " ".join(str(exc).split())[:200]
        raise CheckpointError(path, f"cannot be read as a checkpoint (corrupt or truncated?): "
                                    f"{type(exc).__name__}: {first}") from None
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


def load_weights(module: nn.Module, state: Mapping[str, Any], where: str | os.PathLike, name: str) -> None:
    """Copy a checkpoint's ``state`` (a state_dict) into ``module``; :class:`CheckpointError`
    naming ``where`` and the tensor (``name.key``) when one is missing, unknown, not a tensor or of
    another shape than the network's."""
    own = module.state_dict()
    if not isinstance(state, Mapping):
        raise CheckpointError(where, f"weights of {name} are not a state dict")
    missing = [k for k in own if k not in state]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise CheckpointError(where, f"tensor {name}.{missing[0]} is missing{more}: a checkpoint of another network?")
    for key, value in state.items():
        if key not in own:
            raise CheckpointError(where, f"tensor {name}.{key} is not in the network: a checkpoint of another network?")
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(where, f"tensor {name}.{key} is a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != tuple(own[key].shape):
            raise CheckpointError(where, f"tensor {name}.{key} has shape {tuple(value.shape)}, the network's is "
                                         f"{tuple(own[key].shape)} (another configuration or data file?)")
    module.load_state_dict(state)  # type: ignore[arg-type]


def check_checkpoint_data(state: Mapping[str, Any], current: DataFingerprint, where: str | os.PathLike,
                          what: str = "trained") -> bool:
    """Refuse (:class:`CheckpointError` naming ``where``, both files and what differs) a checkpoint
    whose meta records another data fingerprint than ``current``. Returns False when it records
    none (written before fingerprints were recorded: the caller decides), True when it matches."""
    try:
        recorded = recorded_fingerprint(state.get("meta"))
    except ValueError as exc:
        raise CheckpointError(where, str(exc)) from None
    if recorded is None:
        return False
    problem = fingerprint_mismatch(recorded, current, what)
    if problem:
        raise CheckpointError(where, problem)
    return True


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
    try:
        n_classes, channels = len(meta["label_names"]), int(meta["channels"])
        models = state["models"]
        if not isinstance(models, Mapping):
            raise TypeError("'models' is not a dict")
        if checkpoint_method(state) == "baseline":
            model = build_baseline(cfg, channels, n_classes)
            load_weights(model, models.get("baseline"), where, "baseline")
            return model.to(device).eval()
        nets = build_degan(cfg, channels, n_classes, int(meta["n_identities"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(where, f"incomplete checkpoint meta or weights ({type(exc).__name__}: {exc})") from None
    for k, m in nets.modules().items():
        load_weights(m, models.get(k), where, k)
        m.to(device).eval()
    return nets


def check_weights(state: dict[str, Any], where: str | os.PathLike) -> None:
    """Raise :class:`CheckpointError` naming ``where`` (and the tensor) unless the checkpoint's
    weights fit the networks its configuration and meta describe (built once on the CPU and
    dropped): so a command can refuse a bad checkpoint before it writes anything."""
    build_networks(state, "cpu", where)


def load_fold_model(state: dict[str, Any], device: torch.device | str = "cpu",
                    where: str | os.PathLike = "checkpoint") -> Callable[[torch.Tensor], Any]:
    """The prediction function of a finished fold checkpoint (eval mode): the baseline classifier,
    or DE-GAN's stage-2 heads (:meth:`~degan.models.DeganNets.classify`)."""
    nets = build_networks(state, device, where)
    return nets.classify if isinstance(nets, DeganNets) else nets


def load_stage1(run_dir: str | os.PathLike, fold: int, cfg: DeganConfig,
                data: DataFingerprint | None = None) -> dict[str, Any]:
    """The checkpoint of ``run_dir/fold_XX`` if its stage 1 is finished and was trained with the
    stage-1 settings of ``cfg`` (:func:`degan.config.stage1_conflicts`) and, given ``data``, on
    that data (:func:`check_checkpoint_data`; a checkpoint that records no fingerprint is
    accepted); raises :class:`RunDirError` / :class:`CheckpointError` otherwise."""
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
    check_weights(st, ck)
    if data is not None and not check_checkpoint_data(st, data, ck):
        warnings.warn(f"{ck}: records no data fingerprint (written before degan recorded one): {data.path} is not "
                      "checked against the data its stage 1 was trained on", DataNotCheckedWarning, stacklevel=2)
    st["source"] = str(ck)               # where the weights came from, for messages (not saved)
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
        try:
            nets = build_degan(cfg, int(meta["channels"]), len(meta["label_names"]), int(meta["n_identities"]))
            weights = state["models"]["G"]
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(ck, f"incomplete checkpoint meta or weights ({type(exc).__name__}: {exc})") \
                from None
        load_weights(nets.G, weights, ck, "G")
        return nets.G.to(device).eval(), meta, cfg
    which = f"fold {fold}" if fold is not None else "any fold"
    raise RunDirError(run_dir, f"no trained generator for {which} (a fold checkpoint past stage 1 is needed)")
