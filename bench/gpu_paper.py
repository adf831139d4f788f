#!/usr/bin/env python
"""DE-GAN stage 1 with the faithful ``paper`` preset on one fold, for as many paper-length epochs
as a time budget allows: do the paper's losses alone (Eq. 1 and 2: no reconstruction term, no
expression head) produce recognisable expression transfers at full width?

    facekit prepare folder CK+48 ck48.h5 --subject-regex '^(S\\d+)_' --augment none
    facekit folds ck48.h5 --k 10
    python bench/gpu_paper.py ck48.h5 --budget-s 480 --out out/paper        # on a GPU

Settings: ``--preset paper`` with ``--no-pretrain`` (no BU-4DFE file here; recorded as a
deviation), so one epoch is every training face of the fold x its 110 views (rendered from the
canvases): on CK+48 fold 0, 885 faces x 110 / 150 = 649 steps. ``--set section.field=value``
changes a setting (for tests on a CPU; every change is recorded with the deviations).

The budget is the script's whole wall time, start-up and data included. Epochs run while the
next one is expected to end ``--reserve-s`` before the budget (expected from the mean epoch so
far; the first epoch always starts); a step-level guard stops an epoch that would overrun, and
that partial epoch is recorded as such. Written to ``--out`` (rewritten after every epoch, so
a killed run keeps what it had):

* ``gpu_paper.json``: the device, the timings of start-up and data, the fold's faces, views,
  batch and steps per epoch, and per epoch D's real/fake accuracy (mean over the epoch's D
  steps and its running EMA), G's identity and expression losses (Eq. 2's two terms), D's
  three loss terms, G steps per D step, the training loop's seconds and images/s, and the
  epoch's wall time with its checkpoint and grid; why it stopped ("epochs", "budget", or a
  non-finite loss, which also makes the exit status 1);
* ``synthesis_epoch_NNN.png`` after every epoch and ``synthesis.png`` at the end: one test
  face per class (rows), its expression on several training identities (columns).

The fold's checkpoint (rewritten after every epoch) goes to ``--work``, outside ``--out``.
"""
from __future__ import annotations

import time

T_START = time.perf_counter()            # the budget counts from here (imports included)

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: what a stage-1 epoch's history record holds that this script reports
EPOCH_KEYS = ("d_acc", "d_acc_ema", "g_id", "g_expr", "d_expr", "d_id", "d_fake", "g_steps", "seconds", "img_per_s")


class BudgetSpent(Exception):
    """Raised between two training steps when the time budget is spent."""


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def _say(msg: str) -> None:
    print(f"[{time.perf_counter() - T_START:6.1f} s] {msg}", file=sys.stderr, flush=True)


