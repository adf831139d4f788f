"""``degan-train``, ``degan-eval`` and ``degan-synthesize``: DE-GAN on facekit files.

Installed as ``facekit_cli.degan``; also ``python -m facekit_cli.degan train|eval|synthesize``
(e.g. under ``torchrun``). Like the facekit commands, each prints one ``error: PATH: reason``
line on stderr and exits 2 for refused or bad input (checked before anything is written),
1 for a failure during a run, 130 when interrupted; nothing already written is removed.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from ._common import EXIT_BAD_INPUT, EXIT_FAILED, fail, reported_errors

CTX = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@contextlib.contextmanager
def _errors(interrupted: Callable[[], str]) -> Iterator[None]:
    """degan's errors as one ``error:`` line: failures during a run (a non-finite loss, a dead
    worker, a file that could not be written) exit 1, everything else refused exits 2, Ctrl-C
    exits 130 with the line ``interrupted()`` gives. Warnings are one ``warning: ...`` line each."""
    from degan.errors import NonFiniteLossError, WorkerDiedError

    def one_line(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: Any = None, line: str | None = None) -> None:
        click.echo(f"warning: {message}", err=True)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = one_line
            with reported_errors(failed=(NonFiniteLossError, WorkerDiedError), interrupted=interrupted):
                yield
    except OSError as exc:
        where = exc.filename if exc.filename is not None else "error"
        fail(f"{where}: {exc.strerror or exc}", EXIT_FAILED)


def _need_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        fail("torch: degan needs PyTorch: pip install 'facekit[train]'", EXIT_BAD_INPUT)


def _parse_epochs(text: str) -> dict[str, int]:
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        return {"stage1.epochs": parts[0], "stage2.epochs": parts[0], "baseline.epochs": parts[0]}
    if len(parts) == 2:
        return {"stage1.epochs": parts[0], "stage2.epochs": parts[1], "baseline.epochs": parts[0]}
    fail(f"--epochs {text}: give N, or GAN,LOCAL")
    raise AssertionError


def _print_summary(metrics: dict[str, Any]) -> None:
    folds = metrics.get("folds", {})
    method = metrics.get("method", metrics.get("model", ""))
    head = f"{method} ({metrics.get('preset', '')}): "
    if len(folds) == 1:
        (fold, acc), = folds.items()
        click.echo(f"{head}{acc:.2f}% on fold {fold}")
        return
    click.echo(f"{head}{metrics['mean']:.2f} ± {metrics['std']:.2f}% over {len(folds)} folds")
    click.echo("  per fold: " + ", ".join(f"{f}: {a:.2f}" for f, a in folds.items()))


def _base_config(preset: str | None, resume: bool, out: Path | None, device_type: str) -> tuple[Any, str | None]:
    """The configuration options start from, and the line that says where it came from (or None):
    ``--preset``; with ``--resume`` and no ``--preset`` the run's own; else the device's default
    (``paper`` on CUDA, ``cpu`` elsewhere)."""
    from degan.checkpoint import checkpoint_config
    from degan.presets import get_preset
    if preset is not None:
        return get_preset(preset), None
    recorded = out / "config.json" if out is not None else None
    if resume and recorded is not None and recorded.is_file():
        cfg = checkpoint_config(json.loads(recorded.read_text()), recorded)
        return cfg, f"settings: the run's own ({recorded}, preset {cfg.preset})"
    if device_type == "cuda":
        return get_preset("paper"), "preset paper: the default on a CUDA device"
    return get_preset("cpu"), (f"preset cpu: the default without a CUDA device (device {device_type}); "
                               "--preset paper for the paper's settings")


@click.command(context_settings=CTX)
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--cv", is_flag=True, help="All folds of the file (the default when no --fold is given).")
@click.option("--fold", "folds", type=int, multiple=True, help="Train only this fold (repeatable).")
@click.option("--method", type=click.Choice(["degan", "baseline"]), default=None,
              help="DE-GAN or the CNN baseline [default: degan; with --resume, the run's].")
@click.option("--preset", default=None,
              help="Settings preset: paper, cpu, tiny [default: paper on CUDA, cpu elsewhere; with --resume, "
                   "the run's own settings].")
@click.option("--epochs", type=str, default=None,
              help="Override the schedule: N (every stage) or GAN,LOCAL (DE-GAN stage 1, stage 2).")
@click.option("--seed", type=int, default=None, help="Random seed (runs are repeatable on CPU).")
@click.option("-o", "--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run directory [default: runs/<dataset>-<method>-<preset>-<time>].")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoints.")
@click.option("--pretrain", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Pre-train stage 1 on this prepared file first, as the paper does on BU-4DFE (needed by the paper "
                   "preset); for stage1.pretrain_epochs epochs (0, the default: as many as stage 1).")
@click.option("--no-pretrain", "no_pretrain", is_flag=True,
              help="Train stage 1 without pre-training where the settings ask for it (the paper preset); the run "
                   "records this as a deviation from the paper.")
@click.option("--from-stage1", "from_stage1", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Reuse stage 1 (G, D) of this DE-GAN run's folds and train stage 2 only; the settings stage 1 "
                   "reads (sections arch, train, stage1, data) must match that run's.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.FIELD=VALUE",
              help="Override a setting, e.g. --set stage1.lr=2e-4 (a field name alone where only one section "
                   "has it: --set expr_weight=10). See --print-config.")
@click.option("--device", default=None, help="cuda, cuda:1, mps or cpu [default: CUDA, then MPS, then CPU].")
@click.option("-q", "--quiet", "--no-progress", "quiet", is_flag=True,
              help="No progress bars (for logs); the line per finished fold stays.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for torch (per job with --jobs) [default: torch's; with --jobs, the CPUs / N].")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train up to N folds at once, each in its own process (same results as one at a time); "
                   "on a CPU, N processes beat N threads for the small presets. Not with torchrun.")
@click.option("--print-config", is_flag=True, help="Print the resolved settings (JSON, by section) and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the run's metrics as JSON.")
def train_main(data: Path, cv: bool, folds: tuple[int, ...], method: str | None, preset: str | None,
               epochs: str | None, seed: int | None, out: Path | None, resume: bool, pretrain: Path | None,
               no_pretrain: bool, from_stage1: Path | None, overrides: tuple[str, ...], device: str | None, quiet: bool,
               threads: int | None, jobs: int, print_config: bool, as_json: bool) -> None:
    """Train DE-GAN (or the CNN baseline) on a facekit file with its stored folds.

    \b
      degan-train out.h5 --cv                      # all folds
      degan-train out.h5 --fold 3 --preset paper   # one fold
      degan-train out.h5 --cv --method baseline
      degan-train out.h5 --cv --preset cpu --jobs 2 --threads 1   # two folds at a time
      torchrun --nproc-per-node 2 -m facekit_cli.degan train out.h5 --cv   # DDP
    """
    _need_torch()
    import torch
    if threads:                       # this process too: it trains when only one fold is left to train
        torch.set_num_threads(threads)
    from degan import distributed
    from degan.config import parse_overrides
    from degan.train import run_cv
    def interrupted() -> str:
        where = f"-o {out} " if out is not None else ""
        return (f"{out or data}: interrupted; the last finished epoch of each fold is checkpointed: continue with  "
                f"degan-train {data} ... {where}--resume")

    try:
        with _errors(interrupted):
            if cv and folds:
                fail("--cv, --fold: give --cv or --fold, not both")
            if from_stage1 is not None and pretrain is not None:
                fail("--pretrain, --from-stage1: give one, not both")
            if no_pretrain and pretrain is not None:
                fail("--pretrain, --no-pretrain: give one, not both")
            if resume and out is None:
                fail("--resume: needs -o/--out RUN_DIR")
            dinfo = distributed.setup(device)
            base, why = _base_config(preset, resume, out, dinfo.device.type)
            changes: dict[str, Any] = {}
            if method is not None:
                changes["method"] = method
            if epochs:
                changes.update(_parse_epochs(epochs))
            if seed is not None:
                changes["train.seed"] = seed
            if pretrain is not None or no_pretrain:
                changes["stage1.pretrain"] = pretrain is not None
            cfg = parse_overrides(base.replace(changes), list(overrides))
            if why and dinfo.main:
                click.echo(why, err=True)
            if print_config:
                click.echo(cfg.to_json())
                return
            if out is None:
                stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
                out = Path("runs") / f"{data.stem}-{cfg.method}-{cfg.preset}-{stamp}"
                out = Path(str(distributed.broadcast_object(str(out))))
            procs = f"up to {jobs} folds at a time" if jobs > 1 else f"{dinfo.world_size} process(es)"

            def started(run_dir: Path) -> None:
                click.echo(f"run directory: {run_dir}  (device {dinfo.device}, {procs})", err=True)
                if dinfo.device.type == "cpu" and cfg.preset == "paper":
                    click.echo("note: the paper preset (96 px, 300 + 50 epochs) is sized for GPUs; "
                               "--preset cpu is sized for a CPU", err=True)
            metrics = run_cv(data, cfg, out, folds=list(folds) or None, resume=resume, pretrain=pretrain,
                             device=device, progress=not quiet, from_stage1=from_stage1, jobs=jobs,
                             threads_per_job=threads, fold_lines=True, started=started)
            if dinfo.main and metrics:
                if as_json:
                    click.echo(json.dumps(metrics, indent=2))
                else:
                    _print_summary(metrics)
    finally:
        distributed.teardown()


@click.command(context_settings=CTX)
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--data", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The facekit file [default: the one recorded in config.json].")
@click.option("--test-views", type=click.Choice(["centre", "mirror", "all"]), default=None,
              help="centre patch, mean of it and its mirror image, or mean over the 110 augmented views "
                   "[default: the run's].")
@click.option("--geometry-weight", type=click.FloatRange(0, 1), default=None,
              help="Fuse the geometric expert (logistic regression on the stored landmarks) at this weight: "
                   "(1 - w) image model + w expert; 0 = the image model alone [default: the run's].")
@click.option("--device", default=None, help="cuda, cuda:1, mps or cpu [default: CUDA, then MPS, then CPU].")
@click.option("--name", default=None,
              help="Name of the re-evaluation: its results go to RUN_DIR/evals/NAME/ [default: from the options: "
                   "own, mirror, all, geo0.5, all_geo0.5, ...].")
@click.option("-o", "--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the re-evaluation into this directory instead [default: RUN_DIR/evals/NAME].")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def eval_main(run_dir: Path, data: Path | None, test_views: str | None, geometry_weight: float | None,
              device: str | None, name: str | None, out: Path | None, quiet: bool, as_json: bool) -> None:
    """Re-evaluate the finished fold checkpoints of a run.

    The run's own results are never changed: the re-evaluation goes to
    RUN_DIR/evals/NAME/ (eval.json, metrics.json, confusion.png, fold_XX/predictions.csv),
    NAME from the options (own, mirror, all_geo0.5, ...) or --name. --data must be the
    data the run was trained on (a copy is fine: its content is compared).
    """
    _need_torch()
    from degan.distributed import pick_device
    from degan.evaluate import evaluate_run
    with _errors(lambda: f"{run_dir}: interrupted; the run's checkpoints are unchanged"):
        pick_device(device)
        res = evaluate_run(run_dir, data=data, test_views=test_views, device=device,
                           geometry_weight=geometry_weight, out=out, name=name, progress=not quiet)
    if as_json:
        click.echo(json.dumps(res, indent=2))
    else:
        _print_summary(res)


@click.command(context_settings=CTX)
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--identity", "identities", multiple=True, required=True,
              help="Training identity: index (0..N_i-1) or subject name; repeat for a strip.")
@click.option("-o", "--out", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The PNG to write.")
@click.option("--fold", type=int, default=None, help="Whose generator [default: the first finished fold].")
@click.option("--aligned", is_flag=True, help="IMAGE is already an aligned face-box crop (no landmarking).")
@click.option("--with-input", is_flag=True,
              help="With --raw: put the network's input first in the strip (the labelled figure always shows it).")
@click.option("--raw", is_flag=True,
              help="Write the network's pixels only (its input size, no labels) instead of the labelled figure.")
@click.option("--landmarker", type=click.Path(dir_okay=False), default=None,
              help="face_landmarker.task [default: $FACEKIT_MODEL, then the cache, then download].")
@click.option("--device", default=None, help="cuda, cuda:1, mps or cpu [default: CUDA, then MPS, then CPU].")
def synthesize_main(run_dir: Path, image: Path, identities: tuple[str, ...], out: Path, fold: int | None,
                    aligned: bool, with_input: bool, raw: bool, landmarker: str | None, device: str | None) -> None:
    """Render the expression of the face in IMAGE on training identities of a DE-GAN run.

    The output is a labelled figure: the network's input, then one tile per identity (index and
    subject), enlarged to at least 96 px, titled with the run, the fold and IMAGE. --raw writes the
    synthesised pixels alone (one identity) or as a strip, at the network's size.
    """
    _need_torch()
    from degan.distributed import pick_device
    from degan.outputs import check_writable_dir
    from degan.synthesize import synthesize_file
    with _errors(lambda: f"{image}: interrupted"):
        pick_device(device)
        check_writable_dir(out.parent)
        path = synthesize_file(run_dir, image, list(identities), out, fold=fold, aligned=aligned,
                               with_input=with_input, raw=raw, device=device, model_path=landmarker)
    click.echo(str(path))


@click.group(context_settings=CTX)
def main() -> None:
    """DE-GAN commands (also installed as degan-train, degan-eval, degan-synthesize)."""


main.add_command(train_main, "train")
main.add_command(eval_main, "eval")
main.add_command(synthesize_main, "synthesize")

if __name__ == "__main__":
    sys.exit(main())
