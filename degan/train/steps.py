"""One training update each: the GAN step of stage 1 (Eq. 1 and 2) and the supervised step of
stage 2 and the baseline; and what they share (Adam, the learning-rate schedule, autocast).

Both steps are objects built once per stage from the parts they update, and called per batch::

    step = GanStep(G, D, opt_G, opt_D, cfg.stage1, Precision(cfg.train.amp, device))
    terms = step(x, y_expr, y_id, identity, z)

    step = ClassifyStep(forward, loss_fn, optimiser, Precision(cfg.train.amp, device))
    terms, logits = step(x, y)
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..config import Stage1, Training
from ..losses import discriminator_loss, generator_loss, real_fake_accuracy

__all__ = ["Precision", "GanStep", "ClassifyStep", "LossFn", "adam", "lr_at", "set_lr", "mixup_batch",
           "with_synthesised", "like", "eval_mode"]

#: a supervised loss: (network output, labels (B,) int64) -> (scalar loss, its terms as floats)
LossFn = Callable[[Any, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]


class Precision:
    """Mixed precision on a device: bf16 (or fp16 with loss scaling) autocast on CUDA when ``amp`` is
    "auto"; full precision otherwise."""

    def __init__(self, amp: str, device: torch.device) -> None:
        self.amp, self.device = amp, device

    @property
    def enabled(self) -> bool:
        return self.amp == "auto" and self.device.type == "cuda"

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.enabled:
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        return contextlib.nullcontext()

    def scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler, active only for fp16 autocast."""
        return torch.amp.GradScaler("cuda", enabled=self.enabled and not torch.cuda.is_bf16_supported())


def adam(params: Any, lr: float, train: Training) -> torch.optim.Adam:
    """Adam with the run's betas and weight decay (:class:`~degan.config.Training`)."""
    return torch.optim.Adam(params, lr=lr, betas=(train.beta1, train.beta2), weight_decay=train.weight_decay)


def lr_at(schedule: str, base: float, step: int, total: int) -> float:
    """Learning rate at ``step`` of ``total``: ``base`` ("constant") or cosine-annealed to 0 ("cosine")."""
    if schedule == "cosine" and total > 0:
        return base * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    return base


def set_lr(opts: Sequence[torch.optim.Optimizer], lr: float) -> None:
    """Set every parameter group's rate to ``lr`` times its ``lr_scale`` (default 1)."""
    for opt in opts:
        for g in opt.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Any:
    """``module`` in eval mode inside the block; its previous mode afterwards."""
    was = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was)


