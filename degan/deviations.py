"""Where a configuration departs from the paper: one row per field, with what the departure means.

The paper's settings are :class:`~degan.config.DeganConfig`'s defaults (the ``paper`` preset), so
a departure is a field whose value differs from its default::

    from degan.deviations import deviations, preset_table
    [row.field for row in deviations(get_preset("cpu"))]    # ["arch.image_size", ...]
    print(preset_table())                                    # the docs' table (markdown)

:func:`deviations` describes one run's configuration (``degan-train`` records it in
``config.json`` and the run's ``metrics.json``); :func:`preset_table` is the table of every
preset's departures in docs/degan.md, generated from :func:`degan.presets.preset_changes` and
checked against the docs by the tests (``python -m degan.deviations --write docs/degan.md``
rewrites it there).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import DeganConfig

__all__ = ["Deviation", "deviations", "MEANINGS", "NOT_DEVIATIONS", "preset_table", "format_value",
           "TABLE_BEGIN", "TABLE_END", "replace_table"]

#: fields whose value is never a departure from the paper's method: the seed, and the ``runtime``
#: section (how the work is carried out; no field there changes a result)
NOT_DEVIATIONS: tuple[str, ...] = ("train.seed", "runtime")

#: what each field is, or for a few fields what each value means (``{value: text}``)
MEANINGS: dict[str, str | dict[Any, str]] = {
    "arch.image_size": "network input side in pixels (patches are resized to it)",
    "arch.width": "channel multiplier of the CASIA-Net layers of G, D and the baseline",
    "arch.feat_dim": "length of the expression representation f(x)",
    "arch.noise_dim": "length of the noise z given to G_de",
    "arch.init_std": "standard deviation of the initial weights",
    "train.seed": "random seed",
    "train.batch_size": "images per training step (all processes together)",
    "train.beta1": "Adam's beta1",
    "train.beta2": "Adam's beta2",
    "train.weight_decay": "L2 weight decay in Adam",
    "train.lr_schedule": {"constant": "constant learning rate",
                          "cosine": "learning rate annealed to 0 by a cosine over each stage; the paper keeps "
                                    "it constant"},
    "train.amp": "mixed precision (bf16 autocast) on CUDA",
    "train.channels_last": "NHWC tensors (speed; the same model)",
    "train.compile": "torch.compile of the training forward passes (speed; the same model)",
    "stage1.epochs": "stage-1 (GAN) epochs",
    "stage1.lr": "stage-1 learning rate (G and D)",
    "stage1.g_steps": "G updates per D update while D is near optimal",
    "stage1.d_strong_threshold": "D's running real/fake accuracy above which G gets more updates",
    "stage1.d_acc_momentum": "momentum of that running accuracy",
    "stage1.identity_code": {"random": "G's target identity I is a random training identity",
                             "own": "G's target identity I is the input's own identity"},
    "stage1.recon_weight": "weight of an L1 reconstruction term in G's loss (not in the paper: Eq. 2 has only "
                           "the adversarial terms)",
    "stage1.recon_fraction": "share of each batch that must reconstruct its input (with recon_weight > 0)",
    "stage1.expr_weight": "weight of a supervised expression head on f(x) in G's loss (not in the paper)",
    "stage1.pretrain": {True: "stage 1 starts from a pre-training on another file (--pretrain FILE; the paper "
                              "uses BU-4DFE)",
                        False: "stage 1 starts from random weights, without the paper's pre-training on "
                               "BU-4DFE"},
    "stage1.pretrain_epochs": "pre-training epochs (0 = as many as stage 1)",
    "stage2.epochs": "stage-2 (local CNNs + fused classifier) epochs",
    "stage2.lr": "stage-2 learning rate",
    "stage2.local_width": "channel multiplier of the local CNNs (their layers are not in the paper)",
    "stage2.local_hidden": "size of each local CNN's last fully connected layer",
    "stage2.local_depth": "conv layers per resolution in a local CNN",
    "stage2.weights": "weights of L1..L4 and L5 in L_total",
    "stage2.fuse": {"hidden": "f(x) fused with each local CNN's last FC layer",
                    "logits": "f(x) fused with each local CNN's class scores"},
    "stage2.fuse_detach": "no L5 gradients into the local CNNs",
    "stage2.dropout": "dropout before the stage-2 classifiers (not in the paper)",
    "stage2.label_smoothing": "label smoothing of the stage-2 losses (not in the paper)",
    "stage2.mixup": "mixup on stage 2 (not in the paper)",
    "stage2.synth_fraction": "share of each stage-2 batch replaced by G's synthesised images (not in the paper)",
    "stage2.encoder_lr_scale": "G_en trained in stage 2 at this fraction of the learning rate (the paper "
                               "freezes it)",
    "baseline.epochs": "baseline epochs (not given by the paper)",
    "baseline.lr": "baseline learning rate",
    "baseline.network": {"encoder": "G_en + linear classifier",
                         "cnn3": "a plain 3-block CNN instead of the paper's G_en + linear"},
    "baseline.dropout": "dropout before the baseline's classifier (not in the paper)",
    "baseline.label_smoothing": "label smoothing of the baseline's loss (not in the paper)",
    "baseline.mixup": "mixup on the baseline (not in the paper)",
    "data.augment": {"paper": "an epoch is every training face x its 110 paper views (5 crops x 11 angles x "
                              "mirror): a 110x file's stored copies, or rendered from the canvas",
                     "auto": "a 110x file's stored copies; a canvas file gives one random view per face per "
                             "epoch (any angle in ±rotate_deg, any crop position, mirror): an epoch is 110x "
                             "shorter than the paper's",
                     "online": "one random view per face per epoch (any angle, crop position, mirror): an "
                               "epoch is 110x shorter than the paper's",
                     "stored": "a 110x file's stored copies; a canvas file's centre crop only",
                     "off": "no augmentation: each face's centre crop"},
    "data.patch_size": "crop side in the face box (0 = the file's)",
    "data.rotate_deg": "online augmentation: largest rotation",
    "data.crop_jitter": "online augmentation: random crop position",
    "data.flip": "online augmentation: random mirror",
    "data.scale_jitter": "online augmentation: random zoom (not in the paper)",
    "data.val_fraction": "share of the training subjects held out as an inner validation set (not trained on)",
    "eval.test_views": {"centre": "a test face is scored on its centre crop",
                        "mirror": "a test face is scored by the mean of its centre crop and its mirror image",
                        "all": "a test face is scored by the mean over its 110 views"},
    "eval.geometry_weight": "weight of the geometric expert (landmark logistic regression) fused with the "
                            "prediction (not in the paper)",
    "eval.geometry_c": "the geometric expert's inverse L2 strength",
    "runtime.cache": "images kept in memory (does not change results)",
    "runtime.num_workers": "DataLoader workers (does not change results)",
    "runtime.log_every": "steps between progress updates (does not change results)",
    "runtime.grid_identities": "identities per row of the synthesis grid (does not change results)",
}


@dataclass(frozen=True)
class Deviation:
    """One field where a configuration departs from the paper: its paper value, its value, and
    what the value means."""

    field: str
    paper: Any
    value: Any
    meaning: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples as lists)."""
        def plain(v: Any) -> Any:
            return list(v) if isinstance(v, tuple) else v
        return {"field": self.field, "paper": plain(self.paper), "value": plain(self.value), "meaning": self.meaning}