def run(data: Path, out: Path, *, fold: int = 0, budget_s: float = 480.0, reserve_s: float = 20.0,
        device: str | None = None, overrides: list[str] | None = None, work: Path | None = None) -> dict[str, Any]:
    """Train stage 1 of ``fold`` with the paper preset (no pre-training) until the budget is spent or
    stage 1's epochs are done; write ``out/gpu_paper.json`` and the synthesis grids; return the report."""
    import torch

    from degan import distributed
    from degan.config import parse_overrides
    from degan.data import make_split, read_file_info
    from degan.deviations import deviations
    from degan.errors import NonFiniteLossError
    from degan.presets import get_preset
    from degan.synthesize import write_fold_grid
    from degan.train import FoldTrainer, steps_per_epoch

    deadline = T_START + budget_s - reserve_s
    out.mkdir(parents=True, exist_ok=True)
    dinfo = distributed.setup(device)
    dev = dinfo.device
    cfg = parse_overrides(get_preset("paper").replace({"stage1.pretrain": False}), list(overrides or []))
    report: dict[str, Any] = {
        "benchmark": "gpu_paper", "data": str(data), "fold": fold, "budget_s": budget_s, "reserve_s": reserve_s,
        "device": str(dev), "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else
        platform.processor() or platform.machine(), "torch": torch.__version__, "python": platform.python_version(),
        "preset": cfg.preset, "settings": cfg.to_dict(), "deviations": [d.to_dict() for d in deviations(cfg)],
        "startup_s": time.perf_counter() - T_START}
    t0 = time.perf_counter()
    info = read_file_info(data)
    split = make_split(info, fold, cfg)
    work = work or Path(tempfile.mkdtemp(prefix="gpu_paper-"))
    images = [0]

    def guard(n: int) -> None:
        images[0] += n
        if time.perf_counter() > deadline:
            raise BudgetSpent
    trainer = FoldTrainer(cfg, info, split, work / f"fold_{fold:02d}", dinfo=dinfo, progress=False, on_images=guard)
    n_faces = len(set(info.face[split.train].tolist()))
    report.update(
        data_s=time.perf_counter() - t0, n_train_faces=n_faces, n_train_samples=int(len(split.train)),
        views_per_sample=split.views, items_per_epoch=split.n_train_items, batch_size=cfg.train.batch_size,
        steps_per_epoch=steps_per_epoch(split.n_train_items, cfg.train.batch_size, dinfo.world_size),
        n_identities=split.n_identities, stage1_epochs=cfg.stage1.epochs, epochs=[], partial_epoch=None)
    _say(f"{dev}: fold {fold}, {n_faces} training faces x {split.views} views = {split.n_train_items} items, "
         f"{report['steps_per_epoch']} steps of {cfg.train.batch_size} per epoch")
    _write_json(out / "gpu_paper.json", report)
    t_train = time.perf_counter()
    stopped = "epochs"
    for epoch in range(1, cfg.stage1.epochs + 1):
        done = report["epochs"]
        if done:
            expected = sum(e["wall_s"] for e in done) / len(done)      # training, checkpoint and grid
            if time.perf_counter() + expected > deadline:
                stopped = "budget"
                break
        images[0], t_epoch = 0, time.perf_counter()
        try:
            trainer.train_gan(epochs=epoch)
        except BudgetSpent:
            report["partial_epoch"] = {"epoch": epoch, "images": images[0],
                                       "steps": images[0] // max(1, cfg.train.batch_size),
                                       "seconds": time.perf_counter() - t_epoch}
            stopped = "budget"
            _say(f"epoch {epoch}: budget spent after {images[0]} images; stopped")
            break
        except NonFiniteLossError as exc:          # a result too: the paper's losses diverged
            stopped = f"non-finite loss: {exc}"
            _say(stopped)
            break
        h = trainer.history[-1]
        rec = {"epoch": epoch, **{k: h.get(k) for k in EPOCH_KEYS}, "images": images[0]}
        assert trainer.nets is not None
        grid = f"synthesis_epoch_{epoch:03d}.png"
        write_fold_grid(trainer.nets.G, info, split, cfg, dev, out / grid)
        rec["grid"] = grid
        rec["wall_s"] = time.perf_counter() - t_epoch
        done.append(rec)
        report.update(train_s=time.perf_counter() - t_train, stopped=stopped)
        _write_json(out / "gpu_paper.json", report)
        _say(f"epoch {epoch}: D real/fake acc {rec['d_acc']:.3f} (EMA {rec['d_acc_ema']:.3f}), G identity loss "
             f"{rec['g_id']:.3f}, G expression loss {rec['g_expr']:.3f}, {rec['img_per_s']:.0f} img/s")
    assert trainer.nets is not None
    write_fold_grid(trainer.nets.G, info, split, cfg, dev, out / "synthesis.png")
    train_s = time.perf_counter() - t_train
    total_images = sum(e["images"] for e in report["epochs"]) + (report["partial_epoch"] or {}).get("images", 0)
    report.update(stopped=stopped, train_s=train_s, images_trained=total_images,
                  img_per_s=total_images / max(train_s, 1e-9), synthesis="synthesis.png",
                  synthesis_after=("a partial epoch" if report["partial_epoch"] else
                                   f"epoch {len(report['epochs'])}" if report["epochs"] else "no training"),
                  total_s=time.perf_counter() - T_START)
    if dev.type == "cuda":
        report["max_memory_allocated_gib"] = torch.cuda.max_memory_allocated(dev) / 2 ** 30
    _write_json(out / "gpu_paper.json", report)
    _say(f"done: {len(report['epochs'])} full epoch(s) in {train_s:.0f} s ({stopped}); {out / 'gpu_paper.json'}")
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="a facekit file with folds (CK+48 prepared with --augment none)")
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--budget-s", type=float, default=480.0, help="wall time of the whole script [480]")
    ap.add_argument("--reserve-s", type=float, default=20.0, help="kept for the last grid and the JSON [20]")
    ap.add_argument("--device", default=None, help="cuda, cpu, ... [CUDA when there is one]")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    ap.add_argument("--out", type=Path, default=Path("gpu_paper"), help="where the JSON and the grids go")
    ap.add_argument("--work", type=Path, default=None, help="where the fold's checkpoint goes [a temporary folder]")
    a = ap.parse_args(argv)
    from facekit.errors import FacekitError
    try:
        report = run(a.data, a.out, fold=a.fold, budget_s=a.budget_s, reserve_s=a.reserve_s, device=a.device,
                     overrides=a.overrides, work=a.work)
    except (FacekitError, ValueError, OSError) as exc:      # degan's refusals (no folds, settings, device) and I/O
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if report["stopped"].startswith("non-finite") else 0


if __name__ == "__main__":
    sys.exit(main())
