"""``facekit prepare``: a released dataset folder -> one HDF5 file for training."""
from __future__ import annotations

import json
from pathlib import Path

import click

from facekit.datasets import dataset_class
from facekit.errors import UnknownDatasetError, WorkerDiedError
from facekit.prepare import AUGMENT_MODES, NothingUsableError, PrepareConfig, parse_shard, prepare
from facekit.prepare.config import DEFAULT_MAX_PIXELS, MAX_FACE_SIZE, parse_pixels
from facekit.store import schema

from ._common import fail, json_option, landmarker_option, quiet_option, reported_errors
from .facekit import main


def _typed(value: str, default: object) -> object:
    if isinstance(default, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true/false, got {value!r}")
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    return value


def _options(dataset: str, pairs: tuple[str, ...], subject_regex: str | None) -> dict[str, object]:
    cls = dataset_class(dataset)
    opts: dict[str, object] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--option expects KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        key = key.strip().replace("-", "_")
        if key not in cls.options:
            known = ", ".join(sorted(cls.options)) or "none"
            raise ValueError(f"dataset {cls.name!r} has no option {key!r} (options: {known})")
        opts[key] = _typed(value, cls.options[key])
    if subject_regex is not None:
        if "subject_regex" not in cls.options:
            raise ValueError(f"--subject-regex applies to the folder adapter, not {cls.name!r}")
        opts["subject_regex"] = subject_regex
    return opts


@main.command("prepare")
@click.argument("dataset", metavar="DATASET")
@click.argument("root", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--frames", metavar="SPEC", help="Frame selection: last:N, middle:N, first:N or all "
              "[default: the dataset's, e.g. last:3 for ck+].")
@click.option("--augment", type=click.Choice(AUGMENT_MODES), default="paper", show_default=True,
              help="paper: 5 crops x 11 rotations x flip = 110 samples per face; none: aligned faces only.")
@click.option("--subject-regex", metavar="REGEX", help="folder adapter: subject id from the file name, "
              r"e.g. '^(S\d+)_'.")
@click.option("-O", "--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Dataset adapter option (repeatable), e.g. -O illumination=Weak.")
@click.option("--face-size", type=click.IntRange(16, MAX_FACE_SIZE), default=112, show_default=True,
              help="Side of the aligned face box in pixels.")
@click.option("--patch-size", type=click.IntRange(8, MAX_FACE_SIZE), default=96, show_default=True,
              help="Side of the augmented patches.")
@click.option("--color/--gray", "color", default=False, show_default=True, help="Keep RGB or store grayscale.")
@click.option("--workers", type=click.IntRange(1), help="Worker processes [default: all cores].")
@click.option("--shard", metavar="I/N", help="Only do shard I of N (0-based) of the parts, for splitting "
              "preparation across machines; finish with --resume once all parts are in OUT.parts/.")
@click.option("--resume", is_flag=True, help="Reuse finished parts of an interrupted or sharded run.")
@click.option("--force", is_flag=True, help="Overwrite OUT and its parts.")
@landmarker_option
@click.option("--model", type=click.Path(path_type=Path), hidden=True, help="Same as --landmarker.")
@click.option("--max-pixels", default=str(DEFAULT_MAX_PIXELS), show_default=True, metavar="N",
              help="Images (and video frames) with more pixels are rejected before they are decoded, so a "
                   "huge or malicious file cannot exhaust memory; e.g. 100M, 1.5G.")
@click.option("--compression", type=click.Choice(["none", "gzip", "lzf"]), default="none", show_default=True,
              help="HDF5 compression of images (see the README for measurements).")
@click.option("--part-size", type=click.IntRange(1), default=None,
              help="Faces per part file, the unit of parallel work and of --resume "
                   "[default: decreasing sizes, an eighth of the frames still to plan, 8 to 256 faces].")
@click.option("--limit", type=click.IntRange(1), help="Only the first N sequences (quick looks).")
@json_option
@quiet_option
def prepare_cmd(dataset: str, root: Path, out: Path, frames: str | None, augment: str,
                subject_regex: str | None, options: tuple[str, ...], face_size: int, patch_size: int,
                color: bool, workers: int | None, shard: str | None, resume: bool, force: bool,
                landmarker: str | None, model: Path | None, max_pixels: str, compression: str,
                part_size: int | None, limit: int | None, as_json: bool, quiet: bool) -> None:
    """Detect, align and augment the faces of DATASET at ROOT into OUT (HDF5).

    DATASET is one of the registered adapters (ck+, oulu-casia, mmi, bu-4dfe,
    jaffe, folder). OUT is written atomically: it appears only when complete.
    Part files live in OUT.parts/; keep them next to OUT. OUT.lock keeps a
    second run off OUT while this one works. Each face's head pose and 52
    blendshape scores are stored with it (faces/pose, faces/blendshapes).
    """
    with reported_errors():
        if landmarker and model and str(model) != landmarker:
            raise ValueError(f"--landmarker {landmarker} and --model {model} disagree; give one")
        model_path = landmarker or (str(model) if model else None)
        try:
            opts = _options(dataset, options, subject_regex)
        except UnknownDatasetError as exc:
            fail(str(exc))
        from facekit.frames import parse_frame_spec
        if frames is not None:
            frames = str(parse_frame_spec(frames))
        cfg = PrepareConfig(
            dataset=dataset, root=root, out=out, options=opts, frames=frames, augment=augment,
            face_size=face_size, patch_size=patch_size, grayscale=not color,
            compression=None if compression == "none" else compression, workers=workers,
            shard=parse_shard(shard), resume=resume, force=force, model=model_path,
            part_faces=part_size, limit=limit, progress=not quiet, max_pixels=parse_pixels(max_pixels))
    with reported_errors(failed=(NothingUsableError, WorkerDiedError),
                         interrupted=f"{out}: interrupted; finished parts are kept in {schema.parts_dir_for(str(out))}; "
                                     "run the same command with --resume to continue"):
        summary = prepare(cfg)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        click.echo(summary.format())

