"""Training configuration and the registry of named presets.

A :class:`DeganConfig` is one flat dataclass so that every field can be set from
the command line (``--set key=value``) and written to ``config.json`` in the run
directory. Presets are registered by name::

    from degan.config import get_preset, list_presets, register_preset
    cfg = get_preset("paper")                 # the paper's hyper-parameters
    cfg = cfg.replace(epochs_gan=10)          # a modified copy

Every field that departs from the paper in some preset says so in its comment
and in docs/degan.md.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["DeganConfig", "register_preset", "get_preset", "list_presets", "parse_overrides", "ConfigError"]


class ConfigError(ValueError):
    """An invalid preset name, field name or field value."""


@dataclass(frozen=True)
class DeganConfig:
    """All hyper-parameters of a DE-GAN or baseline run (JSON-serialisable).

    Field groups: architecture, optimisation (stage 1 = the GAN, stage 2 = the
    local CNNs, baseline = the encoder as a classifier), generator/discriminator
    balance, stage-2 fusion, data and augmentation, evaluation, runtime.
    """

    preset: str = "paper"
    model: str = "degan"                     # "degan" or "baseline"
    # --- architecture (CASIA-Net / DR-GAN family) --------------------------------
    image_size: int = 96                     # network input, pixels (patches are resized to it)
    width: float = 1.0                       # channel multiplier on the CASIA-Net widths
    feat_dim: int = 350                      # length of f(x)
    noise_dim: int = 50                      # length of z
    init_std: float = 0.02                   # weights ~ N(0, init_std), biases 0
    local_width: float = 1.0                 # channel multiplier of the stage-2 local CNNs
    local_hidden: int = 256                  # size of each local CNN's last FC layer
    local_depth: int = 1                     # conv-BN-ELU layers per resolution in a local CNN (the first
                                             # halves it); the paper does not give the local CNNs' layers
    dropout: float = 0.0                     # before classifier layers (stage 2, baseline)
    baseline_arch: str = "encoder"           # model="baseline": "encoder" (the paper: G_en + linear) or "cnn3"
                                             # (a plain 3-block CNN, the calibration kind; not the paper)
    # --- optimisation ----------------------------------------------------------------
    lr: float = 1e-4
    lr_gan: float = 0.0                      # stage-1 learning rate; 0 = ``lr`` (paper: one rate for all)
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 0.0
    batch_size: int = 150
    epochs_gan: int = 300                    # stage 1 (DE-GAN)
    epochs_local: int = 50                   # stage 2 (local CNNs + fused classifier)
    epochs_baseline: int = 50                # CNN baseline (paper: not stated)
    lr_schedule: str = "constant"            # "constant" (paper) or "cosine" (per stage)
    label_smoothing: float = 0.0             # classification losses of stage 2 and the baseline
    mixup: float = 0.0                       # stage 2 and the baseline: mix each batch with a shuffled copy of
                                             # itself, lambda ~ Beta(mixup, mixup), labels mixed alike (paper: 0)
    # --- stage-1 balance ---------------------------------------------------------
    g_steps: int = 2                         # G updates per D update once D is "near optimal"
    d_strong_threshold: float = 0.9          # ... i.e. once EMA of D's real/fake accuracy exceeds this
    d_acc_momentum: float = 0.9              # EMA momentum of that accuracy (per D step)
    identity_code: str = "random"            # target identity I: "random" training identity or "own"
    recon_weight: float = 0.0                # L1 reconstruction term in G's loss (paper/Eq. 2: 0), on the
    recon_fraction: float = 0.5              # ... fraction of each batch whose I is the input's own identity
    expr_weight: float = 0.0                 # G's loss adds expr_weight x the cross-entropy of a linear expression
                                             # head on f(x) of the real input (paper/Eq. 2: 0; the head is
                                             # used only in stage 1)
    # --- stage 2 -------------------------------------------------------------------
    stage2_weights: tuple[float, float, float, float, float] = (0.7, 0.6, 0.4, 0.3, 1.0)
    fuse: str = "hidden"                     # fuse f(x) with each local CNN's last FC "hidden" or "logits"
    fuse_detach: bool = False                # stop L5 gradients into the local CNNs
    synth_fraction: float = 0.0              # share of each stage-2 batch replaced by G(x, I, z) for a random
                                             # training identity I, labelled with x's expression (paper: 0)
    encoder_lr_scale: float = 0.0            # stage 2 also trains G_en (weights and BN statistics) at
                                             # lr x this; 0 = G_en frozen (paper)
    # --- data and augmentation --------------------------------------------------
    augment: str = "auto"                    # "auto", "online", "stored", "off" (see degan.data)
    patch_size: int = 0                      # canvas files: crop side in the face box; 0 = the file's
                                             # patch_size if smaller than the box, else box * 96/112 (paper)
    rotate_deg: float = 15.0                 # online: uniform rotation in [-r, r]
    crop_jitter: bool = True                 # online: random patch position inside the face box
    flip: bool = True                        # online: random horizontal mirror
    scale_jitter: float = 0.0                # online: random zoom in [1-s, 1+s] (paper: 0)
    test_views: str = "centre"               # "centre" patch; "mirror": mean softmax of it and its mirror;
                                             # "all": mean softmax over the 110 copies
    geometry_weight: float = 0.0             # weight w of a geometric expert (logistic regression on the stored
                                             # landmarks, degan.geometry) in the reported probabilities:
                                             # (1 - w) image model + w expert; 0 = the image model alone (paper)
    geometry_c: float = 0.1                  # the expert's inverse L2 strength (scikit-learn's C)
    cache: str = "auto"                      # "auto", "on", "off": keep samples/image in memory
    num_workers: int = 0                     # DataLoader workers (each opens the file lazily)
    # --- pre-training -------------------------------------------------------------
    pretrain_epochs: int = 0                 # stage 1 on --pretrain FILE before each fold's fine-tuning
    # --- runtime -------------------------------------------------------------------
    amp: str = "auto"                        # "auto" (bf16/fp16 autocast on CUDA), "off"
    channels_last: bool = False              # NHWC tensors (the cpu preset: measured faster on CPU, same accuracy)
    compile: bool = False                    # torch.compile the networks
    seed: int = 0
    grid_identities: int = 6                 # identities per row of the synthesis grid
    log_every: int = 10                      # steps between progress-bar updates

    # -------------------------------------------------------------------------------
    def replace(self, **changes: Any) -> "DeganConfig":
        """A validated copy with ``changes`` applied."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(sorted(unknown))}")
        if "stage2_weights" in changes:
            changes["stage2_weights"] = tuple(float(w) for w in changes["stage2_weights"])
        return dataclasses.replace(self, **changes).validated()

    def validated(self) -> "DeganConfig":
        """Return self after checking values; raise :class:`ConfigError` otherwise."""
        choices = {"model": ("degan", "baseline"), "baseline_arch": ("encoder", "cnn3"),
                   "lr_schedule": ("constant", "cosine"), "identity_code": ("random", "own"),
                   "fuse": ("hidden", "logits"), "augment": ("auto", "online", "stored", "off"),
                   "test_views": ("centre", "mirror", "all"), "cache": ("auto", "on", "off"), "amp": ("auto", "off")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name}={getattr(self, name)!r}: choose one of {', '.join(allowed)}")
        if self.image_size < 16 or self.image_size % 16:
            raise ConfigError(f"image_size={self.image_size}: must be a multiple of 16 (four stride-2 stages)")
        for name in ("width", "local_width", "lr", "batch_size", "feat_dim", "local_hidden", "g_steps",
                     "local_depth"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        for name in ("epochs_gan", "epochs_local", "epochs_baseline", "pretrain_epochs", "noise_dim"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0")
        if len(self.stage2_weights) != 5:
            raise ConfigError("stage2_weights needs five weights (L1..L4, L5)")
        if not 0 <= self.recon_fraction <= 1 or self.recon_weight < 0:
            raise ConfigError("recon_fraction must be in [0, 1] and recon_weight >= 0")
        if self.expr_weight < 0:
            raise ConfigError("expr_weight must be >= 0 (0 = no expression head on f(x) in stage 1)")
        if not 0 <= self.synth_fraction <= 1:
            raise ConfigError("synth_fraction must be in [0, 1]")
        if not 0 <= self.dropout < 1:
            raise ConfigError("dropout must be in [0, 1)")
        if self.mixup < 0:
            raise ConfigError("mixup must be >= 0 (0 = off)")
        if not 0 <= self.geometry_weight <= 1:
            raise ConfigError("geometry_weight must be in [0, 1] (0 = the image model alone)")
        if self.geometry_c <= 0:
            raise ConfigError("geometry_c must be positive")
        if self.encoder_lr_scale < 0:
            raise ConfigError("encoder_lr_scale must be >= 0 (0 = G_en frozen in stage 2)")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["stage2_weights"] = list(self.stage2_weights)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DeganConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(sorted(unknown))}")
        data = dict(data)
        if "stage2_weights" in data:
            data["stage2_weights"] = tuple(float(w) for w in data["stage2_weights"])
        return cls(**data).validated()

    def result_fields(self) -> dict[str, Any]:
        """:meth:`to_dict` without the fields that cannot change this model's results
        (a baseline ignores the GAN and stage-2 fields, DE-GAN ``epochs_baseline``;
        progress and loading options never matter). Used to decide whether a run may resume."""
        d = self.to_dict()
        ignore = {"log_every", "num_workers", "cache", "grid_identities", "preset"}
        if self.model == "baseline":
            ignore |= {"local_width", "local_hidden", "local_depth", "stage2_weights", "fuse", "fuse_detach", "g_steps",
                       "d_strong_threshold", "d_acc_momentum", "identity_code", "recon_weight", "recon_fraction",
                       "expr_weight", "synth_fraction", "encoder_lr_scale", "lr_gan", "noise_dim", "epochs_gan", "epochs_local",
                       "pretrain_epochs"}
        else:
            ignore |= {"epochs_baseline", "baseline_arch"}
        return {k: v for k, v in d.items() if k not in ignore}

    #: fields that only stage 2 (local CNNs + fused classifier) and the evaluation read
    STAGE2_FIELDS = frozenset({"local_width", "local_hidden", "local_depth", "stage2_weights", "fuse", "fuse_detach",
                               "epochs_local", "synth_fraction", "encoder_lr_scale", "dropout", "label_smoothing",
                               "mixup", "test_views", "epochs_baseline", "baseline_arch", "model",
                               "geometry_weight", "geometry_c"})

    def stage1_fields(self) -> dict[str, Any]:
        """:meth:`result_fields` of a DE-GAN run without the stage-2 fields: two configs with equal
        ``stage1_fields`` train the same stage 1 (``lr`` counts only when ``lr_gan`` is 0, i.e. when
        stage 1 uses it). Used by ``--from-stage1`` to check that a run's stage 1 may be reused."""
        d = self.replace(model="degan").result_fields()
        drop = set(self.STAGE2_FIELDS)
        if self.lr_gan > 0:
            drop.add("lr")
        return {k: v for k, v in d.items() if k not in drop}

    @property
    def epochs_stage(self) -> dict[str, int]:
        return {"gan": self.epochs_gan, "local": self.epochs_local, "baseline": self.epochs_baseline}


_PRESETS: dict[str, Callable[[], DeganConfig]] = {}


def register_preset(name: str) -> Callable[[Callable[[], DeganConfig]], Callable[[], DeganConfig]]:
    """Decorator: register a zero-argument factory returning a :class:`DeganConfig`."""
    def deco(fn: Callable[[], DeganConfig]) -> Callable[[], DeganConfig]:
        _PRESETS[name] = fn
        return fn
    return deco


def list_presets() -> list[str]:
    return sorted(_PRESETS)


def get_preset(name: str) -> DeganConfig:
    """The preset called ``name`` (a fresh, validated copy)."""
    if name not in _PRESETS:
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(list_presets())}")
    return _PRESETS[name]().replace(preset=name)