def meaning(name: str, value: Any) -> str:
    """What ``value`` of field ``name`` ("section.field") means (:data:`MEANINGS`)."""
    m = MEANINGS[name]
    if isinstance(m, dict):
        return m.get(value, f"{name} = {format_value(value)}")
    return m


def _counts(name: str, sections: Sequence[str]) -> bool:
    return name.split(".")[0] in sections and name not in NOT_DEVIATIONS \
        and name.split(".")[0] not in NOT_DEVIATIONS


def deviations(cfg: DeganConfig, *, sections: Sequence[str] | None = None) -> list[Deviation]:
    """Every field in which ``cfg`` differs from the paper (:class:`DeganConfig`'s defaults), in
    section order: by default in the sections ``cfg``'s method reads (:data:`degan.config.READS`);
    never ``train.seed`` or the ``runtime`` section (:data:`NOT_DEVIATIONS`)."""
    sections = tuple(sections) if sections is not None else cfg.sections_read
    paper, mine = DeganConfig().flat(), cfg.flat()
    return [Deviation(k, paper[k], v, meaning(k, v)) for k, v in mine.items()
            if k not in ("preset", "method") and _counts(k, sections) and paper[k] != v]


def format_value(v: Any) -> str:
    """A field value as the docs show it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, tuple):
        return ", ".join(format_value(x) for x in v)
    return str(v)


#: the markers around the generated table in docs/degan.md
TABLE_BEGIN = "<!-- deviation table: generated by `python -m degan.deviations --write docs/degan.md` -->"
TABLE_END = "<!-- end of deviation table -->"


def preset_table(names: Sequence[str] | None = None) -> str:
    """Markdown table of every field in which a preset of ``names`` (default: every preset but
    ``paper``) differs from ``paper``, from :func:`degan.presets.preset_changes`: the field, the
    paper's value, each preset's value (``=`` where it keeps the paper's), and what it means
    (for a field with value-specific meanings, the meaning of each preset's value)."""
    from .presets import list_presets, preset_changes
    names = [n for n in list_presets() if n != "paper"] if names is None else list(names)
    changes = {n: preset_changes(n) for n in names}
    paper = DeganConfig().flat()
    order = [k for k in paper if any(k in c for c in changes.values())]
    lines = ["| field | `paper` | " + " | ".join(f"`{n}`" for n in names) + " | what it means |",
             "|---|---|" + "---|" * len(names) + "---|"]
    for k in order:
        cells = [format_value(changes[n][k][1]) if k in changes[n] else "=" for n in names]
        m = MEANINGS[k]
        if isinstance(m, dict):
            text = "; ".join(f"{format_value(v)}: {m[v]}" for v in dict.fromkeys(
                changes[n][k][1] for n in names if k in changes[n]))
        else:
            text = m
        lines.append(f"| `{k}` | {format_value(paper[k])} | " + " | ".join(cells) + f" | {text} |")
    return "\n".join(lines)


def replace_table(text: str, table: str) -> str:
    """``text`` (docs/degan.md) with the block between :data:`TABLE_BEGIN` and :data:`TABLE_END`
    replaced by ``table``; ``ValueError`` when the markers are missing."""
    start, end = text.find(TABLE_BEGIN), text.find(TABLE_END)
    if start < 0 or end < start:
        raise ValueError("no deviation table markers")
    return text[:start + len(TABLE_BEGIN)] + "\n" + table + "\n" + text[end:]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m degan.deviations",
                                 description="Print the presets' deviation table (markdown), or check / rewrite "
                                             "it in a docs file.")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--check", type=Path, metavar="DOC", help="exit 1 when DOC's table differs from the presets")
    group.add_argument("--write", type=Path, metavar="DOC", help="rewrite DOC's table from the presets")
    a = ap.parse_args(argv)
    table = preset_table()
    if a.check is None and a.write is None:
        print(table)
        return 0
    doc = a.check or a.write
    text = doc.read_text()
    try:
        new = replace_table(text, table)
    except ValueError as exc:
        print(f"error: {doc}: {exc}", file=sys.stderr)
        return 2
    if a.write is not None:
        if new != text:
            doc.write_text(new)
        return 0
    if new != text:
        print(f"error: {doc}: the deviation table differs from the presets; run python -m degan.deviations "
              f"--write {doc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
