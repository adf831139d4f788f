"""Training configuration: one frozen dataclass per concern, collected in :class:`DeganConfig`.

Sections (``DeganConfig`` attribute = section name)::

    arch      the networks' shared shape: input size, width, f(x) and z lengths, initialisation
    train     how every stage trains: seed, batch, Adam's betas, weight decay, schedule, numerics
    stage1    DE-GAN stage 1 (the GAN): epochs, learning rate, G/D balance, optional extra terms
    stage2    DE-GAN stage 2: the local CNNs, the fused classifier and how they are trained
    baseline  the CNN baseline: epochs, learning rate, network, regularisation
    data      what the training images are: stored or online augmentation, patch, jitter
    eval      how test faces are scored: views, the geometric expert
    runtime   how the work is carried out; never changes a result (cache, loader workers, logging)

plus ``preset`` (the name of the preset it started from) and ``method`` ("degan" or "baseline").

A field is addressed as ``section.field`` (``--set stage1.lr=2e-4``); a field name that exists
in one section only may be given alone (``--set expr_weight=10``). Which sections a run's
results depend on is declared once (:data:`READS`, :data:`STAGE1_READS`), so what ``--resume``
and ``--from-stage1`` accept follows from the sections, for every field present or added
later. ``config.json`` holds :meth:`DeganConfig.to_dict` (nested by section); configurations
written by earlier versions as one flat dict still load (:meth:`DeganConfig.from_dict`).

Named presets (``paper``, ``cpu``, ``tiny``) live in :mod:`degan.presets`.
"""
from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DeganConfig", "Architecture", "Training", "Stage1", "Stage2", "Baseline", "Data", "Evaluation",
           "Runtime", "SECTIONS", "READS", "STAGE1_READS", "ConfigError", "parse_overrides", "flat_aliases",
           "Conflicts", "resume_conflicts", "stage1_conflicts", "describe_differences"]


class ConfigError(ValueError):
    """An invalid preset name, field name or field value."""


def _check_finite(section: str, obj: Any) -> None:
    """Every float of a section (and of its float tuples) is a finite number: NaN and infinity are
    refused for every field, whatever its own range check says."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        values = value if isinstance(value, tuple) else (value,)
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise ConfigError(f"{section}.{f.name}={_show(value)}: must be a finite number")


def _choice(section: str, obj: Any, name: str, allowed: tuple[str, ...]) -> None:
    if getattr(obj, name) not in allowed:
        raise ConfigError(f"{section}.{name}={getattr(obj, name)!r}: choose one of {', '.join(allowed)}")


def _positive(section: str, obj: Any, *names: str) -> None:
    for name in names:
        if getattr(obj, name) <= 0:
            raise ConfigError(f"{section}.{name} must be positive")


def _non_negative(section: str, obj: Any, *names: str) -> None:
    for name in names:
        if getattr(obj, name) < 0:
            raise ConfigError(f"{section}.{name} must be >= 0")


@dataclass(frozen=True)
class Architecture:
    """The CASIA-Net / DR-GAN family shared by G, D, the local CNNs' input and the baseline."""

    image_size: int = 96                 # network input, pixels (patches are resized to it)
    width: float = 1.0                   # channel multiplier on the CASIA-Net widths
    feat_dim: int = 350                  # length of f(x)
    noise_dim: int = 50                  # length of z
    init_std: float = 0.02               # weights ~ N(0, init_std), biases 0

    def check(self) -> None:
        if self.image_size < 16 or self.image_size % 16:
            raise ConfigError(f"arch.image_size={self.image_size}: must be a multiple of 16 (four stride-2 stages)")
        _positive("arch", self, "width", "feat_dim")
        _non_negative("arch", self, "noise_dim")


@dataclass(frozen=True)
class Training:
    """What every stage's training shares."""

    seed: int = 0
    batch_size: int = 150
    beta1: float = 0.5                   # Adam
    beta2: float = 0.999
    weight_decay: float = 0.0
    lr_schedule: str = "constant"        # "constant" (paper) or "cosine" (over each stage)
    amp: str = "auto"                    # "auto" (bf16/fp16 autocast on CUDA), "off"
    channels_last: bool = False          # NHWC tensors
    compile: bool = False                # torch.compile the training forward passes

    def check(self) -> None:
        _choice("train", self, "lr_schedule", ("constant", "cosine"))
        _choice("train", self, "amp", ("auto", "off"))
        _positive("train", self, "batch_size")


