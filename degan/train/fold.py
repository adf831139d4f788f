"""One fold: :class:`FoldTrainer` owns the fold's networks, optimisers, history and checkpoint.

``method="degan"``::

    train_gan()       stage 1: G (= G_en + G_de) and D trained adversarially (Eq. 1 and 2)
    train_local()     stage 2: G_en frozen (eval mode, no gradients); local CNNs + fused classifier
                      (``stage2.encoder_lr_scale > 0``: G_en trained too, at lr x that scale)
    evaluate()        test faces scored with the fused classifier (and the geometric expert)

``method="baseline"``: ``train_baseline()`` trains the classifier, then ``evaluate()``.

:meth:`FoldTrainer.run` does what is left of these and :meth:`FoldTrainer.finish` writes the
final checkpoint (stage "done") and the fold's outputs. The checkpoint
``<run>/fold_XX/checkpoint.pt`` is rewritten atomically after every epoch;
:meth:`FoldTrainer.restore` continues from it. The random state of each epoch is derived from
(seed, fold, stage, epoch), so a resumed run repeats the uninterrupted one exactly (on CPU;
CUDA kernels may not be bit-exact). Restoring a finished checkpoint and calling
:meth:`FoldTrainer.finish` regenerates the fold's outputs; :meth:`FoldTrainer.write_missing_outputs`
writes only those that are missing (``--resume`` after a kill between the final checkpoint
and the outputs, or after an output was deleted).

Every checkpoint's meta records the data's fingerprint (:mod:`degan.data.fingerprint`), the
torch thread count and the device; a checkpoint of other data is refused on resume.
"""
from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from .. import distributed as dist_
from ..checkpoint import checkpoint_config, check_checkpoint_data, load_checkpoint, load_weights, save_checkpoint
from ..config import DeganConfig, describe_differences, resume_conflicts
from ..data import Batch, BatchTransform, FacekitDataset, FileInfo, FoldSplit, collate, make_split, make_transform
from ..data.fingerprint import DataFingerprint, data_fingerprint
from ..errors import CheckpointError, NonFiniteLossError, RunDirError
from ..geometry import GeometryExpert, fold_expert
from ..outputs import write_json
from ..losses import stage2_loss
from ..metrics import Predictions
from ..models import DeganNets, build_baseline, build_degan, load_pretrained
from ..predict import predict, score_fold, write_predictions
from .steps import (ClassifyStep, GanStep, LossFn, Precision, adam, eval_mode, lr_at, mixup_batch, set_lr,
                    with_synthesised)

__all__ = ["FoldTrainer", "FoldResult", "train_fold", "Interrupted", "epoch_seed", "epoch_images", "steps_per_epoch",
           "FOLD_OUTPUTS"]

#: the files a finished fold writes next to its checkpoint (``synthesis.png``: DE-GAN only)
FOLD_OUTPUTS = ("metrics.json", "history.json", "curves.png", "confusion.png", "predictions.csv", "synthesis.png")


class Interrupted(Exception):
    """Raised by the test hook ``stop_after`` to simulate a killed run (after a checkpoint)."""


def epoch_seed(seed: int, fold: int, stage: str, epoch: int) -> int:
    """The random seed of one epoch of one stage of one fold (``"init"``, 0: the networks' weights)."""
    return zlib.crc32(f"{seed}/{fold}/{stage}/{epoch}".encode()) & 0x7FFFFFFF


