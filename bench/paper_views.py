#!/usr/bin/env python
"""The paper's 110 views rendered by degan from a canvas file, against the copies facekit stores.

``degan-train --preset paper`` on a file prepared with ``--augment none`` renders each training
face's 110 views (5 crops x 11 angles x mirror, :func:`facekit.augment.sample_views`) with one
``grid_sample`` per batch (:class:`degan.data.BatchTransform`). This script checks that those
renders are the copies ``facekit prepare --augment paper`` stores (``cv2.warpAffine`` per angle,
then slices; :func:`facekit.augment.augment_face`), and times both:

    python bench/paper_views.py ck48.h5                          # vs augment_face on the same canvases
    python bench/paper_views.py ck48.h5 --stored ck48-paper.h5   # vs a 110x file of the same faces

Prints JSON: the mean and largest absolute pixel difference (0-255 levels) over all views and
over the un-rotated ones, the worst view, and rendering vs ``augment_face`` in views per second
(the naive baseline: what preparing the 110x file does per face). The renders are made at the
patch's own size (no resize), so the two are compared pixel for pixel.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _stored_views(stored: Path, sources: list[str]) -> dict[str, np.ndarray]:
    """source -> (110, P, P[, 3]) uint8: the stored copies of each face in sample_views order."""
    from facekit.augment import sample_views
    from facekit.store import open_facekit

    from degan.data import read_rows
    order = {(int(p), float(a), int(f)): k for k, (p, a, f) in enumerate(zip(*sample_views()))}
    with open_facekit(stored) as fk:
        face_source = [str(s) for s in fk.column("faces/source")]
        face = fk.column("samples/face")
        patch, angle, flip = fk.column("samples/patch"), fk.column("samples/angle"), fk.column("samples/flip")
        wanted = {s: i for i, s in enumerate(face_source) if s in set(sources)}
        out = {}
        for src in sources:
            if src not in wanted:
                raise SystemExit(f"error: {stored}: has no face from {src}")
            rows = np.flatnonzero(face == wanted[src])
            keys = [order[(int(patch[r]), float(angle[r]), int(flip[r]))] for r in rows]
            out[src] = read_rows(fk.images, rows[np.argsort(keys)])
    return out


def compare(canvas_file: Path, stored: Path | None = None, n_faces: int = 100, device: str = "cpu",
            chunk: int = 5) -> dict[str, Any]:
    """Render the 110 views of ``n_faces`` faces of ``canvas_file`` (evenly spaced) and compare
    them with the copies ``facekit.augment.augment_face`` cuts from the same canvases, or with
    ``stored``'s copies of the same faces (matched by source path); ``chunk`` faces at a time."""
    import torch

    from facekit.augment import AugmentConfig, augment_face, sample_views
    from facekit.store import open_facekit

    from degan.config import Data
    from degan.data import BatchTransform, read_file_info, read_rows
    info = read_file_info(canvas_file)
    if info.stored_augmentation:
        raise SystemExit(f"error: {canvas_file}: stores augmented patches; give a file prepared with --augment none")
    geo = info.geometry()
    patch, angle, flip = sample_views()
    n_views = len(patch)
    tf = BatchTransform(geo, Data(augment="paper"), geo.patch_size, train=True)
    cfg = AugmentConfig(patch_size=geo.patch_size)
    dev = torch.device(device)
    rows = np.unique(np.linspace(0, info.n_samples - 1, min(n_faces, info.n_samples)).round().astype(np.int64))
    with open_facekit(canvas_file) as fk:
        face_source = fk.column("faces/source")
        sources = [str(face_source[int(info.face[r])]) for r in rows]
    sums = np.zeros(n_views)                      # per view: summed absolute difference
    max_view = np.zeros(n_views)
    n_px = 0
    stored_vs_cut = 0.0
    t_render = t_cut = 0.0
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        with open_facekit(canvas_file) as fk:
            canvases = read_rows(fk.images, part)
        imgs = torch.from_numpy(canvases)
        imgs = imgs.unsqueeze(1) if imgs.ndim == 3 else imgs.permute(0, 3, 1, 2)
        t0 = time.perf_counter()
        it = torch.arange(len(part) * n_views)
        x = tf(imgs[it // n_views].to(dev), view_index=it % n_views)
        rendered = ((x + 1) * 127.5).cpu().numpy().astype(np.float64)        # (F*110, C, P, P)
        t_render += time.perf_counter() - t0
        t0 = time.perf_counter()
        cut = np.stack([augment_face(c, geo.face_box, cfg).images for c in canvases])   # (F, 110, P, P[, 3])
        t_cut += time.perf_counter() - t0
        reference = cut
        if stored is not None:
            reference = np.stack(list(_stored_views(stored, sources[start:start + chunk]).values()))
            stored_vs_cut = max(stored_vs_cut, float(np.abs(cut.astype(np.int16) - reference.astype(np.int16)).max()))
        ref = reference.reshape(len(part) * n_views, *reference.shape[2:]).astype(np.float64)
        ref = ref[:, None] if ref.ndim == 3 else ref.transpose(0, 3, 1, 2)
        d = np.abs(rendered - ref).reshape(len(part), n_views, -1)
        sums += d.sum(axis=(0, 2))
        max_view = np.maximum(max_view, d.max(axis=(0, 2)))
        n_px += len(part) * d.shape[2]
    per_view = sums / n_px
    worst = int(per_view.argmax())
    unrot = angle == 0
    if dev.type == "cuda":
        torch.cuda.synchronize()
    out: dict[str, Any] = {
        "benchmark": "paper_views", "file": str(canvas_file), "reference": str(stored) if stored else
        "facekit.augment.augment_face on the same canvases", "faces": int(len(rows)), "views_per_face": n_views,
        "canvas": int(geo.sample_size), "face_box": list(geo.face_box), "patch_size": int(geo.patch_size),
        "mean_abs_diff": float(per_view.mean()), "max_abs_diff": float(max_view.max()),
        "unrotated_mean_abs_diff": float(per_view[unrot].mean()),
        "unrotated_max_abs_diff": float(max_view[unrot].max()),
        "rotated_mean_abs_diff": float(per_view[~unrot].mean()),
        "worst_view": {"index": worst, "patch": int(patch[worst]), "angle": float(angle[worst]),
                       "flip": int(flip[worst]), "mean_abs_diff": float(per_view[worst])},
        "device": str(dev), "render_views_per_s": float(len(rows) * n_views / max(t_render, 1e-9)),
        "augment_face_views_per_s": float(len(rows) * n_views / max(t_cut, 1e-9))}
    if stored is not None:
        out["augment_face_vs_stored_max_abs_diff"] = stored_vs_cut
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("canvas_file", type=Path, help="a facekit file prepared with --augment none")
    ap.add_argument("--stored", type=Path, default=None, help="a file of the same faces prepared with --augment paper")
    ap.add_argument("--faces", type=int, default=100, help="faces to compare (evenly spaced) [100]")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    a = ap.parse_args(argv)
    res = compare(a.canvas_file, a.stored, a.faces, a.device)
    text = json.dumps(res, indent=2)
    print(text)
    if a.out is not None:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
