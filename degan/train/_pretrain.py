"""Stage-1 pre-training on another prepared file, and loading its weights into a fold's networks
(identity-tied layers re-initialised, expression rows matched by label name).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import distributed as dist_
from ..checkpoint import load_checkpoint
from ..config import DeganConfig
from ..data import FoldSplit, read_file_info
from ..errors import RunDirError
from ..models import DeganNets, build_degan, init_weights
from ._gan import train_gan
from ._loop import _adam, _Ctx, _epoch_seed, _prepare, _state_dicts


def _load_pretrained(nets: DeganNets, pre: dict[str, Any], cfg: DeganConfig,
                     label_names: Sequence[str] | None = None) -> None:
    """Copy pre-trained G and D weights; re-initialise everything tied to the identities.

    Re-initialised: D's identity head, the identity columns of G_de's input FC
    layer, and any other layer whose shape differs. D's expression head D^e is
    matched by label name: a target class the pre-training file also has (same
    name) takes that class's row, the others and the rows of a file without
    label names start from the initialisation; the "fake" output is copied.
    Two label sets of the same size in another order (JAFFE and CK+ both have
    7) are therefore not mixed up.
    """
    models = pre["models"]
    fd = cfg.feat_dim
    pre_labels = list(pre.get("meta", {}).get("label_names") or [])
    for name, module in (("G", nets.G), ("D", nets.D)):
        own = module.state_dict()
        src = models[name]
        for key, val in src.items():
            if key not in own:
                continue
            if name == "D" and key.startswith("head_id"):
                continue
            if name == "D" and key.startswith("head_expr."):
                own[key] = _match_expression_rows(own[key], val, pre_labels, label_names)
                continue
            if name == "G" and key.startswith("expr_head."):
                own[key] = _match_expression_rows(own[key], val, pre_labels, label_names, fake_row=False)
                continue
            if name == "G" and key == "decoder.fc.weight" and val.shape != own[key].shape:
                w = own[key].clone()                        # (out, feat + ids + noise)
                w[:, :fd] = val[:, :fd]
                if cfg.noise_dim:
                    w[:, -cfg.noise_dim:] = val[:, -cfg.noise_dim:]
                own[key] = w
                continue
            if val.shape == own[key].shape:
                own[key] = val
        module.load_state_dict(own)
    init_weights(nets.D.head_id, cfg.init_std)


def _match_expression_rows(own: torch.Tensor, pre: torch.Tensor, pre_labels: Sequence[str],
                           labels: Sequence[str] | None, fake_row: bool = True) -> torch.Tensor:
    """Rows of an expression head (D^e: classes then "fake", last; G's ``expr_head`` with
    ``fake_row=False``: classes only) copied from ``pre`` by label name."""
    out = own.clone()
    if labels is None or not pre_labels:
        return pre.clone() if (labels is None and pre.shape == own.shape) else out
    index = {n.lower(): i for i, n in enumerate(pre_labels)}
    n_pre = len(pre) - 1 if fake_row else len(pre)
    for i, n in enumerate(labels):
        j = index.get(str(n).lower())
        if j is not None and j < n_pre:
            out[i] = pre[j]
    if fake_row:
        out[-1] = pre[-1]                               # "fake"
    return out


def pretrain_gan(cfg: DeganConfig, pre_path: str | os.PathLike, run_dir: Path, dinfo: dist_.DistInfo,
                 resume: bool, progress: bool = True, target_channels: int | None = None) -> dict[str, Any]:
    """Stage 1 on every labelled sample of another prepared file (``cfg.pretrain_epochs`` epochs).

    Writes ``run_dir/pretrain.pt`` (stage "pretrain") and returns its payload.
    """
    info = read_file_info(pre_path)
    if target_channels is not None and info.channels != target_channels:
        raise RunDirError(pre_path, f"pre-training file has {info.channels} channel(s), the target {target_channels}")
    labelled = np.flatnonzero(info.label >= 0)
    subj = np.unique(info.subject[labelled])
    identity = np.full(info.n_samples, -1, np.int64)
    for i, s in enumerate(subj):
        identity[info.subject == s] = i
    split = FoldSplit(-1, 0, labelled, labelled[:1], identity, [info.subjects[int(s)] for s in subj])
    ckpt = run_dir / "pretrain.pt"
    ctx = _Ctx(cfg, info, split, dinfo, run_dir, ckpt, progress)
    torch.manual_seed(_epoch_seed(cfg.seed, -1, "init", 0))
    nets = build_degan(cfg, info.channels, info.n_classes, split.n_identities)
    for m in nets.modules().values():
        _prepare(m, cfg, dinfo.device)
    opts = {"G": _adam(nets.G.parameters(), cfg), "D": _adam(nets.D.parameters(), cfg)}
    history: list[dict[str, Any]] = []
    state: dict[str, Any] = {}
    start = 0
    if ckpt.exists():
        if not resume:
            raise RunDirError(ckpt, "exists; pass --resume to continue this run")
        pre = load_checkpoint(ckpt, dinfo.device)
        for k, m in nets.modules().items():
            m.load_state_dict(pre["models"][k])
        for k, o in opts.items():
            o.load_state_dict(pre["optimizers"][k])
        history, state, start = pre.get("history", []), pre.get("state", {}), int(pre["epoch"])
    meta = {"fold": -1, "model": "pretrain", "data": str(info.path), "channels": info.channels,
            "label_names": info.label_names, "identity_names": split.identity_names}
    train_gan(ctx, nets, opts, history, state, start, cfg.pretrain_epochs, stage="pretrain", meta=meta)
    return load_checkpoint(ckpt, "cpu") if ckpt.exists() else {"models": _state_dicts(nets.modules())}