def like(t: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
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


class GanStep:
    """One stage-1 iteration: a D update (Eq. 1), then one or ``settings.g_steps`` G updates (Eq. 2).

    G gets ``g_steps`` updates per D update while the running (EMA, momentum
    ``d_acc_momentum``) real/fake accuracy of D, :attr:`d_acc_ema`, exceeds
    ``d_strong_threshold``; otherwise one. With ``recon_weight > 0`` (not in the paper) the
    first ``recon_fraction`` of the batch gets its own identity as I and G's loss adds
    ``recon_weight * L1(G(x, I, z), x)`` on them. With ``expr_weight > 0`` (not in the paper)
    G's loss adds ``expr_weight`` times the cross-entropy of G's expression head on f(x).

    ``G``, ``D``: the modules the updates run through (possibly DDP-wrapped or compiled);
    ``D_plain``: D itself (frozen, used in the G steps; default ``D``).
    """

    def __init__(self, G: nn.Module, D: nn.Module, opt_G: torch.optim.Optimizer, opt_D: torch.optim.Optimizer,
                 settings: Stage1, precision: Precision, *, D_plain: nn.Module | None = None,
                 d_acc_ema: float | None = None) -> None:
        self.G, self.D, self.D_plain = G, D, D_plain if D_plain is not None else D
        self.opt_G, self.opt_D = opt_G, opt_D
        self.s, self.precision = settings, precision
        self.scaler = precision.scaler()
        self.d_acc_ema = d_acc_ema

    def __call__(self, x: torch.Tensor, y_expr: torch.Tensor, y_id: torch.Tensor, identity: torch.Tensor,
                 z: torch.Tensor) -> dict[str, float]:
        """x (B, C, S, S) float; y_expr, y_id, identity (B,) int64 (identity: the target I); z (B, noise_dim).
        Returns the loss terms, D's real/fake accuracy and the G steps taken."""
        s, scaler = self.s, self.scaler
        n_own = int(round(s.recon_fraction * x.shape[0])) if s.recon_weight > 0 else 0
        if n_own:
            identity = identity.clone()
            identity[:n_own] = y_id[:n_own]                  # these must reconstruct their input
        use_expr = s.expr_weight > 0

        def generate() -> tuple[torch.Tensor, torch.Tensor | None]:
            out = self.G(x, identity, z, expression=use_expr)
            fake, logits = out if use_expr else (out, None)
            return like(fake, x), logits

        with self.precision.autocast():
            fake, expr_logits = generate()
            e_real, i_real = self.D(x)
            e_fake, _ = self.D(fake.detach())
            loss_d, terms = discriminator_loss(e_real, i_real, e_fake, y_expr, y_id)
        self.opt_D.zero_grad(set_to_none=True)
        scaler.scale(loss_d).backward()
        scaler.step(self.opt_D)
        scaler.update()
        acc = real_fake_accuracy(e_real, e_fake)
        prev = 0.5 if self.d_acc_ema is None else self.d_acc_ema
        self.d_acc_ema = s.d_acc_momentum * prev + (1 - s.d_acc_momentum) * acc
        n_g = s.g_steps if self.d_acc_ema > s.d_strong_threshold else 1
        self.D_plain.requires_grad_(False)
        try:
            for k in range(n_g):
                with self.precision.autocast():
                    if k > 0:
                        fake, expr_logits = generate()
                    e_f, i_f = self.D_plain(fake)
                    loss_g, gterms = generator_loss(e_f, i_f, y_expr, identity)
                    if expr_logits is not None:
                        cls = F.cross_entropy(expr_logits.float(), y_expr)
                        loss_g = loss_g + s.expr_weight * cls
                        gterms["g_cls"] = cls.item()
                    if n_own:
                        rec = (fake[:n_own].float() - x[:n_own].float()).abs().mean()
                        loss_g = loss_g + s.recon_weight * rec
                        gterms["g_recon"] = rec.item()
                self.opt_G.zero_grad(set_to_none=True)
                scaler.scale(loss_g).backward()
                scaler.step(self.opt_G)
                scaler.update()
        finally:
            self.D_plain.requires_grad_(True)
        terms.update(gterms, d_acc=acc, g_steps=float(n_g))
        return terms


class ClassifyStep:
    """One supervised update (stage 2 or the baseline): ``loss_fn(forward(x), y)``, then a step of
    ``optimiser``."""

    def __init__(self, forward: Callable[[torch.Tensor], Any], loss_fn: LossFn, optimiser: torch.optim.Optimizer,
                 precision: Precision) -> None:
        self.forward, self.loss_fn, self.opt, self.precision = forward, loss_fn, optimiser, precision
        self.scaler = precision.scaler()

    def __call__(self, x: torch.Tensor, y: torch.Tensor,
                 loss_fn: LossFn | None = None) -> tuple[dict[str, float], torch.Tensor]:
        """x (B, C, S, S), y (B,) int64; ``loss_fn`` replaces the step's loss for this batch (mixup).
        Returns (loss terms incl. "loss", final logits (B, N_e))."""
        with self.precision.autocast():
            out = self.forward(x)
            loss, terms = (loss_fn or self.loss_fn)(out, y)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        terms["loss"] = loss.item()
        return terms, (out[-1] if isinstance(out, (list, tuple)) else out)


def mixup_batch(x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn, lam: float,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, LossFn]:
    """Mixup (Zhang et al. 2018; not in the paper): ``lam * x + (1 - lam) * x[perm]``.

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


def with_synthesised(G: nn.Module, x: torch.Tensor, fraction: float, n_ids: int, noise_dim: int) -> torch.Tensor:
    """``x`` (B, C, S, S) with its first ``round(fraction * B)`` rows replaced by G(x, I, z): the
    same expressions on uniformly drawn training identities (``stage2.synth_fraction``; labels
    unchanged). Draws from torch's global RNG, which the epoch loader seeds. No gradients."""
    n = int(round(fraction * x.shape[0]))
    if n == 0:
        return x
    ident = torch.randint(0, n_ids, (n,)).to(x.device)
    z = torch.randn(n, noise_dim).to(x.device)
    fake = like(G(x[:n], ident, z), x)
    return torch.cat([fake, x[n:]]) if n < x.shape[0] else fake
