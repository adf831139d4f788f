"""Named presets: each is a table of differences from ``paper`` (the paper's settings, which are
:class:`~degan.config.DeganConfig`'s defaults).

    from degan.presets import get_preset, preset_changes
    cfg = get_preset("cpu")
    preset_changes("cpu")      # {"arch.image_size": (96, 48), ...}: every departure from the paper

A new preset is one call: ``register_preset("mine", {"stage1.epochs": 100}, "what it is for")``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import ConfigError, DeganConfig

__all__ = ["Preset", "PRESETS", "register_preset", "get_preset", "list_presets", "preset_changes"]


@dataclass(frozen=True)
class Preset:
    """A name, what the preset is for, and its differences from ``paper`` (``"section.field"`` -> value)."""

    name: str
    description: str
    changes: Mapping[str, Any] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {}


def register_preset(name: str, changes: Mapping[str, Any], description: str) -> Preset:
    """Register (or replace) preset ``name``; ``changes`` are validated now."""
    DeganConfig().replace(dict(changes))
    preset = Preset(name, description, dict(changes))
    PRESETS[name] = preset
    return preset


def list_presets() -> list[str]:
    return sorted(PRESETS)


def get_preset(name: str) -> DeganConfig:
    """The configuration of preset ``name`` (validated)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(list_presets())}")
    return DeganConfig().replace({**PRESETS[name].changes, "preset": name})


def preset_changes(name: str) -> dict[str, tuple[Any, Any]]:
    """``{"section.field": (paper value, preset value)}`` for every field where preset ``name``
    differs from ``paper``."""
    paper, cfg = get_preset("paper").flat(), get_preset(name).flat()
    return {k: (paper[k], v) for k, v in cfg.items() if k != "preset" and paper[k] != v}


register_preset("paper", {}, "Ali & Hughes: 96x96 input, Adam(1e-4, beta1 0.5), batch 150, weights "
                             "N(0, 0.02), 300 stage-1 and 50 stage-2 epochs, each epoch a pass over every "
                             "training face's 110 views (5 crops x 11 angles x mirror), stage 1 pre-trained on "
                             "another file (--pretrain FILE, BU-4DFE in the paper; --no-pretrain to go without, "
                             "recorded as a deviation).")

register_preset("cpu", {
    "arch.image_size": 48, "arch.width": 0.25,
    "train.batch_size": 64, "train.lr_schedule": "cosine", "train.channels_last": True,
    "stage1.epochs": 40, "stage1.lr": 2e-4, "stage1.recon_weight": 10.0,
    "stage1.expr_weight": 10.0,
    "stage2.epochs": 60, "stage2.lr": 1e-3, "stage2.local_width": 0.5, "stage2.local_hidden": 128,
    "stage2.dropout": 0.3, "stage2.label_smoothing": 0.1,
    "baseline.epochs": 60, "baseline.lr": 1e-3, "baseline.dropout": 0.3, "baseline.label_smoothing": 0.1,
    "stage1.pretrain": False,
    "data.augment": "auto", "data.scale_jitter": 0.1,
    "eval.geometry_weight": 0.5,
}, "Sized for a 10-fold CK+48 cross-validation of DE-GAN within an hour on 2 CPU cores (degan-train "
   "--jobs 2 --threads 1). Not the paper: 48-px input and quarter width, half-width local CNNs, fewer "
   "epochs of one random view per face, larger learning rates on a cosine schedule, batch 64, dropout and "
   "label smoothing on the classifiers, random zoom, an L1 reconstruction term and an expression head in "
   "stage 1, no pre-training, and the geometric expert at weight 0.5 (docs/history/degan-rounds.md has the "
   "measurements behind each).")

register_preset("tiny", {
    "arch.image_size": 16, "arch.width": 0.125, "arch.feat_dim": 32, "arch.noise_dim": 8,
    "train.batch_size": 16,
    "stage1.epochs": 1, "stage1.lr": 1e-3,
    "stage2.epochs": 1, "stage2.lr": 1e-3, "stage2.local_width": 0.25, "stage2.local_hidden": 16,
    "baseline.epochs": 1, "baseline.lr": 1e-3,
    "stage1.pretrain": False, "data.augment": "auto",
    "runtime.grid_identities": 3, "runtime.log_every": 1,
}, "For tests and smoke runs: 16-px input, minimal widths, one epoch of one random view per face per "
   "stage, no pre-training.")