@dataclass(frozen=True)
class Stage1:
    """DE-GAN stage 1: G (= G_en + G_de) and D trained adversarially (Eq. 1 and 2)."""

    epochs: int = 300
    lr: float = 1e-4
    g_steps: int = 2                     # G updates per D update once D is "near optimal" ...
    d_strong_threshold: float = 0.9      # ... i.e. once the EMA of D's real/fake accuracy exceeds this
    d_acc_momentum: float = 0.9          # EMA momentum of that accuracy (per D step)
    identity_code: str = "random"        # target identity I: a "random" training identity or the input's "own"
    recon_weight: float = 0.0            # L1 reconstruction term in G's loss (not in the paper) on the
    recon_fraction: float = 0.5          # ... fraction of each batch whose I is the input's own identity
    expr_weight: float = 0.0             # G's loss adds expr_weight x the cross-entropy of a linear expression
                                         # head on f(x) of the real input (not in the paper)
    pretrain: bool = True                # stage 1 starts from a pre-training on another file (--pretrain FILE;
                                         # the paper pre-trains on BU-4DFE); False: no pre-training
    pretrain_epochs: int = 0             # epochs of that pre-training; 0 = as many as stage1.epochs

    def check(self) -> None:
        _choice("stage1", self, "identity_code", ("random", "own"))
        _positive("stage1", self, "lr", "g_steps")
        _non_negative("stage1", self, "epochs", "pretrain_epochs")
        if not 0 <= self.recon_fraction <= 1 or self.recon_weight < 0:
            raise ConfigError("stage1.recon_fraction must be in [0, 1] and stage1.recon_weight >= 0")
        if self.expr_weight < 0:
            raise ConfigError("stage1.expr_weight must be >= 0 (0 = no expression head on f(x))")

    @property
    def pretraining_epochs(self) -> int:
        """Epochs of the pre-training on ``--pretrain FILE``: ``pretrain_epochs``, or when that is 0
        as many as stage 1 has (the paper gives one schedule for stage 1)."""
        return self.pretrain_epochs or self.epochs


@dataclass(frozen=True)
class Stage2:
    """DE-GAN stage 2: local CNNs on G_en's taps and the fused classifier (L_total), G_en frozen."""

    epochs: int = 50
    lr: float = 1e-4
    local_width: float = 1.0             # channel multiplier of the local CNNs
    local_hidden: int = 256              # size of each local CNN's last FC layer
    local_depth: int = 1                 # conv-BN-ELU layers per resolution in a local CNN (the first halves it);
                                         # the paper does not give the local CNNs' layers
    weights: tuple[float, float, float, float, float] = (0.7, 0.6, 0.4, 0.3, 1.0)   # L1..L4, L5 (fused)
    fuse: str = "hidden"                 # fuse f(x) with each local CNN's last FC "hidden" or "logits"
    fuse_detach: bool = False            # stop L5 gradients into the local CNNs
    dropout: float = 0.0                 # before the classifier layers
    label_smoothing: float = 0.0
    mixup: float = 0.0                   # mix each batch with a shuffled copy, lambda ~ Beta(mixup, mixup) (paper: 0)
    synth_fraction: float = 0.0          # share of each batch replaced by G(x, I, z) for a random training
                                         # identity I, labelled with x's expression (paper: 0)
    encoder_lr_scale: float = 0.0        # also train G_en (weights and BN statistics) at lr x this; 0 = frozen

    def check(self) -> None:
        _choice("stage2", self, "fuse", ("hidden", "logits"))
        _positive("stage2", self, "lr", "local_width", "local_hidden", "local_depth")
        _non_negative("stage2", self, "epochs")
        if len(self.weights) != 5:
            raise ConfigError("stage2.weights needs five weights (L1..L4, L5)")
        _classifier_checks("stage2", self)
        if not 0 <= self.synth_fraction <= 1:
            raise ConfigError("stage2.synth_fraction must be in [0, 1]")
        if self.encoder_lr_scale < 0:
            raise ConfigError("stage2.encoder_lr_scale must be >= 0 (0 = G_en frozen in stage 2)")