def epoch_images(n: int, batch_size: int, world_size: int = 1) -> int:
    """Images one training epoch over ``n`` items processes (all processes together): the
    last, incomplete batch is dropped when there is more than one batch."""
    per_rank = n // world_size if world_size > 1 else n
    bs = max(1, batch_size // world_size)
    return (per_rank // bs * bs if per_rank > bs else per_rank) * world_size


def steps_per_epoch(n: int, batch_size: int, world_size: int = 1) -> int:
    """Training steps of one epoch over ``n`` items (:attr:`degan.data.FoldSplit.n_train_items`:
    with ``data.augment="paper"`` every training face x its 110 views): ``floor(n / batch_size)``,
    the last incomplete batch dropped; one step when ``n`` is at most one batch. Under DDP each
    of the ``world_size`` processes takes ``n // world_size`` items in batches of
    ``batch_size // world_size``."""
    per_rank = n // world_size if world_size > 1 else n
    bs = max(1, batch_size // world_size)
    return per_rank // bs if per_rank > bs else int(per_rank > 0)


@dataclass
class FoldResult:
    fold: int
    metrics: dict[str, Any]
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)


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


class _EncoderAndLocal(nn.Module):
    """G_en followed by the local CNNs and the fused classifier, one module (so that DDP and
    ``torch.compile`` see every parameter stage 2 trains when ``encoder_lr_scale > 0``)."""

    def __init__(self, encoder: nn.Module, local: nn.Module) -> None:
        super().__init__()
        self.encoder, self.local = encoder, local

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f, taps = self.encoder.forward_taps(x)
        return self.local(f, taps)


#: one training step of a stage: (input x, the batch, the epoch's generator, the epoch's numpy
#: generator) -> (loss terms, correctly classified images of the batch or None)
StepFn = Callable[[torch.Tensor, Batch, torch.Generator, np.random.Generator], tuple[dict[str, float], int | None]]


@dataclass
class _Stage:
    """What distinguishes one stage's epochs: its name and length, learning rate and optimisers,
    the step, the progress-bar text and extra history fields."""

    name: str
    epochs: int
    lr: float
    optimisers: dict[str, torch.optim.Optimizer]
    train_mode: Callable[[], None]
    step: StepFn
    postfix: Callable[[dict[str, float], float], dict[str, str]]     # (running means, train acc) -> bar text
    extra: Callable[[], dict[str, Any]] = dict                          # appended to each epoch's record
    supervised: bool = False                                            # records the training accuracy
    validate: Callable[[], float] | None = None                         # accuracy on the inner validation set


class FoldTrainer:
    """The networks, optimisers, history and checkpoint of one fold (or of pre-training).

    ``split``: the fold's samples (:func:`degan.data.make_split`). ``fold_dir``: where the
    fold's outputs go; ``checkpoint``: its checkpoint (default ``fold_dir/checkpoint.pt``).
    ``pretrained``: a pre-training checkpoint payload whose G and D start this fold
    (:func:`degan.models.load_pretrained`). ``stage1``: a checkpoint payload of this fold
    with a finished stage 1 (:func:`degan.checkpoint.load_stage1`): its G and D are used and
    only stage 2 is trained. ``role``: "pretrain" for pre-training (recorded in the meta).
    ``on_images``: called with the number of images of every training batch (run progress).
    ``stop_after``: test hook, raise :class:`Interrupted` after that many epochs.
    :attr:`after_final_checkpoint`: test hook, called with the checkpoint path between the final
    checkpoint and the outputs (e.g. to kill the process there).
    """

    after_final_checkpoint: ClassVar[Callable[[Path], None] | None] = None

    def __init__(self, cfg: DeganConfig, info: FileInfo, split: FoldSplit, fold_dir: Path, *,
                 checkpoint: Path | None = None, dinfo: dist_.DistInfo | None = None,
                 pretrained: dict[str, Any] | None = None, stage1: dict[str, Any] | None = None,
                 role: str | None = None, progress: bool = True, stop_after: int | None = None,
                 bar_position: int | None = None, on_images: Callable[[int], None] | None = None) -> None:
        self.t_start = time.perf_counter()
        self.cfg, self.info, self.split = cfg, info, split
        self.dinfo = dinfo or dist_.setup()
        self.fold_dir = Path(fold_dir)
        self.ckpt = checkpoint or self.fold_dir / "checkpoint.pt"
        self.role = role or cfg.method
        self.progress, self.stop_after, self.bar_position = progress, stop_after, bar_position
        self.on_images = on_images
        self.precision = Precision(cfg.train.amp, self.device)
        self.history: list[dict[str, Any]] = []
        self.stage: str | None = None       # the stage of the last checkpoint ("done" when finished)
        self.epoch = 0                      # epochs completed in that stage
        self.d_acc_ema: float | None = None  # stage 1's running real/fake accuracy of D
        self.seconds_before = 0.0           # training time of earlier invocations (resumed)
        self.epochs_run = 0
        self.geometry: GeometryExpert | None = None
        self.saved_metrics: dict[str, Any] | None = None   # the metrics of a restored finished checkpoint
        self._fingerprint: DataFingerprint | None = None
        self.nets: DeganNets | None = None
        self.model: nn.Module | None = None
        torch.manual_seed(epoch_seed(cfg.train.seed, split.fold, "init", 0))
        if cfg.method == "baseline":
            self.model = self._prepare(build_baseline(cfg, info.channels, info.n_classes))
            self.optimisers = {"baseline": adam(self.model.parameters(), cfg.baseline.lr, cfg.train)}
            return
        nets = build_degan(cfg, info.channels, info.n_classes, split.n_identities)
        if pretrained is not None:
            load_pretrained(nets, pretrained, cfg.arch, info.label_names)
        if stage1 is not None:
            for k in ("G", "D"):
                load_weights(nets.modules()[k], stage1["models"].get(k), stage1.get("source", "--from-stage1"), k)
            self.history = [h for h in stage1.get("history", []) if h.get("stage") == "gan"]
            self.stage, self.epoch = "gan", cfg.stage1.epochs
        for m in nets.modules().values():
            self._prepare(m)
        self.nets = nets
        enc_lr_scale = cfg.stage2.encoder_lr_scale
        local_params: Any = nets.local.parameters() if enc_lr_scale <= 0 else [
            {"params": list(nets.local.parameters())},
            {"params": list(nets.G.encoder.parameters()), "lr_scale": enc_lr_scale}]
        self.optimisers = {"G": adam(nets.G.parameters(), cfg.stage1.lr, cfg.train),
                           "D": adam(nets.D.parameters(), cfg.stage1.lr, cfg.train),
                           "local": adam(local_params, cfg.stage2.lr, cfg.train)}

    # ------------------------------------------------------------------ construction
    @classmethod
    def for_fold(cls, cfg: DeganConfig, info: FileInfo, fold: int, fold_dir: Path, *, resume: bool = False,
                 pretrained: dict[str, Any] | None = None, stage1: dict[str, Any] | None = None,
                 **kw: Any) -> "FoldTrainer":
        """The trainer of fold ``fold``, continued from ``fold_dir/checkpoint.pt`` when it exists.

        Raises:
            RunDirError: a checkpoint exists and ``resume`` is False.
            CheckpointError: the checkpoint is corrupt, of another fold, or from a run with other
                settings (:func:`degan.config.resume_conflicts`).
        """
        split = make_split(info, fold, cfg)
        ckpt = Path(fold_dir) / "checkpoint.pt"
        saved = None
        if ckpt.exists():
            if not resume:
                raise RunDirError(ckpt, "exists; pass --resume to continue, or choose another --out")
            saved = load_checkpoint(ckpt, "cpu")
            theirs = checkpoint_config(saved, ckpt)
            conflicts = resume_conflicts(theirs, cfg).refused
            if conflicts:
                raise CheckpointError(ckpt, f"was written with another configuration "
                                            f"(differs in: {describe_differences(theirs, cfg, conflicts)})")
            if int(saved["meta"].get("fold", -2)) != fold:
                raise CheckpointError(ckpt, f"belongs to fold {saved['meta'].get('fold')}, not {fold}")
            check_checkpoint_data(saved, data_fingerprint(info), ckpt)   # none recorded: run_cv says so
        trainer = cls(cfg, info, split, Path(fold_dir), pretrained=None if saved else pretrained,
                      stage1=None if saved else stage1, **kw)
        if saved is not None:
            trainer.restore(saved)
        return trainer

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint payload of this fold: weights, optimisers, history, progress.

        Raises:
            CheckpointError: a tensor missing or of another shape, or optimiser state that does
                not fit (naming the checkpoint and the tensor or optimiser).
        """
        models = state["models"] if isinstance(state.get("models"), dict) else {}
        for k, m in self.modules().items():
            load_weights(m, models.get(k), self.ckpt, k)
        saved_opts = state.get("optimizers", {})
        for k, o in self.optimisers.items():
            if k in saved_opts:
                try:
                    o.load_state_dict(saved_opts[k])
                except (ValueError, KeyError, TypeError) as exc:
                    raise CheckpointError(self.ckpt, f"optimiser {k} does not fit the networks: {exc}") from None
        self.history = list(state.get("history", []))
        self.stage, self.epoch = state["stage"], int(state["epoch"])
        self.d_acc_ema = state.get("state", {}).get("d_acc_ema")
        self.seconds_before = float(state.get("seconds", 0.0) or 0.0)
        if state.get("geometry"):
            self.geometry = GeometryExpert.from_state(state["geometry"])
        self.saved_metrics = state.get("metrics") if state["stage"] == "done" else None

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        return self.dinfo.device

    @property
    def fold(self) -> int:
        return self.split.fold

    def modules(self) -> dict[str, nn.Module]:
        """The fold's trained networks by checkpoint name ("G", "D", "local" or "baseline")."""
        if self.nets is not None:
            return self.nets.modules()
        assert self.model is not None
        return {"baseline": self.model}

    @property
    def fingerprint(self) -> DataFingerprint:
        """The fingerprint of the data this trainer trains on (:func:`degan.data.fingerprint.data_fingerprint`)."""
        if self._fingerprint is None:
            self._fingerprint = data_fingerprint(self.info)
        return self._fingerprint

    def meta(self) -> dict[str, Any]:
        """What a checkpoint records besides weights: the fold, the data, its fingerprint and geometry,
        and the torch threads and device that trained it."""
        g = self.info.geometry(self.cfg.data.patch_size)
        return {"fold": self.split.fold, "k": self.split.k, "method": self.role, "channels": self.info.channels,
                "label_names": self.info.label_names, "identity_names": self.split.identity_names,
                "n_identities": self.split.n_identities, "data": str(self.info.path), "dataset": self.info.dataset,
                "face_box": list(g.face_box), "patch_size": g.patch_size,
                "image_shape": list(self.info.image_shape), "augment": self.info.augment,
                "fingerprint": self.fingerprint.to_dict(), "threads": torch.get_num_threads(),
                "device": str(self.device)}

    def forward(self) -> Callable[[torch.Tensor], Any]:
        """The prediction function of the fold's networks (put in eval mode)."""
        for m in self.modules().values():
            m.eval()
        return self.nets.classify if self.nets is not None else self.modules()["baseline"]

    # ------------------------------------------------------------------ the fold end to end
    def run(self) -> FoldResult:
        """Train what is left (stage 1 and 2, or the baseline), then :meth:`finish`."""
        cfg = self.cfg
        if cfg.method == "baseline":
            if self.stage != "done":
                self.train_baseline()
        else:
            if self.stage in (None, "gan") and (self.epoch if self.stage == "gan" else 0) < cfg.stage1.epochs:
                self.train_gan()
            if self.stage != "done":
                self.train_local()
        return self.finish()

    def finish(self) -> FoldResult:
        """Evaluate (rank 0), write the final checkpoint (stage "done") and the fold's outputs."""
        metrics: dict[str, Any] = {}
        if self.dinfo.main:
            pred, metrics = self.evaluate()
            self.stage, self.epoch = "done", 0
            self.save({"stage": "done", "epoch": 0, "optimizers": {}, "metrics": metrics,
                       "seconds": metrics["seconds"],
                       "geometry": self.geometry.to_state() if self.geometry is not None else None}, barrier=False)
            if FoldTrainer.after_final_checkpoint is not None:
                FoldTrainer.after_final_checkpoint(self.ckpt)
            self.write_outputs(pred, metrics)
        dist_.barrier()
        return FoldResult(self.fold, metrics, time.perf_counter() - self.t_start, self.history)

    def evaluate(self) -> tuple[Predictions, dict[str, Any]]:
        """Predictions and metrics of the test faces (the geometric expert fitted on the training
        faces when ``eval.geometry_weight > 0``)."""
        cfg, split = self.cfg, self.split
        self.geometry = fold_expert(self.info, split, cfg.eval)
        pred, m = score_fold(self.forward(), self.info, split, cfg, self.device, geometry=self.geometry)
        seconds = time.perf_counter() - self.t_start + self.seconds_before
        m.update(fold=split.fold, seconds=seconds, n_train=int(len(split.train)), n_test_faces=int(len(pred["face"])),
                 n_identities=split.n_identities, dropped_train_samples=split.dropped, test_views=cfg.eval.test_views)
        if len(split.val):
            m["validation"] = self.validation_metrics()
        return pred, m

    def validation_metrics(self) -> dict[str, Any]:
        """The final model on the inner validation subjects, scored like the test faces (with the
        geometric expert, fitted on the remaining training faces, when it is on): accuracy, faces,
        subjects, and where the prediction has parts (stage-2 heads, image model and expert) each
        part's accuracy (``head_accuracy``)."""
        _, m = score_fold(self.forward(), self.info, self.split.validation(), self.cfg, self.device,
                          geometry=self.geometry)
        out = {"accuracy": m["accuracy"], "n_faces": m["n"], "subjects": list(self.split.val_subjects)}
        if "head_accuracy" in m:
            out["head_accuracy"] = m["head_accuracy"]
        return out

    def write_outputs(self, pred: Predictions | None, metrics: dict[str, Any],
                      only: Collection[str] | None = None) -> None:
        """``metrics.json``, ``history.json``, ``curves.png``, ``confusion.png``, for DE-GAN
        ``synthesis.png``, and ``predictions.csv`` in the fold directory (``only``: those of
        :data:`FOLD_OUTPUTS` named; ``pred`` may be None when ``predictions.csv`` is not among them)."""
        from ..plots import accuracy_title, plot_confusion, plot_curves
        from ..synthesize import write_fold_grid
        d, fold, method = self.fold_dir, self.split.fold, self.cfg.method
        d.mkdir(parents=True, exist_ok=True)

        def want(name: str) -> bool:
            return only is None or name in only
        if want("metrics.json"):
            write_json(d / "metrics.json", metrics)
        if want("history.json"):
            write_json(d / "history.json", self.history)
        if want("curves.png"):
            plot_curves(self.history, d / "curves.png", title=f"{method}, fold {fold}")
        if want("confusion.png"):
            plot_confusion(np.array(metrics["confusion"]), self.info.label_names, d / "confusion.png",
                           title=accuracy_title(method, {fold: metrics["accuracy"]}))
        if self.nets is not None and want("synthesis.png"):
            write_fold_grid(self.nets.G, self.info, self.split, self.cfg, self.device, d / "synthesis.png",
                            run=d.parent.resolve().name)
        if want("predictions.csv"):
            assert pred is not None
            write_predictions(d / "predictions.csv", pred, self.info)

    def missing_outputs(self) -> list[str]:
        """The names of :data:`FOLD_OUTPUTS` this fold should have and its directory lacks."""
        names = [n for n in FOLD_OUTPUTS if n != "synthesis.png" or self.nets is not None]
        return [n for n in names if not (self.fold_dir / n).is_file()]

    def write_missing_outputs(self) -> list[str]:
        """Write the outputs a finished fold (restored from its final checkpoint) lacks, from that
        checkpoint: its metrics, history and geometric expert as saved, the predictions and
        figures from its networks (the same bytes training wrote, on CPU). Returns their names."""
        if self.stage != "done" or self.saved_metrics is None:
            raise RunDirError(self.ckpt, "the fold is not finished; its outputs are written when it is")
        missing = self.missing_outputs()
        if missing and self.dinfo.main:
            pred = None
            if "predictions.csv" in missing:
                pred, _ = score_fold(self.forward(), self.info, self.split, self.cfg, self.device,
                                     geometry=self.geometry)
            self.write_outputs(pred, self.saved_metrics, only=missing)
        return missing

    # ------------------------------------------------------------------ stages
    def train_gan(self, stage: str = "gan", epochs: int | None = None) -> None:
        """Stage 1 up to ``epochs`` (default ``stage1.epochs``), from where the checkpoint left it."""
        cfg, nets = self.cfg, self.nets
        assert nets is not None
        G = self._compiled(dist_.wrap(nets.G, self.dinfo))
        D = self._compiled(dist_.wrap(nets.D, self.dinfo))
        step = GanStep(G, D, self.optimisers["G"], self.optimisers["D"], cfg.stage1, self.precision, D_plain=nets.D,
                       d_acc_ema=self.d_acc_ema)
        n_ids, noise_dim, own = nets.G.decoder.n_identities, cfg.arch.noise_dim, cfg.stage1.identity_code == "own"
        dev = self.device

        def gan_batch(x: torch.Tensor, batch: Batch, gen: torch.Generator,
                      _: np.random.Generator) -> tuple[dict[str, float], None]:
            y_e, y_id = batch["label"].to(dev), batch["identity"].to(dev)
            ident = y_id.clone() if own else torch.randint(0, n_ids, (y_id.shape[0],), generator=gen).to(dev)
            z = torch.randn(x.shape[0], noise_dim, generator=gen).to(dev)
            terms = step(x, y_e, y_id, ident, z)
            self.d_acc_ema = step.d_acc_ema
            return terms, None

        def postfix(m: dict[str, float], _: float) -> dict[str, str]:
            return {"D": f"{m['d_expr'] + m['d_id'] + m['d_fake']:.3f}", "G": f"{m['g_expr'] + m['g_id']:.3f}",
                    "acc": f"{step.d_acc_ema:.2f}"}

        def train_mode() -> None:
            G.train(), D.train()
        self._run(_Stage(stage, cfg.stage1.epochs if epochs is None else epochs, cfg.stage1.lr,
                         {"G": self.optimisers["G"], "D": self.optimisers["D"]}, train_mode, gan_batch, postfix,
                         extra=lambda: {"d_acc_ema": step.d_acc_ema}))

    def train_local(self) -> None:
        """Stage 2: the local CNNs and the fused classifier on the frozen G_en (and G_en itself at
        ``lr x stage2.encoder_lr_scale`` when that is > 0); G_de and D are not trained."""
        cfg, nets, s2 = self.cfg, self.nets, self.cfg.stage2
        assert nets is not None
        enc = nets.G.encoder
        tune_enc = s2.encoder_lr_scale > 0
        enc.eval()
        nets.G.requires_grad_(False)                  # stage 2: G frozen (paper) ...
        enc.requires_grad_(tune_enc)                  # ... unless encoder_lr_scale > 0
        n_ids = nets.G.decoder.n_identities
        noise_dim = cfg.arch.noise_dim
        if tune_enc:
            tuned = self._compiled(dist_.wrap(_EncoderAndLocal(enc, nets.local), self.dinfo))

            def forward(x: torch.Tensor) -> list[torch.Tensor]:
                if s2.synth_fraction > 0:
                    with torch.no_grad(), eval_mode(enc):
                        x = with_synthesised(nets.G, x, s2.synth_fraction, n_ids, noise_dim)
                return tuned(x)
        else:
            local = self._compiled(dist_.wrap(nets.local, self.dinfo))

            def forward(x: torch.Tensor) -> list[torch.Tensor]:
                with torch.no_grad():
                    x = with_synthesised(nets.G, x, s2.synth_fraction, n_ids, noise_dim)
                    f, taps = enc.forward_taps(x)
                return local(f, taps)

        def loss(out: list[torch.Tensor], y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
            return stage2_loss(out, y, s2.weights, s2.label_smoothing)

        def train_mode() -> None:
            nets.local.train()
            nets.G.eval()                             # G_en frozen; G_de (synth_fraction) too
            enc.train(tune_enc)
        opt = self.optimisers["local"]
        self._run(self._classifier_stage("local", s2.epochs, s2.lr, opt, forward, loss, s2.mixup, train_mode,
                                         monitor_forward=nets.classify, monitor_modules=[nets.local, enc]))

    def train_baseline(self) -> None:
        """The CNN baseline: the classifier trained on the images (cross-entropy)."""
        b, model = self.cfg.baseline, self.model
        assert model is not None
        wrapped = self._compiled(dist_.wrap(model, self.dinfo))

        def loss(out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
            value = nn.functional.cross_entropy(out.float(), y, label_smoothing=b.label_smoothing)
            return value, {"ce": value.item()}
        self._run(self._classifier_stage("baseline", b.epochs, b.lr, self.optimisers["baseline"], wrapped, loss,
                                         b.mixup, model.train, monitor_forward=model, monitor_modules=[model]))

    def _classifier_stage(self, name: str, epochs: int, lr: float, opt: torch.optim.Optimizer,
                          forward: Callable[[torch.Tensor], Any], loss: LossFn, mixup: float,
                          train_mode: Callable[[], None], monitor_forward: Callable[[torch.Tensor], Any],
                          monitor_modules: list[nn.Module]) -> _Stage:
        """A supervised stage (stage 2, the baseline): a :class:`ClassifyStep` per batch, mixup
        when ``mixup > 0``, the training accuracy, and with an inner validation set
        (``data.val_fraction`` > 0) each epoch's accuracy on it. Test faces are scored only after
        the last epoch (:meth:`evaluate`)."""
        step = ClassifyStep(forward, loss, opt, self.precision)
        dev = self.device

        def classify_batch(x: torch.Tensor, batch: Batch, gen: torch.Generator,
                           mix_rng: np.random.Generator) -> tuple[dict[str, float], int]:
            y = batch["label"].to(dev)
            step_loss = None
            if mixup > 0:
                x, y, step_loss = mixup_batch(x, y, loss, float(mix_rng.beta(mixup, mixup)), gen)
            terms, final = step(x, y, step_loss)
            return terms, int((final.argmax(1) == y).sum())

        def postfix(m: dict[str, float], acc: float) -> dict[str, str]:
            return {"loss": f"{m['loss']:.3f}", "acc": f"{acc:.1f}"}

        def validate() -> float:
            modes = [m.training for m in monitor_modules]
            for m in monitor_modules:
                m.eval()
            acc = self.validation_accuracy(monitor_forward)
            for m, t in zip(monitor_modules, modes):
                m.train(t)
            return acc
        return _Stage(name, epochs, lr, {name: opt}, train_mode, classify_batch, postfix, supervised=True,
                      validate=validate if len(self.split.val) else None)

    def validation_accuracy(self, forward: Callable[[torch.Tensor], Any]) -> float:
        """Accuracy (%) of ``forward`` (in eval mode) on the inner validation samples (the image
        model alone, scored like the test faces)."""
        pred = predict(forward, self.info, self.split.validation(), self.cfg, self.device)
        return float(100 * (pred["y_true"] == pred["y_pred"]).mean())

    # ------------------------------------------------------------------ the epoch loop
    def _run(self, st: _Stage) -> None:
        """Epochs of stage ``st`` from the one after the last checkpointed epoch of that stage
        (0 when the checkpoint is of an earlier stage) to ``st.epochs``; checkpoint after each."""
        cfg, dev = self.cfg, self.device
        start = self.epoch if self.stage == st.name else 0
        tf = make_transform(self.info, cfg, train=True)
        steps_per_epoch = None
        opts = list(st.optimisers.values())
        for epoch in range(start, st.epochs):
            loader, gen = self._loader(st.name, epoch)
            mix_rng = np.random.default_rng(gen.initial_seed())      # mixup's lambdas, repeatable per epoch
            steps_per_epoch = steps_per_epoch or max(1, len(loader))
            st.train_mode()
            meter, t0, n_img, correct = _Meter(), time.perf_counter(), 0, 0
            bar = self._bar(loader, f"fold {self.split.fold} {st.name} {epoch + 1}/{st.epochs}")
            for i, batch in enumerate(loader):
                set_lr(opts, lr_at(cfg.train.lr_schedule, st.lr, epoch * steps_per_epoch + i,
                                   st.epochs * steps_per_epoch))
                x = self._input(batch, tf, gen)
                terms, ok = st.step(x, batch, gen, mix_rng)
                self._check_finite(st.name, epoch, i, terms)
                correct += ok or 0
                meter.add(terms)
                n_img += x.shape[0]
                bar.update(x.shape[0])
                if self.on_images is not None:
                    self.on_images(x.shape[0] * self.dinfo.world_size)
                if i % cfg.runtime.log_every == 0:
                    bar.set_postfix(st.postfix(meter.means(), 100 * correct / n_img), refresh=False)
            bar.close()
            dt = time.perf_counter() - t0
            rec: dict[str, Any] = {"stage": st.name, "epoch": epoch + 1, **meter.means()}
            if st.supervised:
                rec["train_acc"] = 100 * correct / max(1, n_img)
            rec.update(seconds=dt, img_per_s=n_img * self.dinfo.world_size / max(dt, 1e-9),
                       lr=opts[0].param_groups[0]["lr"], **st.extra())
            if st.validate is not None and self.dinfo.main:
                rec["val_acc"] = st.validate()       # the inner validation subjects, never the test fold
            self.history.append(rec)
            self.stage, self.epoch = st.name, epoch + 1
            self.save({"stage": st.name, "epoch": epoch + 1,
                       "optimizers": {k: o.state_dict() for k, o in st.optimisers.items()}})
            self._tick()

    def save(self, payload: dict[str, Any], barrier: bool = True) -> None:
        """Write the checkpoint (rank 0): ``payload`` plus the weights, the GAN state, the
        configuration, the meta and the history; then wait for the other processes."""
        if self.dinfo.main:
            state = {"d_acc_ema": self.d_acc_ema} if self.d_acc_ema is not None else {}
            models = {k: dist_.unwrap(m).state_dict() for k, m in self.modules().items()}
            save_checkpoint(self.ckpt, {"models": models, "state": state, "config": self.cfg.to_dict(),
                                        "meta": self.meta(), "history": self.history, **payload})
        if barrier:
            dist_.barrier()

    # ------------------------------------------------------------------ helpers
    def _prepare(self, model: nn.Module) -> nn.Module:
        model.to(self.device)
        if self.cfg.train.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def _compiled(self, model: nn.Module) -> nn.Module:
        """``torch.compile(model, dynamic=False)`` with ``train.compile``, else ``model``. Used for the
        training forward passes only (checkpoints, evaluation and D's frozen copy in the G steps use
        the plain modules)."""
        if not self.cfg.train.compile:
            return model
        return torch.compile(model, dynamic=False)  # type: ignore[return-value]

    def _loader(self, stage: str, epoch: int) -> tuple[DataLoader, torch.Generator]:
        """A shuffled loader of the training samples for ``epoch`` and the CPU generator for its
        random draws; seeds torch's global RNG for the epoch."""
        cfg, d = self.cfg, self.dinfo
        ds = FacekitDataset(self.info, self.split.train, self.split.identity, cfg.runtime.cache,
                            views=self.split.views)
        seed = epoch_seed(cfg.train.seed, self.split.fold, stage, 0)
        sampler = DistributedSampler(ds, num_replicas=d.world_size, rank=d.rank, shuffle=True, seed=seed,
                                     drop_last=d.distributed)
        sampler.set_epoch(epoch)
        bs = max(1, cfg.train.batch_size // d.world_size)
        drop = len(sampler) > bs
        loader = DataLoader(ds, batch_size=bs, sampler=sampler, drop_last=drop, collate_fn=collate,
                            num_workers=cfg.runtime.num_workers, pin_memory=self.device.type == "cuda",
                            persistent_workers=False)
        es = epoch_seed(cfg.train.seed, self.split.fold, stage, epoch) + 7919 * d.rank
        torch.manual_seed(es)
        return loader, torch.Generator().manual_seed(es)

    def _bar(self, loader: DataLoader, desc: str) -> Any:
        from tqdm.auto import tqdm
        n = len(loader.sampler) if loader.sampler is not None else None   # type: ignore[arg-type]
        return tqdm(total=n, desc=desc, unit="img", leave=False, mininterval=1.0, position=self.bar_position,
                    disable=not (self.progress and self.dinfo.main), dynamic_ncols=True)

    def _input(self, batch: Batch, tf: BatchTransform, gen: torch.Generator) -> torch.Tensor:
        x = tf(batch["image"].to(self.device, non_blocking=True), generator=gen, view_index=batch.get("view"))
        if self.cfg.train.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _check_finite(self, stage: str, epoch: int, step: int, terms: dict[str, float]) -> None:
        if not all(math.isfinite(v) for v in terms.values()):
            raise NonFiniteLossError(stage, epoch, step, terms, str(self.ckpt) if self.ckpt.exists() else None)

    def _tick(self) -> None:
        self.epochs_run += 1
        if self.stop_after is not None and self.epochs_run >= self.stop_after:
            raise Interrupted(f"stopped after {self.epochs_run} epoch(s) (test hook)")


def train_fold(cfg: DeganConfig, info: FileInfo, fold: int, fold_dir: Path, *, resume: bool = False,
               pretrained: dict[str, Any] | None = None, stage1: dict[str, Any] | None = None,
               **kw: Any) -> FoldResult:
    """Train and evaluate one fold (:meth:`FoldTrainer.for_fold`, then :meth:`FoldTrainer.run`); writes
    ``fold_dir/{checkpoint.pt,metrics.json,history.json,predictions.csv,*.png}``.

    Raises:
        RunDirError: a checkpoint exists and ``resume`` is False.
        CheckpointError: the checkpoint is corrupt or from another configuration.
        NonFiniteLossError: a loss became NaN/inf (the last good checkpoint stays).
    """
    return FoldTrainer.for_fold(cfg, info, fold, Path(fold_dir), resume=resume, pretrained=pretrained,
                                stage1=stage1, **kw).run()
