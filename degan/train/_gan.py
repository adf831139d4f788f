"""Stage 1: the GAN. One G+D iteration (Eq. 1 and 2) and its epochs.
"""
from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .. import distributed as dist_
from ..config import DeganConfig
from ..data import BatchTransform
from ..losses import discriminator_loss, generator_loss, real_fake_accuracy
from ..models import DeganNets
from ._loop import (_autocast, _check_finite, _compiled, _Ctx, _like, _lr_at, _Meter, _meta, _needs_scaler,
                    _set_lr, _state_dicts)


def _sample_identity(cfg: DeganConfig, y_id: torch.Tensor, n_ids: int, gen: torch.Generator) -> torch.Tensor:
    if cfg.identity_code == "own":
        return y_id.clone()
    return torch.randint(0, n_ids, (y_id.shape[0],), generator=gen).to(y_id.device)


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
