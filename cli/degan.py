"""``degan-train``, ``degan-eval`` and ``degan-synthesize``: DE-GAN on facekit files.

Each command prints one line per error (``Error: <file>: <reason>``) and exits 1;
nothing already written is removed.
"""
from __future__ import annotations

import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Any

import click

CTX = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _fail(exc: BaseException) -> None:
    raise click.ClickException(str(exc)) from None


def _known_errors() -> tuple[type[BaseException], ...]:
    from facekit.errors import FacekitError

    from degan.config import ConfigError
    return (FacekitError, ConfigError)


def _parse_epochs(text: str) -> dict[str, int]:
    parts = [int(p) for p in text.split(",")]
    if len(parts) == 1:
        return {"epochs_gan": parts[0], "epochs_local": parts[0], "epochs_baseline": parts[0]}
    if len(parts) == 2:
        return {"epochs_gan": parts[0], "epochs_local": parts[1], "epochs_baseline": parts[0]}
    raise click.BadParameter("give N, or GAN,LOCAL")


def _print_summary(metrics: dict[str, Any]) -> None:
    folds = metrics.get("folds", {})
    click.echo(f"{metrics.get('model', '')} ({metrics.get('preset', '')}): "
               f"{metrics['mean']:.2f} ± {metrics['std']:.2f}% over {len(folds)} fold(s)")
    click.echo("  per fold: " + ", ".join(f"{f}: {a:.2f}" for f, a in folds.items()))


@click.command(context_settings=CTX)
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--cv", is_flag=True, help="All folds of the file (the default when no --fold is given).")
@click.option("--fold", "folds", type=int, multiple=True, help="Train only this fold (repeatable).")
@click.option("--model", type=click.Choice(["degan", "baseline"]), default="degan", show_default=True)
@click.option("--preset", default="paper", show_default=True, help="Config preset: paper, cpu, tiny, ...")
@click.option("--epochs", type=str, default=None,
              help="Override the schedule: N (every stage) or GAN,LOCAL (DE-GAN stage 1, stage 2).")
@click.option("--seed", type=int, default=None, help="Random seed (runs are repeatable on CPU).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory [default: runs/<dataset>-<model>-<preset>-<time>].")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoints.")
@click.option("--pretrain", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Pre-train stage 1 on this prepared file first (e.g. BU-4DFE); see --set pretrain_epochs=N.")
@click.option("--from-stage1", "from_stage1", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Reuse stage 1 (G, D) of this DE-GAN run's folds and train stage 2 only; the stage-1 "
                   "options must match that run's (stage-2 options such as local_width may differ).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override any config field.")
@click.option("--device", default=None, help="cuda, cuda:1, mps or cpu [default: CUDA, then MPS, then CPU].")
@click.option("--no-progress", is_flag=True, help="No progress bars (for logs); the line per finished fold stays.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for torch (per job with --jobs) [default: torch's; with --jobs, the CPUs / N].")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train up to N folds at once, each in its own process (same results as one at a time); "
                   "on a CPU, N processes beat N threads for the small presets. Not with torchrun.")