@dataclass(frozen=True)
class Baseline:
    """The CNN baseline: a classifier trained directly on the images."""

    epochs: int = 50                     # the paper does not state it
    lr: float = 1e-4
    network: str = "encoder"             # "encoder" (the paper: G_en + linear) or "cnn3" (a plain 3-block CNN,
                                         # not the paper)
    dropout: float = 0.0                 # before the classifier layer
    label_smoothing: float = 0.0
    mixup: float = 0.0

    def check(self) -> None:
        _choice("baseline", self, "network", ("encoder", "cnn3"))
        _positive("baseline", self, "lr")
        _non_negative("baseline", self, "epochs")
        _classifier_checks("baseline", self)


def _classifier_checks(section: str, s: Stage2 | Baseline) -> None:
    if not 0 <= s.dropout < 1:
        raise ConfigError(f"{section}.dropout must be in [0, 1)")
    if s.mixup < 0:
        raise ConfigError(f"{section}.mixup must be >= 0 (0 = off)")


@dataclass(frozen=True)
class Data:
    """The training images: which samples, and how they are augmented on the fly."""

    augment: str = "paper"               # "paper": an epoch is every training face x its 110 paper views (the
                                         # stored copies, or rendered from the canvas); "auto", "online",
                                         # "stored", "off" (see degan.data.split)
    patch_size: int = 0                  # canvas files: crop side in the face box; 0 = the file's
                                         # (facekit.augment.sample_geometry)
    rotate_deg: float = 15.0             # online: uniform rotation in [-r, r]
    crop_jitter: bool = True             # online: random patch position inside the face box
    flip: bool = True                    # online: random horizontal mirror
    scale_jitter: float = 0.0            # online: random zoom in [1-s, 1+s] (paper: 0)
    val_fraction: float = 0.0            # hold out about this share of the training subjects as an inner
                                         # validation set (subject-grouped, stratified; not trained on); 0 = none

    def check(self) -> None:
        _choice("data", self, "augment", ("paper", "auto", "online", "stored", "off"))
        if not 0 <= self.val_fraction <= 0.5:
            raise ConfigError(f"data.val_fraction={self.val_fraction}: must be in [0, 0.5] (0 = no validation "
                              "split)")


@dataclass(frozen=True)
class Evaluation:
    """How a test face is scored."""

    test_views: str = "centre"           # "centre" patch; "mirror": mean softmax of it and its mirror;
                                         # "all": mean softmax over the 110 paper views
    geometry_weight: float = 0.0         # weight w of the geometric expert (degan.geometry) in the reported
                                         # probabilities: (1 - w) image model + w expert; 0 = the image model
    geometry_c: float = 0.1              # the expert's inverse L2 strength (scikit-learn's C)

    def check(self) -> None:
        _choice("eval", self, "test_views", ("centre", "mirror", "all"))
        if not 0 <= self.geometry_weight <= 1:
            raise ConfigError("eval.geometry_weight must be in [0, 1] (0 = the image model alone)")
        _positive("eval", self, "geometry_c")


@dataclass(frozen=True)
class Runtime:
    """How the work is carried out; no field here changes a result."""

    cache: str = "auto"                  # "auto", "on", "off": keep samples/image in memory
    num_workers: int = 0                 # DataLoader workers (each opens the file lazily)
    log_every: int = 10                  # steps between progress-bar updates
    grid_identities: int = 6             # identities per row of the synthesis grid

    def check(self) -> None:
        _choice("runtime", self, "cache", ("auto", "on", "off"))
        _non_negative("runtime", self, "num_workers")
        _positive("runtime", self, "log_every", "grid_identities")


#: section name -> its dataclass, in config.json order
SECTIONS: dict[str, type] = {"arch": Architecture, "train": Training, "stage1": Stage1, "stage2": Stage2,
                             "baseline": Baseline, "data": Data, "eval": Evaluation, "runtime": Runtime}
#: the sections whose fields decide a method's results (with ``method``); ``runtime`` never does
READS: dict[str, tuple[str, ...]] = {"degan": ("arch", "train", "stage1", "stage2", "data", "eval"),
                                     "baseline": ("arch", "train", "baseline", "data", "eval")}
