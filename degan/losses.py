"""DE-GAN objectives written as cross-entropies (minimised).

Eq. 1 (D maximises ``log D^e_{y_e}(x) + log D^i_{y_id}(x) + log D^e_fake(G(x,I,z))``)
becomes :func:`discriminator_loss`; Eq. 2 (G maximises
``log D^e_{y_e}(G(x,I,z)) + log D^i_I(G(x,I,z))``) becomes :func:`generator_loss`;
stage 2's ``L_total = sum_k w_k L_k`` is :func:`stage2_loss`. Each returns the
total and a dict of its terms (detached floats) for logging.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F

__all__ = ["discriminator_loss", "generator_loss", "stage2_loss", "real_fake_accuracy"]


def discriminator_loss(expr_real: torch.Tensor, id_real: torch.Tensor, expr_fake: torch.Tensor,
                       y_expr: torch.Tensor, y_id: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Negative of Eq. 1, averaged over the batch.

    Args:
        expr_real: (B, N_e + 1) D^e logits on real images; last column = fake.
        id_real: (B, N_i) D^i logits on real images.
        expr_fake: (B', N_e + 1) D^e logits on synthesised images.
        y_expr: (B,) int64 expression labels. y_id: (B,) int64 identity labels.
    """
    fake = torch.full((expr_fake.shape[0],), expr_fake.shape[1] - 1, dtype=torch.long, device=expr_fake.device)
    l_expr = F.cross_entropy(expr_real.float(), y_expr)
    l_id = F.cross_entropy(id_real.float(), y_id)
    l_fake = F.cross_entropy(expr_fake.float(), fake)
    total = l_expr + l_id + l_fake
    return total, {"d_expr": l_expr.item(), "d_id": l_id.item(), "d_fake": l_fake.item()}


def generator_loss(expr_fake: torch.Tensor, id_fake: torch.Tensor, y_expr: torch.Tensor,
                   target_id: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Negative of Eq. 2: the synthesised image must show expression ``y_expr`` on identity ``target_id``.

    Args: expr_fake (B, N_e + 1), id_fake (B, N_i) logits on G(x, I, z); y_expr, target_id (B,) int64.
    """
    l_expr = F.cross_entropy(expr_fake.float(), y_expr)
    l_id = F.cross_entropy(id_fake.float(), target_id)
    return l_expr + l_id, {"g_expr": l_expr.item(), "g_id": l_id.item()}


def stage2_loss(logits: Sequence[torch.Tensor], y: torch.Tensor, weights: Sequence[float],
                label_smoothing: float = 0.0) -> tuple[torch.Tensor, dict[str, float]]:
    """``L_total = w1 L1 + w2 L2 + w3 L3 + w4 L4 + w5 L5`` with L_k the cross-entropy of head k.

    Args: logits: five (B, N_e) tensors [local1..local4, fused]; y (B,) int64; weights: five floats.
    """
    if len(logits) != len(weights):
        raise ValueError(f"{len(logits)} heads but {len(weights)} weights")
    terms = [F.cross_entropy(lg.float(), y, label_smoothing=label_smoothing) for lg in logits]
    total = sum(w * t for w, t in zip(weights, terms))
    assert isinstance(total, torch.Tensor)
    return total, {f"L{k + 1}": t.item() for k, t in enumerate(terms)}


@torch.no_grad()
def real_fake_accuracy(expr_real: torch.Tensor, expr_fake: torch.Tensor) -> float:
    """Fraction of real images D calls real and synthesised images D calls fake (argmax over N_e + 1)."""
    fake_idx = expr_real.shape[1] - 1
    ok_real = (expr_real.argmax(1) != fake_idx).float().sum()
    ok_fake = (expr_fake.argmax(1) == fake_idx).float().sum()
    return float((ok_real + ok_fake) / (expr_real.shape[0] + expr_fake.shape[0]))
