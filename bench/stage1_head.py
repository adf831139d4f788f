#!/usr/bin/env python
"""Accuracy of DE-GAN's stage-1 expression head (``--set stage1.expr_weight=W``) on each test fold.

A run trained with ``expr_weight > 0`` keeps a linear head on f(x) in G; stage 2 does not
use it for predictions. This scores ``head(G_en(x))`` on the test faces of every finished
fold (the centre view, as the reported numbers), prints JSON (per-fold and mean accuracy),
and with ``--out DIR`` writes ``DIR/fold_XX/predictions.csv`` so that
``bench/compare_runs.py`` can compare it face by face with other runs.

    python bench/stage1_head.py .bench/ck/runs/degan-expr1 --out .bench/ck/runs/degan-expr1-head
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from degan.checkpoint import build_networks, check_checkpoint_data, checkpoint_config, load_checkpoint  # noqa: E402
from degan.data import make_split, read_file_info  # noqa: E402
from degan.data.fingerprint import data_fingerprint  # noqa: E402
from degan.predict import predict, write_predictions  # noqa: E402


def head_accuracy(run_dir: Path, out: Path | None = None, data: str | None = None) -> dict[str, object]:
    """Per-fold accuracy (%) of the stage-1 expression head of the run in ``run_dir`` (on ``data``,
    which must be the data each checkpoint records it was trained on, when it records one)."""
    run_cfg = json.loads((run_dir / "config.json").read_text())
    info = read_file_info(data or run_cfg["data"])
    fingerprint = data_fingerprint(info)
    folds: dict[int, float] = {}
    for ck in sorted(run_dir.glob("fold_*/checkpoint.pt")):
        state = load_checkpoint(ck, "cpu")
        if state.get("stage") != "done":
            continue
        check_checkpoint_data(state, fingerprint, ck)
        cfg = checkpoint_config(state, ck)
        if cfg.stage1.expr_weight <= 0:
            raise SystemExit(f"{ck}: trained with stage1.expr_weight=0, so it has no stage-1 expression head")
        meta = state["meta"]
        G = build_networks(state, "cpu", ck).G                  # type: ignore[union-attr]
        head = G.expr_head
        assert head is not None

        def forward(x: torch.Tensor) -> torch.Tensor:
            return head(G.encoder(x))

        fold = int(meta["fold"])
        split = make_split(info, fold, cfg)
        with torch.no_grad():
            pred = predict(forward, info, split, cfg, torch.device("cpu"))
        folds[fold] = float(100 * np.mean(pred["y_true"] == pred["y_pred"]))
        if out is not None:
            (out / f"fold_{fold:02d}").mkdir(parents=True, exist_ok=True)
            write_predictions(out / f"fold_{fold:02d}" / "predictions.csv", pred, info)
    acc = np.array(list(folds.values()))
    return {"run": str(run_dir), "folds": folds, "mean": float(acc.mean()) if len(acc) else None,
            "std": float(acc.std()) if len(acc) else None}   # population std, as degan-train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="write fold_XX/predictions.csv here")
    ap.add_argument("--data", default=None, help="the facekit file [default: the run's]")
    a = ap.parse_args()
    print(json.dumps(head_accuracy(a.run, a.out, a.data), indent=2))


if __name__ == "__main__":
    main()
