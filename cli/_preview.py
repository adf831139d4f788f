"""``facekit preview``: a contact sheet of aligned faces (or of one face's samples)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ._common import json_option, out_option, reported_errors
from .facekit import main


@main.command("preview")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@out_option("PNG", "Where to write the contact sheet.", "--output", required=True)
@click.option("--source", "face", type=int, metavar="N",
              help="Show the samples made from aligned face N (all of them, in stored order) instead.")
@click.option("--per-class", type=click.IntRange(1), default=6, show_default=True,
              help="Faces per class row.")
@click.option("--seed", type=int, default=0, show_default=True, help="Which faces are picked.")
@click.option("--columns", type=click.IntRange(1), default=10, show_default=True,
              help="Samples per row with --source (10 = one rotation per row for --augment paper).")
@click.option("--tile", type=click.IntRange(16, 1024),
              help="Tile size in pixels [default: 128; with --source 104, or 256 for a face with a single sample].")
@click.option("--no-landmarks", is_flag=True, help="Do not draw landmarks and the face box.")
@json_option
def preview_cmd(file: Path, out: str, face: int | None, per_class: int, seed: int, columns: int,
                tile: int | None, no_landmarks: bool, as_json: bool) -> None:
    """Draw a contact sheet of FILE: one row of aligned faces per class, from
    different subjects, with their landmarks; or, with --source N, every
    sample made from face N titled with its patch, rotation and flip."""
    from facekit.inspect import save_preview

    with reported_errors():
        res = save_preview(file, out, face=face, per_class=per_class, seed=seed, columns=columns,
                           landmarks=not no_landmarks, tile=tile)
    if as_json:
        click.echo(json.dumps({"file": str(file), "out": str(res.path), "width": res.width, "height": res.height,
                               "summary": res.summary}, indent=2, ensure_ascii=False))
        return
    click.echo(f"wrote {res.path} ({res.width}x{res.height} px): {res.summary}")
