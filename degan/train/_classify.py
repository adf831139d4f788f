"""Supervised training: stage 2 (local CNNs + fused classifier on the frozen G_en) and the CNN
baseline share these epochs and steps.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import DeganConfig
from ..data import BatchTransform
from ..evaluate import predict
from ..models import DeganNets
from ._loop import LossFn, _autocast, _check_finite, _Ctx, _like, _lr_at, _Meter, _needs_scaler, _set_lr


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
