"""Pre-trained stage-1 weights (another data set) copied into a fold's networks: everything tied
to the identities re-initialised, expression rows matched by label name."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..config import Architecture
from ._blocks import init_weights
from .nets import DeganNets

__all__ = ["load_pretrained"]


def load_pretrained(nets: DeganNets, pre: dict[str, Any], arch: Architecture,
                    label_names: Sequence[str] | None = None) -> None:
    """Copy pre-trained G and D weights (``pre["models"]``); re-initialise everything tied to the identities.

    Re-initialised: D's identity head, the identity columns of G_de's input FC
    layer, and any other layer whose shape differs. D's expression head D^e is
    matched by label name: a target class the pre-training file also has (same
    name) takes that class's row, the others and the rows of a file without
    label names start from the initialisation; the "fake" output is copied.
    Two label sets of the same size in another order (JAFFE and CK+ both have
    7) are therefore not mixed up.
    """
    models = pre["models"]
    fd = arch.feat_dim
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
                if arch.noise_dim:
                    w[:, -arch.noise_dim:] = val[:, -arch.noise_dim:]
                own[key] = w
                continue
            if val.shape == own[key].shape:
                own[key] = val
        module.load_state_dict(own)
    init_weights(nets.D.head_id, arch.init_std)


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