@click.option("--print-config", is_flag=True, help="Print the resolved config and exit.")
def train_main(data: Path, cv: bool, folds: tuple[int, ...], model: str, preset: str, epochs: str | None,
               seed: int | None, out: Path | None, resume: bool, pretrain: Path | None,
               from_stage1: Path | None, overrides: tuple[str, ...],
               device: str | None, no_progress: bool, threads: int | None, jobs: int, print_config: bool) -> None:
    """Train DE-GAN (or the CNN baseline) on a facekit file with its stored folds.

    \b
      degan-train out.h5 --cv                      # all folds
      degan-train out.h5 --fold 3 --preset paper   # one fold
      degan-train out.h5 --cv --model baseline
      degan-train out.h5 --cv --preset cpu --jobs 2 --threads 1   # two folds at a time
      torchrun --nproc-per-node 2 -m cli.degan train out.h5 --cv   # DDP
    """
    try:
        import torch
    except ImportError:
        raise click.ClickException("degan needs PyTorch: pip install 'facekit[train]'") from None
    if threads:                       # this process too: it trains when only one fold is left to train
        torch.set_num_threads(threads)
    from degan import distributed
    from degan.config import get_preset, parse_overrides
    from degan.train import run_cv
    try:
        if cv and folds:
            raise click.UsageError("give --cv or --fold, not both")
        changes: dict[str, Any] = {"model": model}
        if epochs:
            changes.update(_parse_epochs(epochs))
        if seed is not None:
            changes["seed"] = seed
        cfg = get_preset(preset).replace(**changes)
        cfg = parse_overrides(cfg, list(overrides))
        if print_config:
            click.echo(cfg.to_json())
            return
        if from_stage1 is not None and pretrain is not None:
            raise click.UsageError("give --pretrain or --from-stage1, not both")
        if resume and out is None:
            raise click.UsageError("--resume needs --out RUN_DIR")
        dinfo = distributed.setup(device)
        if out is None:
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            out = Path("runs") / f"{data.stem}-{model}-{cfg.preset}-{stamp}"
            out = Path(str(distributed.broadcast_object(str(out))))
        if dinfo.main:
            procs = f"up to {jobs} folds at a time" if jobs > 1 else f"{dinfo.world_size} process(es)"
            click.echo(f"run directory: {out}  (device {dinfo.device}, {procs})", err=True)
            if dinfo.device.type == "cpu" and cfg.preset == "paper":
                click.echo("note: the paper preset (96 px, 300 + 50 epochs) is sized for GPUs; "
                           "--preset cpu is sized for a CPU", err=True)
        metrics = run_cv(data, cfg, out, folds=list(folds) or None, resume=resume, pretrain=pretrain,
                         device=device, progress=not no_progress, from_stage1=from_stage1, jobs=jobs,
                         threads_per_job=threads, fold_lines=True)
        if dinfo.main and metrics:
            _print_summary(metrics)
    except _known_errors() as exc:
        _fail(exc)
    except KeyboardInterrupt:
        raise click.ClickException(f"interrupted; the last finished epoch of each fold is checkpointed: "
                                   f"continue with  degan-train {data} ... --out {out} --resume") from None
    finally:
        distributed.teardown()


@click.command(context_settings=CTX)
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--data", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The facekit file [default: the one recorded in config.json].")
@click.option("--test-views", type=click.Choice(["centre", "mirror", "all"]), default=None,
              help="centre patch, mean of it and its mirror image, or mean over the 110 augmented views [default: the run's].")
@click.option("--geometry-weight", type=click.FloatRange(0, 1), default=None,
              help="Fuse the geometric expert (logistic regression on the stored landmarks) at this weight: "
                   "(1 - w) image model + w expert; 0 = the image model alone [default: the run's].")
@click.option("--device", default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def eval_main(run_dir: Path, data: Path | None, test_views: str | None, geometry_weight: float | None,
              device: str | None, as_json: bool) -> None:
    """Re-evaluate the finished fold checkpoints of a run.

    Rewrites metrics.json and confusion.png, or writes metrics_<suffix>.json and
    confusion_<suffix>.png when --test-views or --geometry-weight differ from the
    run's own setting (e.g. metrics_mirror_geo0.5.json).
    """
    from degan.evaluate import evaluate_run
    try:
        res = evaluate_run(run_dir, data=data, test_views=test_views, device=device,
                           geometry_weight=geometry_weight)
    except _known_errors() as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(res, indent=2))
    else:
        cfg = json.loads((run_dir / "config.json").read_text())["config"]
        _print_summary({**res, "model": cfg["model"], "preset": cfg["preset"]})


@click.command(context_settings=CTX)
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--identity", "identities", multiple=True, required=True,
              help="Training identity: index (0..N_i-1) or subject name; repeat for a strip.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--fold", type=int, default=None, help="Whose generator [default: the first finished fold].")
@click.option("--aligned", is_flag=True, help="IMAGE is already an aligned face-box crop (no landmarking).")
@click.option("--with-input", is_flag=True, help="Put the network's input first in the output strip.")
@click.option("--landmarker", type=click.Path(dir_okay=False), default=None, help="face_landmarker.task path.")
@click.option("--device", default=None)
def synthesize_main(run_dir: Path, image: Path, identities: tuple[str, ...], output: Path, fold: int | None,
                    aligned: bool, with_input: bool, landmarker: str | None, device: str | None) -> None:
    """Render the expression of the face in IMAGE on training identities of a DE-GAN run."""
    from degan.synthesize import synthesize_file
    try:
        path = synthesize_file(run_dir, image, list(identities), output, fold=fold, aligned=aligned,
                               with_input=with_input, device=device, model_path=landmarker)
    except (*_known_errors(), ValueError) as exc:
        _fail(exc)
    click.echo(str(path))


@click.group(context_settings=CTX)
def main() -> None:
    """DE-GAN commands (also installed as degan-train, degan-eval, degan-synthesize)."""


main.add_command(train_main, "train")
main.add_command(eval_main, "eval")
main.add_command(synthesize_main, "synthesize")

if __name__ == "__main__":
    sys.exit(main())