#: the sections DE-GAN's stage 1 reads: two runs equal in these train the same stage 1
STAGE1_READS: tuple[str, ...] = ("arch", "train", "stage1", "data")
METHODS = tuple(READS)


@dataclass(frozen=True)
class DeganConfig:
    """All settings of a DE-GAN or baseline run (JSON-serialisable); the defaults are the paper's."""

    preset: str = "paper"
    method: str = "degan"                # "degan" or "baseline"
    arch: Architecture = field(default_factory=Architecture)
    train: Training = field(default_factory=Training)
    stage1: Stage1 = field(default_factory=Stage1)
    stage2: Stage2 = field(default_factory=Stage2)
    baseline: Baseline = field(default_factory=Baseline)
    data: Data = field(default_factory=Data)
    eval: Evaluation = field(default_factory=Evaluation)
    runtime: Runtime = field(default_factory=Runtime)

    # -------------------------------------------------------------------------------
    def validated(self) -> "DeganConfig":
        """Return self after checking every section; raise :class:`ConfigError` otherwise."""
        if self.method not in METHODS:
            raise ConfigError(f"method={self.method!r}: choose one of {', '.join(METHODS)}")
        for name in SECTIONS:
            _check_finite(name, getattr(self, name))
            getattr(self, name).check()
        return self

    def replace(self, changes: Mapping[str, Any] | None = None, /, **kw: Any) -> "DeganConfig":
        """A validated copy with ``changes`` (and keyword changes) applied.

        Keys: ``"section.field"``, a field name that only one section has (``"expr_weight"``),
        ``"preset"``, ``"method"``, or a section name with a section instance.
        """
        todo = {**(changes or {}), **kw}
        top: dict[str, Any] = {}
        per_section: dict[str, dict[str, Any]] = {}
        for key, value in todo.items():
            if key in ("preset", "method") or (key in SECTIONS and isinstance(value, SECTIONS[key])):
                top[key] = value
                continue
            section, name = resolve_field(key)
            per_section.setdefault(section, {})[name] = _normalise(value, SECTIONS[section], name)
        for section, fields in per_section.items():
            top[section] = dataclasses.replace(top.get(section, getattr(self, section)), **fields)
        return dataclasses.replace(self, **top).validated()

    def get(self, key: str) -> Any:
        """The value of ``"section.field"`` (or a unique field name, or ``preset``/``method``)."""
        if key in ("preset", "method"):
            return getattr(self, key)
        section, name = resolve_field(key)
        return getattr(getattr(self, section), name)

    def flat(self) -> dict[str, Any]:
        """``{"section.field": value}`` of every field (``preset`` and ``method`` as they are)."""
        out: dict[str, Any] = {"preset": self.preset, "method": self.method}
        for name in SECTIONS:
            for f in dataclasses.fields(SECTIONS[name]):
                out[f"{name}.{f.name}"] = getattr(getattr(self, name), f.name)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Nested plain dict (tuples as lists), as written to ``config.json`` and checkpoints."""
        d: dict[str, Any] = {"preset": self.preset, "method": self.method}
        for name in SECTIONS:
            sec = dataclasses.asdict(getattr(self, name))
            d[name] = {k: list(v) if isinstance(v, tuple) else v for k, v in sec.items()}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DeganConfig":
        """Inverse of :meth:`to_dict`. Fields missing from a section take their defaults (the paper's),
        so a configuration written before a field existed still loads; an unknown field is an
        error. A flat dict written by earlier versions (``{"model": ..., "epochs_gan": ...}``) is
        converted (:func:`_from_flat`)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a configuration is a JSON object, not {type(data).__name__}")
        if not any(isinstance(data.get(s), Mapping) for s in SECTIONS):
            return _from_flat(data)
        unknown = set(data) - {"preset", "method", *SECTIONS}
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(sorted(unknown))}")
        top: dict[str, Any] = {k: data[k] for k in ("preset", "method") if k in data}
        for name, cls_ in SECTIONS.items():
            raw = _before_fields(name, data.get(name) or {})
            known = {f.name for f in dataclasses.fields(cls_)}
            bad = set(raw) - known
            if bad:
                raise ConfigError(f"unknown config field(s): {', '.join(sorted(f'{name}.{b}' for b in bad))}")
            top[name] = cls_(**{k: _normalise(v, cls_, k) for k, v in raw.items()})
        return cls(**top).validated()

    @property
    def sections_read(self) -> tuple[str, ...]:
        """The sections this run's method reads (:data:`READS`)."""
        return READS[self.method]

    @property
    def epochs(self) -> dict[str, int]:
        """Epochs per training stage name ("gan", "local", "baseline", "pretrain")."""
        return {"gan": self.stage1.epochs, "local": self.stage2.epochs, "baseline": self.baseline.epochs,
                "pretrain": self.stage1.pretraining_epochs}


