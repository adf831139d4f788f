"""``facekit analyze``: images and videos -> one table row per image or video frame."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ._common import EXIT_FAILED, fail, reported_errors
from .facekit import main


@main.command("analyze")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...", type=click.Path(path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path),
              help="The table to write: .csv, or .parquet (needs pyarrow).")
@click.option("--mesh", is_flag=True, help="Add all 478 MediaPipe points (mesh_x_*, mesh_y_*, mesh_z_*).")
@click.option("--every", type=click.IntRange(1), default=1, show_default=True,
              help="Analyse every N-th video frame (frame numbers stay the decoder's).")
@click.option("--aligned", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Also write each found face, aligned as prepare aligns it, as a PNG into DIR.")
@click.option("--face-size", type=click.IntRange(16), default=112, show_default=True,
              help="Side of the aligned faces in pixels (--aligned).")
@click.option("--color/--gray", "color", default=True, show_default=True, help="Colour of the aligned faces.")
@click.option("--max-faces", type=click.IntRange(1), help="Faces MediaPipe may return per frame; the largest "
              "is the row's [default: 4 for images, 1 for videos, where VIDEO mode then tracks it].")
@click.option("--workers", type=click.IntRange(1), help="Worker processes [default: all cores].")
@click.option("--landmarker", type=click.Path(path_type=Path), metavar="PATH",
              help="face_landmarker.task [default: $FACEKIT_MODEL, then the cache, then download].")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from OUT.parts/ (finished inputs "
              "are not redone).")
@click.option("--force", is_flag=True, help="Overwrite OUT and the parts of an earlier run.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def analyze_cmd(inputs: tuple[Path, ...], out: Path, mesh: bool, every: int, aligned: Path | None,
                face_size: int, color: bool, max_faces: int | None, workers: int | None,
                landmarker: Path | None, resume: bool, force: bool, as_json: bool, quiet: bool) -> None:
    """Landmarks, head pose and blendshapes of every image and video frame in INPUT...

    INPUT is any mix of image files, video files and folders (searched
    recursively); images and videos are recognised by their content, not their
    names. One row per image or video frame, also when no face is found
    (success 0 and the reason); columns and conventions: docs/analyze.md.
    OUT is written atomically; finished inputs are kept in OUT.parts/ until
    the run ends, so Ctrl-C or a kill loses nothing: run again with --resume.
    """
    from facekit.analysis import AnalysisFailedError, AnalyzeConfig, parts_dir_for, run_analysis

    with reported_errors():
        cfg = AnalyzeConfig(inputs=list(inputs), out=out, mesh=mesh, every=every, aligned=aligned,
                            face_size=face_size, grayscale=not color, max_faces=max_faces, workers=workers,
                            model=str(landmarker) if landmarker else None, resume=resume, force=force,
                            progress=not quiet)
    with reported_errors(failed=(AnalysisFailedError,),
                         interrupted=f"{out}: interrupted; finished inputs are kept in {parts_dir_for(out)}; "
                                     "run the same command with --resume to continue"):
        summary = run_analysis(cfg)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(summary.format())
    if summary.frames == 0:
        fail(f"{out}: none of the {summary.inputs} inputs could be read (the reason column says why)",
             EXIT_FAILED)