@register_preset("paper")
def _paper() -> DeganConfig:
    """Ali & Hughes: 96x96, Adam(1e-4, 0.5), batch 150, N(0, 0.02), 300 + 50 epochs."""
    return DeganConfig()


@register_preset("cpu")
def _cpu() -> DeganConfig:
    """Sized for a 10-fold CK+48 CV of DE-GAN within 60 minutes on 2 CPU cores.

    Deviations from ``paper`` (each measured, see docs/degan.md): 48-px input,
    quarter width, fewer epochs, larger learning rates with a cosine schedule,
    dropout and label smoothing on the classifiers, batch 64, random zoom, and an
    L1 reconstruction term for half of each stage-1 batch (without it the short
    CPU schedule leaves G producing noise and D winning outright). Half-width
    local CNNs with a 128-unit FC: a smaller stage 2 (0.25, 64) looked better on
    folds 0-2 but measured 2 points lower over the 10 folds (docs/degan.md). 60 stage-1
    epochs (v4; was 40): the 10-fold DE-GAN CV then takes about 52 of its 60 minutes. On a
    VM 2.2-2.9x slower for these steps it takes about 122 minutes, and 87 with two folds at a
    time (``degan-train --jobs 2 --threads 1``). v4.1: channels_last tensors (78 instead of 87
    minutes there, face by face the same accuracy for DE-GAN and the baseline; ``--set
    channels_last=false`` reproduces the earlier runs). v5: 40 stage-1 epochs with a supervised
    expression head on f(x) (``expr_weight=1``, not in the paper): on the slower VM the CV takes
    57.6 minutes with ``--jobs 2 --threads 1`` and face by face equals v4.1 (22 against 23
    faces; ``--epochs 60,60 --set expr_weight=0`` reproduces v4.1). v6: ``expr_weight=10`` (92.26
    against v5's 91.19 and the baseline's 91.99; face by face 32 against 21 faces against v5 and 33
    against 30 against the baseline, neither significant; ``--set expr_weight=1`` reproduces v5).
    v7: the geometric expert (``geometry_weight=0.5``, :mod:`degan.geometry`; not in the paper): the
    reported probability is the mean of the image model's and a logistic regression's on the
    stored landmarks (the networks train as in v6; ``--set geometry_weight=0`` reproduces v6).
    """
    return DeganConfig(image_size=48, width=0.25, local_width=0.5, local_hidden=128, batch_size=64,
                       lr=1e-3, lr_gan=2e-4, lr_schedule="cosine", epochs_gan=40, epochs_local=60,
                       epochs_baseline=60, dropout=0.3, label_smoothing=0.1, scale_jitter=0.1,
                       recon_weight=10.0, recon_fraction=0.5, channels_last=True, expr_weight=10.0,
                       geometry_weight=0.5)


