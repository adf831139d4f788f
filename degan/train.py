"""Training loops (stage 1: the GAN, stage 2: the local CNNs, the CNN baseline) and the CV driver.

One fold, ``model="degan"``::

    stage "gan"    G (= G_en + G_de) and D trained adversarially (Eq. 1 and 2)
    stage "local"  G_en frozen (eval mode, no gradients); local CNNs + fused classifier (L_total)
                   (``encoder_lr_scale > 0``: G_en trained too, at lr x that scale)
    "done"         test faces scored with the fused classifier

``model="baseline"``: stage "baseline" trains the encoder + a linear classifier.

A fold's state lives in ``<run>/fold_XX/checkpoint.pt``, rewritten atomically
after every epoch; ``resume=True`` continues from it. The random state of each
epoch is derived from (seed, fold, stage, epoch), so a resumed run repeats the
uninterrupted one exactly (on CPU; CUDA kernels may not be bit-exact).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from . import distributed as dist_
from .checkpoint import load_checkpoint, save_checkpoint
from .config import ConfigError, DeganConfig
from .data import (BatchTransform, FacekitDataset, FileInfo, FoldSplit, canvas_patch_size, collate, make_split,
                   read_file_info, set_cache_jobs)
from .errors import CheckpointError, NonFiniteLossError, RunDirError
from ._jsonio import write_json
from .evaluate import classification_metrics, head_accuracies, predict, summarize_run, write_predictions
from .losses import discriminator_loss, generator_loss, real_fake_accuracy, stage2_loss
from .models import DeganNets, build_baseline, build_degan, init_weights

__all__ = ["run_cv", "train_fold", "gan_step", "classify_step", "mixup_batch", "pretrain_gan", "load_fold_model",
           "load_stage1", "FoldResult", "Interrupted"]


#: a supervised loss: (network output, labels (B,) int64) -> (scalar loss, its terms as floats)
LossFn = Callable[[Any, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]


class Interrupted(Exception):
    """Raised by the test hook ``stop_after`` to simulate a killed run (after a checkpoint)."""


@dataclass
class FoldResult:
    fold: int
    metrics: dict[str, Any]
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------
# helpers
def _epoch_seed(seed: int, fold: int, stage: str, epoch: int) -> int:
    return zlib.crc32(f"{seed}/{fold}/{stage}/{epoch}".encode()) & 0x7FFFFFFF


def _autocast(cfg: DeganConfig, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    if cfg.amp == "auto" and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def _needs_scaler(cfg: DeganConfig, device: torch.device) -> bool:
    return cfg.amp == "auto" and device.type == "cuda" and not torch.cuda.is_bf16_supported()


def _adam(params: Any, cfg: DeganConfig) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay)


def _lr_at(cfg: DeganConfig, step: int, total: int, base: float | None = None) -> float:
    lr = cfg.lr if base is None else base
    if cfg.lr_schedule == "cosine" and total > 0:
        return lr * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    return lr


def _set_lr(opts: Sequence[torch.optim.Optimizer], lr: float) -> None:
    for opt in opts:
        for g in opt.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)


def _recorded_fields(config: dict[str, Any], where: Path) -> dict[str, Any]:
    """:meth:`DeganConfig.result_fields` of a recorded configuration; fields added to
    :class:`DeganConfig` after it was written take their defaults (which reproduce the old
    behaviour), so a run started by an older version can be resumed."""
    try:
        return DeganConfig.from_dict(config).result_fields()
    except (ValueError, TypeError) as exc:
        raise CheckpointError(where, f"unreadable config: {exc}") from None


def _check_finite(stage: str, epoch: int, step: int, terms: dict[str, float], ckpt: Path) -> None:
    if not all(math.isfinite(v) for v in terms.values()):
        raise NonFiniteLossError(stage, epoch, step, terms, str(ckpt) if ckpt.exists() else None)


def _compiled(model: nn.Module, cfg: DeganConfig) -> nn.Module:
    """``torch.compile(model, dynamic=False)`` with ``cfg.compile``, else ``model``. Used for the training
    forward passes only (checkpoints, evaluation and D's frozen copy in the G steps use the plain modules)."""
    if not cfg.compile:
        return model
    return torch.compile(model, dynamic=False)  # type: ignore[return-value]


def _prepare(model: nn.Module, cfg: DeganConfig, device: torch.device) -> nn.Module:
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


class _Meter:
    """Running means of named floats."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.n = 0

    def add(self, terms: dict[str, float]) -> None:
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.n += 1

    def means(self) -> dict[str, float]:
        return {k: v / max(1, self.n) for k, v in self.sums.items()}


@dataclass
class _Ctx:
    """Everything one fold's loops share."""

    cfg: DeganConfig
    info: FileInfo
    split: FoldSplit
    dinfo: dist_.DistInfo
    fold_dir: Path | None            # None: do not write (non-zero ranks, pretraining scratch)
    ckpt: Path
    progress: bool = True
    stop_after: int | None = None    # test hook: raise Interrupted after this many epochs in this process
    bar_position: int | None = None  # progress-bar row (a --jobs worker's slot)
    epochs_run: int = 0

    @property
    def device(self) -> torch.device:
        return self.dinfo.device

    def loader(self, indices: np.ndarray, stage: str, epoch: int) -> tuple[DataLoader, torch.Generator]:
        """A shuffled training loader for ``epoch`` and the CPU generator for its random draws."""
        ds = FacekitDataset(self.info, indices, self.split.identity, self.cfg.cache)
        seed = _epoch_seed(self.cfg.seed, self.split.fold, stage, 0)
        sampler = DistributedSampler(ds, num_replicas=self.dinfo.world_size, rank=self.dinfo.rank, shuffle=True,
                                     seed=seed, drop_last=self.dinfo.distributed)
        sampler.set_epoch(epoch)
        bs = max(1, self.cfg.batch_size // self.dinfo.world_size)
        drop = len(sampler) > bs
        loader = DataLoader(ds, batch_size=bs, sampler=sampler, drop_last=drop, collate_fn=collate,
                            num_workers=self.cfg.num_workers, pin_memory=self.device.type == "cuda",
                            persistent_workers=False)
        es = _epoch_seed(self.cfg.seed, self.split.fold, stage, epoch) + 7919 * self.dinfo.rank
        torch.manual_seed(es)
        return loader, torch.Generator().manual_seed(es)

    def bar(self, loader: DataLoader, desc: str) -> Any:
        from tqdm.auto import tqdm
        n = len(loader.sampler) if loader.sampler is not None else None   # type: ignore[arg-type]
        return tqdm(total=n, desc=desc, unit="img", leave=False, mininterval=1.0, position=self.bar_position,
                    disable=not (self.progress and self.dinfo.main), dynamic_ncols=True)

    def input(self, batch: dict[str, torch.Tensor], tf: BatchTransform, gen: torch.Generator) -> torch.Tensor:
        x = tf(batch["image"].to(self.device, non_blocking=True), generator=gen)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def save(self, payload: dict[str, Any]) -> None:
        if self.fold_dir is not None and self.dinfo.main:
            save_checkpoint(self.ckpt, payload)
        dist_.barrier()

    def tick(self) -> None:
        self.epochs_run += 1
        if self.stop_after is not None and self.epochs_run >= self.stop_after:
            raise Interrupted(f"stopped after {self.epochs_run} epoch(s) (test hook)")


def _meta(ctx: _Ctx, model: str) -> dict[str, Any]:
    return {"fold": ctx.split.fold, "k": ctx.split.k, "model": model, "channels": ctx.info.channels,
            "label_names": ctx.info.label_names, "identity_names": ctx.split.identity_names,
            "n_identities": ctx.split.n_identities, "data": str(ctx.info.path), "dataset": ctx.info.dataset,
            "face_box": list(ctx.info.face_box),
            "patch_size": ctx.info.patch_size if ctx.info.stored_augmentation else canvas_patch_size(ctx.info, ctx.cfg),
            "image_shape": list(ctx.info.image_shape), "augment": ctx.info.augment}


def _state_dicts(mods: dict[str, nn.Module]) -> dict[str, Any]:
    return {k: dist_.unwrap(m).state_dict() for k, m in mods.items()}


# ------------------------------------------------------------------------------------------------
# stage 1: the GAN
def _sample_identity(cfg: DeganConfig, y_id: torch.Tensor, n_ids: int, gen: torch.Generator) -> torch.Tensor:
    if cfg.identity_code == "own":
        return y_id.clone()
    return torch.randint(0, n_ids, (y_id.shape[0],), generator=gen).to(y_id.device)


def _like(t: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``t`` with ``ref``'s dtype and strides (a copy only when they differ), so that D always sees
    one kind of input: with channels_last, G's 1-channel output can carry other (equivalent) strides
    than the input batch, and under autocast it is bf16 while the input is fp32; a compiled D would
    recompile for each, and after a stride change treat the strides as dynamic. The fp32 copy of a
    bf16/fp16 output is exact, and autocast casts it back inside D's first convolution."""
    if t.dtype != ref.dtype:
        t = t.to(ref.dtype)
    if t.shape != ref.shape or t.stride() == ref.stride():
        return t
    return torch.empty_strided(ref.shape, ref.stride(), dtype=t.dtype, device=t.device).copy_(t)


def gan_step(G: nn.Module, D: nn.Module, D_plain: nn.Module, opts: dict[str, torch.optim.Optimizer],
             scaler: torch.amp.GradScaler, cfg: DeganConfig, dev: torch.device, x: torch.Tensor, y_e: torch.Tensor,
             y_id: torch.Tensor, ident: torch.Tensor, z: torch.Tensor, state: dict[str, Any]) -> dict[str, float]:
    """One stage-1 iteration: a D update (Eq. 1), then one or ``cfg.g_steps`` G updates (Eq. 2).

    With ``cfg.recon_weight > 0`` (not in the paper) the first ``recon_fraction`` of the
    batch gets its own identity as I and G's loss adds ``recon_weight * L1(G(x, I, z), x)`` on them.
    With ``cfg.expr_weight > 0`` (not in the paper) G's loss adds ``expr_weight`` times the
    cross-entropy of G's expression head on f(x) against ``y_e``.

    x (B, C, S, S) float; y_e, y_id, ident (B,) int64; z (B, noise_dim). ``D_plain``
    is D without its DDP wrapper (used, frozen, in the G steps). ``state["d_acc_ema"]``
    is updated. Returns the loss terms, D's real/fake accuracy and the G steps taken.
    """
    n_own = int(round(cfg.recon_fraction * x.shape[0])) if cfg.recon_weight > 0 else 0
    if n_own:
        ident = ident.clone()
        ident[:n_own] = y_id[:n_own]                  # these must reconstruct their input
    use_expr = cfg.expr_weight > 0

    def generate() -> tuple[torch.Tensor, torch.Tensor | None]:
        out = G(x, ident, z, expression=use_expr)
        fake, logits = out if use_expr else (out, None)
        return _like(fake, x), logits

    with _autocast(cfg, dev):
        fake, expr_logits = generate()
        e_real, i_real = D(x)
        e_fake, _ = D(fake.detach())
        loss_d, terms = discriminator_loss(e_real, i_real, e_fake, y_e, y_id)
    opts["D"].zero_grad(set_to_none=True)
    scaler.scale(loss_d).backward()
    scaler.step(opts["D"])
    scaler.update()
    acc = real_fake_accuracy(e_real, e_fake)
    state["d_acc_ema"] = cfg.d_acc_momentum * state.get("d_acc_ema", 0.5) + (1 - cfg.d_acc_momentum) * acc
    n_g = cfg.g_steps if state["d_acc_ema"] > cfg.d_strong_threshold else 1
    D_plain.requires_grad_(False)
    try:
        for k in range(n_g):
            with _autocast(cfg, dev):
                if k > 0:
                    fake, expr_logits = generate()
                e_f, i_f = D_plain(fake)
                loss_g, gterms = generator_loss(e_f, i_f, y_e, ident)
                if expr_logits is not None:
                    cls = F.cross_entropy(expr_logits.float(), y_e)
                    loss_g = loss_g + cfg.expr_weight * cls
                    gterms["g_cls"] = cls.item()
                if n_own:
                    rec = (fake[:n_own].float() - x[:n_own].float()).abs().mean()
                    loss_g = loss_g + cfg.recon_weight * rec
                    gterms["g_recon"] = rec.item()
            opts["G"].zero_grad(set_to_none=True)
            scaler.scale(loss_g).backward()
            scaler.step(opts["G"])
            scaler.update()
    finally:
        D_plain.requires_grad_(True)
    terms.update(gterms, d_acc=acc, g_steps=float(n_g))
    return terms


def mixup_batch(x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn, lam: float,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, LossFn]:
    """Mixup (Zhang et al. 2018, ``cfg.mixup``; not in the paper): ``lam * x + (1 - lam) * x[perm]``.

    x (B, C, S, S) float, y (B,) int64, ``lam`` in [0, 1] (drawn from Beta(a, a) by the caller).
    Returns the mixed batch, the label of the larger share (for the training accuracy) and
    a loss ``lam * loss_fn(out, y) + (1 - lam) * loss_fn(out, y[perm])`` with its terms mixed
    alike; the returned loss ignores the label it is given.
    """
    perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
    y_a, y_b = y, y[perm]
    mixed = x.mul(lam).add_(x[perm], alpha=1.0 - lam)

    def loss(out: Any, _: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        la, ta = loss_fn(out, y_a)
        lb, tb = loss_fn(out, y_b)
        return lam * la + (1.0 - lam) * lb, {k: lam * v + (1.0 - lam) * tb[k] for k, v in ta.items()}
    return mixed, (y_a if lam >= 0.5 else y_b), loss


def classify_step(forward: Callable[[torch.Tensor], Any],
                  loss_fn: LossFn,
                  opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler, cfg: DeganConfig, dev: torch.device,
                  x: torch.Tensor, y: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
    """One supervised update (stage 2 or baseline). Returns (loss terms incl. "loss", final logits (B, N_e))."""
    with _autocast(cfg, dev):
        out = forward(x)
        loss, terms = loss_fn(out, y)
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    terms["loss"] = loss.item()
    return terms, (out[-1] if isinstance(out, (list, tuple)) else out)


def train_gan(ctx: _Ctx, nets: DeganNets, opts: dict[str, torch.optim.Optimizer], history: list[dict[str, Any]],
              state: dict[str, Any], start_epoch: int, epochs: int, stage: str = "gan",
              meta: dict[str, Any] | None = None) -> None:
    """Stage 1 for epochs ``start_epoch..epochs-1``: one D step (Eq. 1) then 1 or ``g_steps`` G steps (Eq. 2).

    G gets ``cfg.g_steps`` updates per D update while the running (EMA) real/fake
    accuracy of D exceeds ``cfg.d_strong_threshold``; otherwise one.
    """
    cfg, dev = ctx.cfg, ctx.device
    G, D = _compiled(dist_.wrap(nets.G, ctx.dinfo), cfg), _compiled(dist_.wrap(nets.D, ctx.dinfo), cfg)
    D_plain = nets.D
    n_ids = nets.G.decoder.n_identities
    tf = BatchTransform(ctx.info, cfg, train=True)
    scaler = torch.amp.GradScaler("cuda", enabled=_needs_scaler(cfg, dev))
    steps_per_epoch = None
    for epoch in range(start_epoch, epochs):
        loader, gen = ctx.loader(ctx.split.train, stage, epoch)
        steps_per_epoch = steps_per_epoch or max(1, len(loader))
        G.train(), D.train()
        meter, t0, n_img = _Meter(), time.perf_counter(), 0
        bar = ctx.bar(loader, f"fold {ctx.split.fold} {stage} {epoch + 1}/{epochs}")
        for i, batch in enumerate(loader):
            _set_lr(opts.values(), _lr_at(cfg, epoch * steps_per_epoch + i, epochs * steps_per_epoch,
                                          cfg.lr_gan or cfg.lr))
            x = ctx.input(batch, tf, gen)
            y_e, y_id = batch["label"].to(dev), batch["identity"].to(dev)
            ident = _sample_identity(cfg, y_id, n_ids, gen)
            z = torch.randn(x.shape[0], cfg.noise_dim, generator=gen).to(dev)
            terms = gan_step(G, D, D_plain, opts, scaler, cfg, dev, x, y_e, y_id, ident, z, state)
            _check_finite(stage, epoch, i, {k: v for k, v in terms.items()}, ctx.ckpt)
            meter.add(terms)
            n_img += x.shape[0]
            bar.update(x.shape[0])
            if i % cfg.log_every == 0:
                m = meter.means()
                bar.set_postfix(D=f"{m['d_expr'] + m['d_id'] + m['d_fake']:.3f}",
                                G=f"{m['g_expr'] + m['g_id']:.3f}", acc=f"{state['d_acc_ema']:.2f}", refresh=False)
        bar.close()
        dt = time.perf_counter() - t0
        history.append({"stage": stage, "epoch": epoch + 1, **meter.means(), "seconds": dt,
                        "img_per_s": n_img * ctx.dinfo.world_size / max(dt, 1e-9),
                        "lr": opts["G"].param_groups[0]["lr"], "d_acc_ema": state["d_acc_ema"]})
        ctx.save({"stage": stage, "epoch": epoch + 1, "models": _state_dicts(nets.modules()),
                  "optimizers": {k: o.state_dict() for k, o in opts.items()}, "state": dict(state),
                  "config": cfg.to_dict(), "meta": meta or _meta(ctx, "degan"), "history": history})
        ctx.tick()


# ------------------------------------------------------------------------------------------------
# stage 2 and the baseline: supervised classification
def _classify_epochs(ctx: _Ctx, stage: str, forward: Callable[[torch.Tensor], Any],
                     loss_fn: LossFn,
                     opt: torch.optim.Optimizer, history: list[dict[str, Any]], start_epoch: int, epochs: int,
                     payload: Callable[[], dict[str, Any]], evaluate: Callable[[], float] | None,
                     train_mode: Callable[[], None]) -> None:
    """Supervised epochs ``start_epoch..epochs-1`` (stage 2 or the baseline); checkpoint after each."""
    cfg, dev = ctx.cfg, ctx.device
    tf = BatchTransform(ctx.info, cfg, train=True)
    scaler = torch.amp.GradScaler("cuda", enabled=_needs_scaler(cfg, dev))
    steps_per_epoch = None
    for epoch in range(start_epoch, epochs):
        loader, gen = ctx.loader(ctx.split.train, stage, epoch)
        mix_rng = np.random.default_rng(gen.initial_seed())      # mixup's lambdas, repeatable per epoch
        steps_per_epoch = steps_per_epoch or max(1, len(loader))
        train_mode()
        meter, t0, n_img, correct = _Meter(), time.perf_counter(), 0, 0
        bar = ctx.bar(loader, f"fold {ctx.split.fold} {stage} {epoch + 1}/{epochs}")
        for i, batch in enumerate(loader):
            _set_lr([opt], _lr_at(cfg, epoch * steps_per_epoch + i, epochs * steps_per_epoch))
            x = ctx.input(batch, tf, gen)
            y = batch["label"].to(dev)
            step_loss = loss_fn
            if cfg.mixup > 0:
                x, y, step_loss = mixup_batch(x, y, loss_fn, float(mix_rng.beta(cfg.mixup, cfg.mixup)), gen)
            terms, final = classify_step(forward, step_loss, opt, scaler, cfg, dev, x, y)
            _check_finite(stage, epoch, i, terms, ctx.ckpt)
            correct += int((final.argmax(1) == y).sum())
            meter.add(terms)
            n_img += x.shape[0]
            bar.update(x.shape[0])
            if i % cfg.log_every == 0:
                bar.set_postfix(loss=f"{meter.means()['loss']:.3f}", acc=f"{100 * correct / n_img:.1f}",
                                refresh=False)
        bar.close()
        dt = time.perf_counter() - t0
        rec = {"stage": stage, "epoch": epoch + 1, **meter.means(), "train_acc": 100 * correct / max(1, n_img),
               "seconds": dt, "img_per_s": n_img * ctx.dinfo.world_size / max(dt, 1e-9),
               "lr": opt.param_groups[0]["lr"]}
        if evaluate is not None and ctx.dinfo.main:
            rec["test_acc"] = evaluate()       # monitoring only: never used to pick a model
        history.append(rec)
        ctx.save({**payload(), "stage": stage, "epoch": epoch + 1, "history": history})
        ctx.tick()


def _with_synthesised(G: nn.Module, x: torch.Tensor, fraction: float, n_ids: int, noise_dim: int) -> torch.Tensor:
    """``x`` (B, C, S, S) with its first ``round(fraction * B)`` rows replaced by G(x, I, z): the
    same expressions on uniformly drawn training identities (``synth_fraction``; labels unchanged).
    Draws from torch's global RNG, which the epoch loader seeds. No gradients."""
    n = int(round(fraction * x.shape[0]))
    if n == 0:
        return x
    ident = torch.randint(0, n_ids, (n,)).to(x.device)
    z = torch.randn(n, noise_dim).to(x.device)
    fake = _like(G(x[:n], ident, z), x)
    return torch.cat([fake, x[n:]]) if n < x.shape[0] else fake


class _EncoderAndLocal(nn.Module):
    """G_en followed by the local CNNs and the fused classifier, one module (so that DDP and
    ``torch.compile`` see every parameter stage 2 trains when ``encoder_lr_scale > 0``)."""

    def __init__(self, encoder: nn.Module, local: nn.Module) -> None:
        super().__init__()
        self.encoder, self.local = encoder, local

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f, taps = self.encoder.forward_taps(x)
        return self.local(f, taps)


@contextlib.contextmanager
def _eval_mode(module: nn.Module) -> Any:
    was = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was)


def _degan_forward(nets: DeganNets) -> Callable[[torch.Tensor], list[torch.Tensor]]:
    enc, local = nets.G.encoder, nets.local

    def forward(x: torch.Tensor) -> list[torch.Tensor]:
        with torch.no_grad():
            f, taps = enc.forward_taps(x)
        return local(f, taps)
    return forward


def _eval_fn(ctx: _Ctx, forward: Callable[[torch.Tensor], Any], mods: Sequence[nn.Module]) -> Callable[[], float]:
    def run() -> float:
        modes = [m.training for m in mods]
        for m in mods:
            m.eval()
        pred = predict(forward, ctx.info, ctx.split, ctx.cfg, ctx.device)
        for m, t in zip(mods, modes):
            m.train(t)
        return float(100 * (pred["y_true"] == pred["y_pred"]).mean())
    return run


# ------------------------------------------------------------------------------------------------
# pre-training and identity-head re-initialisation
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


# ------------------------------------------------------------------------------------------------
# one fold
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
        pred = predict(forward, info, split, cfg, dev)
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
                   "metrics": result_metrics, "seconds": seconds}
        save_checkpoint(ckpt, payload)
        _write_fold_outputs(fold_dir, history, result_metrics, info, nets, split, cfg, dev)
        write_predictions(fold_dir / "predictions.csv", pred, info)
    dist_.barrier()
    return FoldResult(fold, result_metrics, time.perf_counter() - t_start, history)


def _write_fold_outputs(fold_dir: Path, history: list[dict[str, Any]], metrics: dict[str, Any], info: FileInfo,
                        nets: DeganNets | None, split: FoldSplit, cfg: DeganConfig, dev: torch.device) -> None:
    from .plots import plot_confusion, plot_curves
    fold_dir.mkdir(parents=True, exist_ok=True)
    write_json(fold_dir / "metrics.json", metrics)
    write_json(fold_dir / "history.json", history)
    plot_curves(history, fold_dir / "curves.png", title=f"fold {split.fold}")
    plot_confusion(np.array(metrics["confusion"]), info.label_names, fold_dir / "confusion.png",
                   title=f"fold {split.fold}: {metrics['accuracy']:.2f}%")
    if nets is not None:
        from .synthesize import write_fold_grid
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


# ------------------------------------------------------------------------------------------------
# CV driver
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
        from ._fold_pool import run_in_processes
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


def _write_run_metrics(run_dir: Path, fold_metrics: dict[int, dict[str, Any]], info: FileInfo, cfg: DeganConfig,
                       wall: float) -> dict[str, Any]:
    from .plots import plot_confusion
    agg = summarize_run(dict(sorted(fold_metrics.items())), info.label_names, cfg, wall_seconds_this_invocation=wall)
    write_json(run_dir / "metrics.json", agg)
    plot_confusion(np.array(agg["confusion"]), info.label_names, run_dir / "confusion.png",
                   title=f"{cfg.model} ({agg['n_folds']} folds): {agg['mean']:.2f} ± {agg['std']:.2f}%")
    return agg