def _before_fields(section: str, raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """A section as written before ``stage1.pretrain`` and ``data.augment="paper"`` existed, with
    what those versions did: pre-training when ``pretrain_epochs`` > 0, ``augment`` "auto"."""
    if section == "stage1" and "pretrain" not in raw:
        return {**raw, "pretrain": bool(raw.get("pretrain_epochs", 0))}
    if section == "data" and "augment" not in raw:
        return {**raw, "augment": "auto"}
    return raw


def _normalise(value: Any, cls_: type, name: str) -> Any:
    """Values as the dataclass holds them (tuples for tuple fields)."""
    default = {f.name: f.default for f in dataclasses.fields(cls_)}.get(name)
    if isinstance(default, tuple) and isinstance(value, (list, tuple)):
        return tuple(float(v) for v in value)
    return value


def flat_aliases() -> dict[str, str]:
    """Field name -> ``"section.field"`` for every field name that exists in one section only."""
    seen: dict[str, list[str]] = {}
    for sec, cls_ in SECTIONS.items():
        for f in dataclasses.fields(cls_):
            seen.setdefault(f.name, []).append(f"{sec}.{f.name}")
    return {k: v[0] for k, v in seen.items() if len(v) == 1}


def _ambiguous() -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for sec, cls_ in SECTIONS.items():
        for f in dataclasses.fields(cls_):
            seen.setdefault(f.name, []).append(f"{sec}.{f.name}")
    return {k: v for k, v in seen.items() if len(v) > 1}


#: field names of the flat configuration of earlier versions that are not a section's field name,
#: and where their values went (a list: the value went to each). ``lr`` and ``lr_gan`` are handled
#: in :func:`_from_flat` (stage 1 used ``lr_gan`` when it was > 0, else ``lr``).
FLAT_RENAMED: dict[str, tuple[str, ...]] = {
    "model": ("method",), "epochs_gan": ("stage1.epochs",), "epochs_local": ("stage2.epochs",),
    "epochs_baseline": ("baseline.epochs",), "stage2_weights": ("stage2.weights",),
    "baseline_arch": ("baseline.network",), "lr": ("stage2.lr", "baseline.lr"), "lr_gan": ("stage1.lr",),
    "dropout": ("stage2.dropout", "baseline.dropout"),
    "label_smoothing": ("stage2.label_smoothing", "baseline.label_smoothing"),
    "mixup": ("stage2.mixup", "baseline.mixup")}


def resolve_field(key: str) -> tuple[str, str]:
    """``"section.field"`` or a unique field name -> (section, field); :class:`ConfigError` otherwise."""
    key = key.strip().replace("-", "_")
    if "." in key:
        section, _, name = key.partition(".")
        if section not in SECTIONS:
            raise ConfigError(f"{key}: unknown section {section!r}; sections: {', '.join(SECTIONS)}")
        if name not in {f.name for f in dataclasses.fields(SECTIONS[section])}:
            names = ", ".join(f.name for f in dataclasses.fields(SECTIONS[section]))
            raise ConfigError(f"{key}: section {section} has no field {name!r}; its fields: {names}")
        return section, name
    alias = flat_aliases().get(key)
    if alias is not None:
        section, _, name = alias.partition(".")
        return section, name
    if key in _ambiguous():
        raise ConfigError(f"{key}: several sections have this field; give one of {', '.join(_ambiguous()[key])}")
    if key in FLAT_RENAMED:
        if FLAT_RENAMED[key] == ("method",):
            raise ConfigError(f"{key}: renamed; use the --method option")
        raise ConfigError(f"{key}: renamed; give {' and '.join(FLAT_RENAMED[key])}"
                          + (" (or the --epochs option)" if key.startswith("epochs_") else ""))
    raise ConfigError(f"{key}: unknown config field; give section.field (sections: {', '.join(SECTIONS)})")


def _from_flat(data: Mapping[str, Any]) -> DeganConfig:
    """A configuration written as one flat dict by earlier versions -> :class:`DeganConfig` (the same
    settings: stage 1 used ``lr_gan`` when it was > 0, else ``lr``; ``dropout``, ``label_smoothing``
    and ``mixup`` applied to stage 2 and the baseline alike)."""
    changes: dict[str, Any] = {}
    aliases = flat_aliases()
    for key, value in data.items():
        if key in ("preset",):
            changes[key] = value
        elif key == "lr_gan":
            continue
        elif key in FLAT_RENAMED:
            for target in FLAT_RENAMED[key]:
                changes[target] = value
        elif key in aliases:
            changes[aliases[key]] = value
        else:
            raise ConfigError(f"unknown config field(s): {key}")
    lr_gan = float(data.get("lr_gan", 0.0) or 0.0)
    changes["stage1.lr"] = lr_gan if lr_gan > 0 else data.get("lr", Stage1.lr)
    changes["stage1.pretrain"] = bool(data.get("pretrain_epochs", 0))       # as in _before_fields
    changes.setdefault("data.augment", "auto")
    return DeganConfig().replace(changes)


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
    """Apply ``section.field=value`` strings (``--set``; a field name alone where only one section
    has it) to ``cfg``."""
    changes: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected section.field=value")
        key, value = item.split("=", 1)
        try:
            if key.strip().replace("-", "_") in ("preset", "method"):
                raise ConfigError(f"{key.strip()}: use the --{key.strip()} option")
            section, name = resolve_field(key)
            qualified = f"{section}.{name}"
            changes[qualified] = _coerce(value.strip(), getattr(getattr(cfg, section), name))
        except ConfigError as exc:
            raise ConfigError(f"--set {item}: {exc}") from None
        except ValueError as exc:
            raise ConfigError(f"--set {item}: {exc}") from None
    return cfg.replace(changes)


@dataclass(frozen=True)
class Conflicts:
    """Fields in which two configurations differ, split by what the difference means."""

    refused: tuple[str, ...] = ()      # fields that decide results: the runs are not the same run
    runtime: tuple[str, ...] = ()      # runtime fields: allowed, worth a line

    def describe(self, theirs: DeganConfig, mine: DeganConfig, names: tuple[str, ...]) -> str:
        return describe_differences(theirs, mine, names)


def describe_differences(theirs: DeganConfig, mine: DeganConfig, names: tuple[str, ...]) -> str:
    """``"section.field (their value -> my value), ..."`` for ``names``."""
    a, b = theirs.flat(), mine.flat()
    return ", ".join(f"{n} ({_show(a[n])} -> {_show(b[n])})" for n in names)


def _show(v: Any) -> str:
    return ",".join(f"{x:g}" for x in v) if isinstance(v, tuple) else (f"{v:g}" if isinstance(v, float) else str(v))


def _differing(theirs: DeganConfig, mine: DeganConfig, sections: tuple[str, ...]) -> tuple[str, ...]:
    a, b = theirs.flat(), mine.flat()
    return tuple(k for k in b if k.split(".")[0] in sections and a[k] != b[k])


def resume_conflicts(theirs: DeganConfig, mine: DeganConfig) -> Conflicts:
    """How ``mine`` differs from the configuration ``theirs`` a run was started with: in the method
    or a field of a section the method reads (refused: resuming would not continue that run), or
    in ``runtime`` only (allowed). Sections the method does not read, and the preset name, are
    not compared."""
    refused = ("method",) if theirs.method != mine.method else ()
    refused += _differing(theirs, mine, READS[mine.method])
    return Conflicts(refused, _differing(theirs, mine, ("runtime",)))


def stage1_conflicts(theirs: DeganConfig, mine: DeganConfig) -> tuple[str, ...]:
    """Fields of the sections stage 1 reads (:data:`STAGE1_READS`) in which two configurations
    differ: empty when a run of ``theirs`` trained the stage 1 that ``mine`` would train."""
    return _differing(theirs, mine, STAGE1_READS)