@register_preset("tiny")
def _tiny() -> DeganConfig:
    """For tests and smoke runs: 16-px input, minimal widths, one epoch per stage."""
    return DeganConfig(image_size=16, width=0.125, local_width=0.25, local_hidden=16, feat_dim=32,
                       noise_dim=8, batch_size=16, lr=1e-3, epochs_gan=1, epochs_local=1, epochs_baseline=1,
                       grid_identities=3, log_every=1)


def _coerce(value: str, current: Any) -> Any:
    if isinstance(current, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"expected a boolean, got {value!r}")
    if isinstance(current, int):
        return int(value)
    if isinstance(current, float):
        return float(value)
    if isinstance(current, tuple):
        return tuple(float(v) for v in value.strip("()[]").split(","))
    return value


def parse_overrides(cfg: DeganConfig, items: list[str] | tuple[str, ...]) -> DeganConfig:
    """Apply ``key=value`` strings (from ``--set``) to ``cfg``."""
    changes: dict[str, Any] = {}
    fields = {f.name for f in dataclasses.fields(cfg)}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, value = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if key not in fields:
            raise ConfigError(f"--set {key}: unknown config field; fields: {', '.join(sorted(fields))}")
        try:
            changes[key] = _coerce(value.strip(), getattr(cfg, key))
        except ValueError as exc:
            raise ConfigError(f"--set {item!r}: {exc}") from None
    return cfg.replace(**changes)
