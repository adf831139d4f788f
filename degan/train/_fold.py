"""One fold: both DE-GAN stages or the baseline, evaluation, the fold's outputs, and loading a
fold's checkpoint (for prediction or as the stage 1 of another run).
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import distributed as dist_
from ..checkpoint import load_checkpoint, save_checkpoint
from ..config import DeganConfig
from ..data import FileInfo, FoldSplit, make_split
from ..errors import CheckpointError, RunDirError
from .._jsonio import write_json
from ..evaluate import classification_metrics, head_accuracies, predict, write_predictions
from ..geometry import fit_geometry
from ..losses import stage2_loss
from ..models import DeganNets, build_baseline, build_degan
from ._classify import _classify_epochs, _degan_forward, _EncoderAndLocal, _eval_fn, _eval_mode, _with_synthesised
from ._gan import train_gan
from ._loop import _adam, _compiled, _Ctx, _epoch_seed, _meta, _prepare, _recorded_fields, _state_dicts
from ._pretrain import _load_pretrained


@dataclass
class FoldResult:
    fold: int
    metrics: dict[str, Any]
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)


def train_fold(cfg: DeganConfig, info: FileInfo, fold: int, fold_dir: Path, *, dinfo: dist_.DistInfo | None = None,
               resume: bool = False, pretrained: dict[str, Any] | None = None, progress: bool = True,
               stop_after: int | None = None, stage1: dict[str, Any] | None = None,
               bar_position: int | None = None) -> FoldResult:
    """Train and evaluate one fold; writes ``fold_dir/{checkpoint.pt,metrics.json,history.json,predictions.csv,*.png}``.

    ``stage1``: a checkpoint payload of this fold whose stage 1 is finished (stage "local" or
    "done", see :func:`load_stage1`); its G and D are used and only stage 2 is trained.

    Raises:
        RunDirError: a checkpoint exists and ``resume`` is False.
        CheckpointError: the checkpoint is corrupt or from another configuration.
        NonFiniteLossError: a loss became NaN/inf (the last good checkpoint stays).
    """
    dinfo = dinfo or dist_.setup()
    t_start = time.perf_counter()
    split = make_split(info, fold, cfg)
    ckpt = fold_dir / "checkpoint.pt"
    ctx = _Ctx(cfg, info, split, dinfo, fold_dir, ckpt, progress, stop_after, bar_position)
    saved: dict[str, Any] | None = None
    if ckpt.exists():
        if not resume:
            raise RunDirError(ckpt, "exists; pass --resume to continue, or choose another --out")
        saved = load_checkpoint(ckpt, "cpu")
        want = cfg.result_fields()
        theirs = _recorded_fields(saved["config"], ckpt)
        if any(theirs.get(k) != v for k, v in want.items()):
            diff = sorted(k for k, v in want.items() if theirs.get(k) != v)
            raise CheckpointError(ckpt, f"was written with another configuration (differs in: {', '.join(diff)})")
        if int(saved["meta"].get("fold", -2)) != fold:
            raise CheckpointError(ckpt, f"belongs to fold {saved['meta'].get('fold')}, not {fold}")
    torch.manual_seed(_epoch_seed(cfg.seed, fold, "init", 0))
    history: list[dict[str, Any]] = list(saved.get("history", [])) if saved else []
    stage_done = saved["stage"] if saved else None
    done_epochs = int(saved["epoch"]) if saved else 0
    dev = dinfo.device
    if cfg.model == "baseline":
        model = _prepare(build_baseline(cfg, info.channels, info.n_classes), cfg, dev)
        opt = _adam(model.parameters(), cfg)
        if saved:
            model.load_state_dict(saved["models"]["baseline"])
            if "baseline" in saved.get("optimizers", {}):
                opt.load_state_dict(saved["optimizers"]["baseline"])
        if stage_done != "done":
            wrapped = _compiled(dist_.wrap(model, dinfo), cfg)

            def payload_b() -> dict[str, Any]:
                return {"models": _state_dicts({"baseline": model}), "optimizers": {"baseline": opt.state_dict()},
                        "config": cfg.to_dict(), "meta": _meta(ctx, "baseline")}

            def loss_b(out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
                loss = nn.functional.cross_entropy(out.float(), y, label_smoothing=cfg.label_smoothing)
                return loss, {"ce": loss.item()}
            _classify_epochs(ctx, "baseline", wrapped, loss_b, opt, history, done_epochs,
                             cfg.epochs_baseline, payload_b, _eval_fn(ctx, model, [model]), model.train)
        model.eval()
        forward: Callable[[torch.Tensor], Any] = model
        nets = None
    else:
        n_ids = split.n_identities
        nets = build_degan(cfg, info.channels, info.n_classes, n_ids)
        if pretrained is not None and saved is None:
            _load_pretrained(nets, pretrained, cfg, info.label_names)
        if stage1 is not None and saved is None:
            for k in ("G", "D"):
                nets.modules()[k].load_state_dict(stage1["models"][k])
            history = [h for h in stage1.get("history", []) if h.get("stage") == "gan"]
            stage_done, done_epochs = "gan", cfg.epochs_gan
        for m in nets.modules().values():
            _prepare(m, cfg, dev)
        opts = {"G": _adam(nets.G.parameters(), cfg), "D": _adam(nets.D.parameters(), cfg)}
        tune_enc = cfg.encoder_lr_scale > 0              # stage 2 trains G_en too (not the paper)
        opt_local = _adam(nets.local.parameters() if not tune_enc else
                          [{"params": list(nets.local.parameters())},
                           {"params": list(nets.G.encoder.parameters()), "lr_scale": cfg.encoder_lr_scale}], cfg)
        state: dict[str, Any] = {}
        if saved:
            for k, m in nets.modules().items():
                m.load_state_dict(saved["models"][k])
            so = saved.get("optimizers", {})
            for k, o in opts.items():
                if k in so:
                    o.load_state_dict(so[k])
            if "local" in so:
                opt_local.load_state_dict(so["local"])
            state = dict(saved.get("state", {}))
        if stage_done in (None, "gan") and done_epochs < cfg.epochs_gan:
            train_gan(ctx, nets, opts, history, state, done_epochs if stage_done == "gan" else 0, cfg.epochs_gan)
        if stage_done in (None, "gan"):
            done_epochs = 0
        if stage_done != "done":
            enc = nets.G.encoder
            enc.eval()
            nets.G.requires_grad_(False)                  # stage 2: G frozen (paper) ...
            enc.requires_grad_(tune_enc)                  # ... unless encoder_lr_scale > 0
            n_ids = nets.G.decoder.n_identities
            if tune_enc:
                tuned = _compiled(dist_.wrap(_EncoderAndLocal(enc, nets.local), dinfo), cfg)

                def fwd_train(x: torch.Tensor) -> list[torch.Tensor]:
                    if cfg.synth_fraction > 0:
                        with torch.no_grad(), _eval_mode(enc):
                            x = _with_synthesised(nets.G, x, cfg.synth_fraction, n_ids, cfg.noise_dim)
                    return tuned(x)
            else:
                local = _compiled(dist_.wrap(nets.local, dinfo), cfg)

                def fwd_train(x: torch.Tensor) -> list[torch.Tensor]:
                    with torch.no_grad():
                        x = _with_synthesised(nets.G, x, cfg.synth_fraction, n_ids, cfg.noise_dim)
                        f, taps = enc.forward_taps(x)
                    return local(f, taps)

            def payload_l() -> dict[str, Any]:
                return {"models": _state_dicts(nets.modules()),
                        "optimizers": {"local": opt_local.state_dict()}, "state": dict(state),
                        "config": cfg.to_dict(), "meta": _meta(ctx, "degan")}

            def loss_l(out: list[torch.Tensor], y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
                return stage2_loss(out, y, cfg.stage2_weights, cfg.label_smoothing)

            def mode_l() -> None:
                nets.local.train()
                nets.G.eval()                             # G_en frozen; G_de (synth_fraction) too
                enc.train(tune_enc)
            start_local = done_epochs if stage_done == "local" else 0
            _classify_epochs(ctx, "local", fwd_train, loss_l, opt_local, history, start_local,
                             cfg.epochs_local, payload_l, _eval_fn(ctx, _degan_forward(nets), [nets.local, enc]),
                             mode_l)
        for m in nets.modules().values():
            m.eval()
        forward = _degan_forward(nets)
    # evaluation (rank 0) and outputs
    result_metrics: dict[str, Any] = {}
    if dinfo.main:
        geometry = fit_geometry(info, split, cfg.geometry_c) if cfg.geometry_weight > 0 else None
        pred = predict(forward, info, split, cfg, dev, geometry=geometry)
        result_metrics = classification_metrics(pred["y_true"], pred["y_pred"], info.n_classes, info.label_names)
        heads = head_accuracies(pred)
        if heads:
            result_metrics["head_accuracy"] = heads
        seconds = time.perf_counter() - t_start + (saved.get("seconds", 0.0) if saved else 0.0)
        result_metrics.update(fold=fold, seconds=seconds, n_train=int(len(split.train)),
                              n_test_faces=int(len(pred["face"])), n_identities=split.n_identities,
                              dropped_train_samples=split.dropped, test_views=cfg.test_views)
        final_models = {"baseline": model} if cfg.model == "baseline" else (nets.modules() if nets else {})
        payload = {"stage": "done", "epoch": 0, "models": _state_dicts(final_models), "optimizers": {},
                   "config": cfg.to_dict(), "meta": _meta(ctx, cfg.model), "history": history,
                   "metrics": result_metrics, "seconds": seconds,
                   "geometry": geometry.to_state() if geometry is not None else None}
        save_checkpoint(ckpt, payload)
        _write_fold_outputs(fold_dir, history, result_metrics, info, nets, split, cfg, dev)
        write_predictions(fold_dir / "predictions.csv", pred, info)
    dist_.barrier()
    return FoldResult(fold, result_metrics, time.perf_counter() - t_start, history)


def _write_fold_outputs(fold_dir: Path, history: list[dict[str, Any]], metrics: dict[str, Any], info: FileInfo,
                        nets: DeganNets | None, split: FoldSplit, cfg: DeganConfig, dev: torch.device) -> None:
    from ..plots import plot_confusion, plot_curves
    fold_dir.mkdir(parents=True, exist_ok=True)
    write_json(fold_dir / "metrics.json", metrics)
    write_json(fold_dir / "history.json", history)
    plot_curves(history, fold_dir / "curves.png", title=f"fold {split.fold}")
    plot_confusion(np.array(metrics["confusion"]), info.label_names, fold_dir / "confusion.png",
                   title=f"fold {split.fold}: {metrics['accuracy']:.2f}%")
    if nets is not None:
        from ..synthesize import write_fold_grid
        write_fold_grid(nets.G, info, split, cfg, dev, fold_dir / "synthesis.png")


def load_fold_model(state: dict[str, Any], device: torch.device) -> Callable[[torch.Tensor], Any]:
    """The prediction function of a finished fold checkpoint (eval mode)."""
    cfg = DeganConfig.from_dict(state["config"])
    meta = state["meta"]
    n_classes = len(meta["label_names"])
    try:
        if meta["model"] == "baseline":
            model = build_baseline(cfg, meta["channels"], n_classes)
            model.load_state_dict(state["models"]["baseline"])
            model.to(device).eval()
            return model
        nets = build_degan(cfg, meta["channels"], n_classes, meta["n_identities"])
        for k, m in nets.modules().items():
            m.load_state_dict(state["models"][k])
            m.to(device).eval()
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(meta.get("data", "checkpoint"), f"weights do not match the configuration: {exc}") \
            from None
    return _degan_forward(nets)


def load_stage1(run_dir: str | os.PathLike, fold: int, cfg: DeganConfig) -> dict[str, Any]:
    """The checkpoint of ``run_dir/fold_XX`` if its stage 1 is finished and was trained with
    ``cfg``'s stage-1 configuration; raises :class:`RunDirError` / :class:`CheckpointError` otherwise."""
    if cfg.model != "degan":
        raise RunDirError(run_dir, "--from-stage1 needs --model degan")
    ck = Path(run_dir) / f"fold_{fold:02d}" / "checkpoint.pt"
    if not ck.is_file():
        raise RunDirError(run_dir, f"--from-stage1: no checkpoint for fold {fold} ({ck.name} in fold_{fold:02d})")
    st = load_checkpoint(ck, "cpu")
    if st.get("stage") not in ("local", "done") or st.get("meta", {}).get("model") != "degan":
        raise CheckpointError(ck, f"stage 1 is not finished (stage {st.get('stage')!r}, "
                                  f"model {st.get('meta', {}).get('model')!r})")
    if int(st["meta"].get("fold", -2)) != fold:
        raise CheckpointError(ck, f"belongs to fold {st['meta'].get('fold')}, not {fold}")
    try:
        their_cfg = DeganConfig.from_dict(st["config"])
    except (ValueError, TypeError) as exc:
        raise CheckpointError(ck, f"unreadable config: {exc}") from None
    if their_cfg.encoder_lr_scale > 0:
        raise CheckpointError(ck, f"its stage 2 trained G_en (encoder_lr_scale={their_cfg.encoder_lr_scale}), so "
                                  "the checkpoint no longer holds the stage-1 encoder; use a run with a frozen G_en")
    theirs = their_cfg.stage1_fields()
    want = cfg.stage1_fields()
    diff = sorted(k for k in want if theirs.get(k) != want[k])
    if diff:
        raise CheckpointError(ck, f"stage 1 was trained with another configuration (differs in: {', '.join(diff)})")
    return st
