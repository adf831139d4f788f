"""Expression transfer with a trained G: the expression of a face on a training identity.

``G_de(G_en(x), I, z=0)`` renders the expression of ``x`` on identity ``I``
(an index into the fold's training identities, or a subject name). Used by
``degan-synthesize`` and for the per-fold grid written during training.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facekit.augment import patch_offsets

from .checkpoint import load_generator
from .config import DeganConfig
from .data import FacekitDataset, FileInfo, FoldSplit, collate, make_transform
from .models import Generator
from .plots import FigureHook, save_image_grid, to_uint8

__all__ = ["synthesize", "synthesize_file", "write_fold_grid", "prepare_face", "resolve_identity", "identity_title"]


@torch.no_grad()
def synthesize(G: Generator, x: torch.Tensor, identities: list[int] | torch.Tensor) -> torch.Tensor:
    """x (B, C, S, S) in [-1, 1] -> (B, len(identities), C, S, S): each input on each identity, z = 0."""
    G.eval()
    f = G.encoder(x)
    ids = torch.as_tensor(identities, dtype=torch.long, device=x.device)
    outs = [G.decoder(f, ids[j].expand(x.shape[0])) for j in range(len(ids))]
    return torch.stack(outs, 1)


def _grid_identities(n_ids: int, k: int) -> list[int]:
    return sorted({int(round(v)) for v in np.linspace(0, n_ids - 1, min(k, n_ids))})


def identity_title(index: int, name: str) -> str:
    """The column title of a training identity: its index (``--identity N``) and its subject."""
    return f"identity {index}\n{name}"


@torch.no_grad()
def write_fold_grid(G: Generator, info: FileInfo, split: FoldSplit, cfg: DeganConfig, device: torch.device,
                    path: str | os.PathLike, max_rows: int = 7, *, run: str = "",
                    on_figure: FigureHook | None = None) -> Path:
    """PNG grid of expression transfer on fold ``split.fold`` (``run``: the run's name, for the title).

    Rows: one test face per class (the first of the class), labelled with its true class, its
    subject and its face index (``facekit preview FILE --source N``). Columns: the network's input,
    then the input's expression rendered by G (z = 0) on ``runtime.grid_identities`` training
    identities spread over their indices, each titled with its index and subject. Tiles are at
    least :data:`~degan.plots.MIN_TILE` pixels (nearest neighbour, :func:`degan.plots.save_image_grid`).
    """
    labels = info.label[split.test]
    rows_idx = [int(split.test[np.flatnonzero(labels == c)[0]]) for c in range(info.n_classes) if (labels == c).any()]
    rows_idx = rows_idx[:max_rows]
    ds = FacekitDataset(info, np.array(rows_idx), split.identity, cfg.runtime.cache)
    batch = collate(ds.__getitems__(list(range(len(ds)))))
    x = make_transform(info, cfg, train=False)(batch["image"].to(device))
    ids = _grid_identities(split.n_identities, cfg.runtime.grid_identities)
    was = G.training
    out = synthesize(G, x, ids).cpu().numpy()
    G.train(was)
    rows = [[to_uint8(x[i].cpu().numpy())] + [to_uint8(out[i, j]) for j in range(len(ids))] for i in range(len(x))]
    names = [info.label_names[int(info.label[r])] for r in rows_idx]
    details = [f"{info.subjects[int(info.subject[r])]} · face {int(info.face[r])}" for r in rows_idx]
    cols = ["input"] + [identity_title(i, split.identity_names[i]) for i in ids]
    title = "\n".join([f"{run + ', ' if run else ''}fold {split.fold}: expression transfer by G (z = 0)",
                       "rows: one test face per class (true class, subject · face index)",
                       "columns: the input, then its expression on training identities"])
    return save_image_grid(rows, path, cols, names, title=title, row_details=details, on_figure=on_figure)


def resolve_identity(identity: str | int, meta: dict[str, Any]) -> int:
    """An identity index, or a subject name of the fold's training identities -> index."""
    names: list[str] = list(meta["identity_names"])
    s = str(identity)
    if s in names:
        return names.index(s)
    try:
        i = int(s)
    except ValueError:
        raise ValueError(f"identity {s!r} is neither an index nor a training subject "
                         f"(e.g. {', '.join(names[:5])})") from None
    if not 0 <= i < len(names):
        raise ValueError(f"identity {i} out of range: the fold has {len(names)} training identities "
                         f"(0..{len(names) - 1})")
    return i


def prepare_face(image: np.ndarray, meta: dict[str, Any], image_size: int, aligned: bool,
                 model_path: str | None = None, path: str | os.PathLike = "<array>") -> np.ndarray:
    """An image -> the network's centre patch, (C, S, S) float in [-1, 1].

    ``aligned=True``: ``image`` is an aligned face-box crop (as ``AlignedFace.face``);
    otherwise the largest face is found with ``facekit.Landmarker`` and aligned
    with ``facekit.align_face`` into the face box the training file used. The patch is
    the centre patch of the geometry the run trained with (``meta["face_box"]``,
    ``meta["patch_size"]``, recorded from :meth:`degan.data.FileInfo.geometry`).
    """
    import cv2

    from facekit.imageio import to_gray, to_rgb
    channels = int(meta["channels"])
    box = int(meta["face_box"][2]) or int(image.shape[0])
    patch = int(meta["patch_size"]) or box
    if not aligned:
        import facekit
        from facekit.errors import NoFaceError
        try:
            with facekit.Landmarker(model_path) as lm:
                face = lm.detect(to_rgb(image), path=path)
        except NoFaceError:
            raise NoFaceError(path, "no face found; pass --aligned if it is an already aligned face crop") from None
        image = facekit.align_face(image, face.landmarks, size=box, margin=0, grayscale=channels == 1).face
    img = to_gray(image) if channels == 1 else to_rgb(image)
    img = cv2.resize(img, (box, box), interpolation=cv2.INTER_AREA if img.shape[0] > box else cv2.INTER_LINEAR)
    ox, oy = patch_offsets(box, patch)[0]                 # the centre patch
    img = img[oy:oy + patch, ox:ox + patch]
    img = cv2.resize(img, (image_size, image_size), interpolation=cv2.INTER_AREA if patch > image_size else
                     cv2.INTER_LINEAR)
    x = img.astype(np.float32) / 127.5 - 1.0
    return x[None] if x.ndim == 2 else np.transpose(x, (2, 0, 1))


def synthesize_file(run_dir: str | os.PathLike, image_path: str | os.PathLike, identities: list[str],
                    out: str | os.PathLike, *, fold: int | None = None, aligned: bool = False,
                    with_input: bool = False, raw: bool = False, device: str | None = None,
                    model_path: str | None = None, on_figure: FigureHook | None = None) -> Path:
    """Read ``image_path``, render its expression on ``identities``, write an image at ``out``.

    By default a labelled figure (:func:`degan.plots.save_image_grid`): the network's input (the
    aligned centre patch it sees), then one tile per identity titled with its index and subject,
    each at least :data:`~degan.plots.MIN_TILE` pixels (nearest neighbour), under a title that
    names the run, the fold and the image. ``raw``: the network's pixels only, no labels, at its
    input size: the synthesised image alone for one identity without ``with_input``, otherwise a
    strip [input,] one image per identity. Written atomically; the format follows the suffix.
    """
    import cv2

    from facekit.imageio import read_image
    from facekit.store import atomic_output
    from . import distributed
    dev = distributed.pick_device(device)
    G, meta, cfg = load_generator(run_dir, fold, dev)
    img = read_image(image_path)
    x = torch.from_numpy(prepare_face(img, meta, cfg.arch.image_size, aligned, model_path, image_path))[None].to(dev)
    ids = [resolve_identity(i, meta) for i in identities]
    y = synthesize(G, x, ids)[0].cpu().numpy()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    x_img, tiles = to_uint8(x[0].cpu().numpy()), [to_uint8(t) for t in y]
    if not raw:
        names = list(meta["identity_names"])
        title = "\n".join([f"{Path(run_dir).resolve().name}, fold {meta['fold']}: expression transfer by G (z = 0)",
                           f"input: {Path(image_path).name} as the network sees it",
                           "columns: the input, then its expression on training identities"])
        return save_image_grid([[x_img, *tiles]], out, ["input", *[identity_title(i, names[i]) for i in ids]],
                               title=title, on_figure=on_figure)
    strip = np.concatenate(([x_img] if with_input else []) + tiles, axis=1)
    if strip.ndim == 3:
        strip = cv2.cvtColor(strip, cv2.COLOR_RGB2BGR)
    try:
        ok, data = cv2.imencode(out.suffix, strip)
    except cv2.error:
        ok = False
    if not ok:
        raise OSError(f"{out}: could not write the image (unknown extension?)")
    with atomic_output(out) as tmp:
        Path(tmp).write_bytes(data.tobytes())
    return out
