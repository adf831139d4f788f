"""Render the example figures of the documentation from the fixtures.

Every figure is made from the trees in ``fixtures/`` (synthetic faces made from
scikit-image's public-domain astronaut photo), never from dataset images, and
written to ``docs/img/`` as a PNG of at most :data:`MAX_BYTES`.

Usage::

    export FACEKIT_MODEL=/path/to/face_landmarker.task MPLBACKEND=Agg
    python docs/figures/make_figures.py                      # every figure into docs/img/
    python docs/figures/make_figures.py --only source_sheet  # one figure (repeatable)
    python docs/figures/make_figures.py --out /tmp/img       # somewhere else
    python docs/figures/make_figures.py --list               # names and what each shows

Adding a figure: write a function that takes a :class:`Workspace` and returns
the path of a PNG it rendered into ``ws.tmp``, and register it with
``@figure("name")``; :func:`main` saves it as ``OUT/name.png`` through
:func:`publish`. ``ws.prepared(name, ...)`` runs ``facekit prepare`` on a
fixture tree once and shares the file between figures; ``ws.run(...)`` runs any
other facekit command, ``ws.run("train", ..., module="cli.degan")`` a degan one, and
``ws.trained(name, data, ...)`` trains a degan run once and shares its directory.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
#: default output folder
IMG = ROOT / "docs" / "img"
#: largest PNG kept in the repository, in bytes
MAX_BYTES = 300_000


class FigureError(RuntimeError):
    """A figure could not be made (names the figure or the command and why)."""


@dataclass(frozen=True)
class Figure:
    """A registered figure: ``name`` (the PNG is ``name.png``), what it shows, the function that renders it."""

    name: str
    about: str
    render: Callable[["Workspace"], Path]


#: every figure, in the order they are made
FIGURES: dict[str, Figure] = {}


def figure(name: str) -> Callable[[Callable[["Workspace"], Path]], Callable[["Workspace"], Path]]:
    """Register ``fn(ws) -> png`` as figure ``name``; the first line of its docstring says what it shows."""
    def register(fn: Callable[["Workspace"], Path]) -> Callable[["Workspace"], Path]:
        if name in FIGURES:
            raise ValueError(f"figure {name!r} is registered twice")
        FIGURES[name] = Figure(name, (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "", fn)
        return fn
    return register


class Workspace:
    """A temporary folder for the figures' intermediate files, and facekit commands run in it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self._prepared: dict[str, tuple[str, ...]] = {}
        self._trained: dict[str, tuple[str, ...]] = {}

    def run(self, *args: str, module: str = "cli") -> str:
        """Run ``python -m MODULE ARGS...`` from this checkout (``cli``: facekit, ``cli.degan``: the degan
        commands); return its stdout, raise :class:`FigureError` on failure."""
        cmd = [sys.executable, "-m", module, *args]
        res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if res.returncode != 0:
            raise FigureError(f"python -m {module} {' '.join(args)} failed (exit {res.returncode}): "
                              f"{res.stderr.strip() or res.stdout.strip()}")
        return res.stdout

    def prepared(self, name: str, dataset: str, tree: str, *options: str, folds: int = 0) -> Path:
        """``facekit prepare DATASET fixtures/TREE NAME OPTIONS...`` in ``tmp``, once; the path of NAME.

        NAME (e.g. ``folder.h5``) is the file name the sheets' titles show; one
        NAME always stands for the same command. ``folds`` > 0: then
        ``facekit folds NAME -k FOLDS`` (subject-disjoint folds, seed 0).
        """
        key = (dataset, tree, *options, f"folds={folds}")
        if name in self._prepared:
            if self._prepared[name] != key:
                raise ValueError(f"{name} is already prepared with other arguments: {self._prepared[name]}")
        else:
            self.run("prepare", dataset, str(FIXTURES / tree), str(self.tmp / name), *options,
                     "--workers", "1", "-q")
            if folds:
                self.run("folds", str(self.tmp / name), "-k", str(folds))
            self._prepared[name] = key
        return self.tmp / name

    def trained(self, name: str, data: Path, *options: str) -> Path:
        """``degan-train DATA -o NAME OPTIONS...`` in ``tmp``, once; the run directory NAME.

        NAME is the run name the degan figures' titles show; one NAME always stands for the
        same command.
        """
        key = (str(data), *options)
        if name in self._trained:
            if self._trained[name] != key:
                raise ValueError(f"{name} is already trained with other arguments: {self._trained[name]}")
        else:
            self.run("train", str(data), "-o", str(self.tmp / name), *options, "-q", module="cli.degan")
            self._trained[name] = key
        return self.tmp / name


def publish(png: Path, dest: Path, *, max_bytes: int = MAX_BYTES) -> int:
    """Copy ``png`` to ``dest`` with a palette of at most 256 colours (no dithering) and return its size.

    The palette keeps sheets of photographs under ``max_bytes``; plots with a few
    colours come out unchanged. Written to a temporary name and renamed.

    Raises:
        FigureError: the result is larger than ``max_bytes``.
    """
    from PIL import Image

    with Image.open(png) as im:
        rgb = im.convert("RGB")
    small = rgb.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    try:
        small.save(tmp, format="png", optimize=True)
        size = tmp.stat().st_size
        if size > max_bytes:
            raise FigureError(f"{dest.name}: {size} bytes, more than the {max_bytes} allowed; "
                              "render it smaller")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return size


# the figures -----------------------------------------------------------------------
#: the folder fixture: happy, neutral and surprise faces of subjects S001-S003
_FOLDER = ("folder", "folder", "--subject-regex", r"^(S\d+)_")
#: the face shown by the source sheet (subject S001, surprise; also a tile of the contact sheet)
SOURCE_FACE = 7


@figure("contact_sheet")
def contact_sheet(ws: Workspace) -> Path:
    """facekit preview FILE: the folder fixture prepared with --augment none, default settings."""
    from facekit.inspect import save_preview

    src = ws.prepared("folder-none.h5", *_FOLDER, "--augment", "none")
    return save_preview(src, ws.tmp / "contact_sheet.png").path


@figure("source_sheet")
def source_sheet(ws: Workspace) -> Path:
    """facekit preview FILE --source 7 --tile 72: the 110 samples of one face of the folder fixture."""
    from facekit.inspect import save_preview

    src = ws.prepared("folder.h5", *_FOLDER)
    return save_preview(src, ws.tmp / "source_sheet.png", face=SOURCE_FACE, tile=72).path


#: settings of the example degan runs: the tiny preset with 32-px input, G and D at quarter width
#: and stage 1's L1 reconstruction term (so that G's output starts to look like a face), one thread
_DEGAN = ("--preset", "tiny", "--set", "arch.image_size=32", "--set", "arch.width=0.25",
          "--set", "stage1.recon_weight=10", "--set", "train.batch_size=8", "--seed", "0", "--threads", "1")
#: the face whose expression the synthesis strip transfers (subject S001, the test subject of fold 0)
STRIP_FACE = "folder/surprise/S001_002_00000006.png"


def _degan_folder_run(ws: Workspace) -> Path:
    """The folder fixture (3 subjects, 3 classes), --augment none, 3 folds (one subject each),
    DE-GAN with :data:`_DEGAN` for 100 stage-1 and 20 stage-2 epochs: about half a minute on a CPU."""
    data = ws.prepared("folder-degan.h5", *_FOLDER, "--augment", "none", folds=3)
    return ws.trained("folder-degan", data, *_DEGAN, "--epochs", "100,20")


@figure("curves")
def curves(ws: Workspace) -> Path:
    """fold_00/curves.png: DE-GAN on the ck+ fixture with an inner validation split, 30 + 30 epochs."""
    data = ws.prepared("ck-degan.h5", "ck+", "ck+", "--augment", "none", folds=4)
    run = ws.trained("ck-degan", data, *_DEGAN, "--fold", "0", "--set", "data.val_fraction=0.34",
                     "--epochs", "30,30")
    return run / "fold_00" / "curves.png"


@figure("confusion")
def confusion(ws: Workspace) -> Path:
    """RUN/confusion.png: a 3-fold DE-GAN run of the folder fixture (a few seconds of training)."""
    return _degan_folder_run(ws) / "confusion.png"


@figure("synthesis")
def synthesis(ws: Workspace) -> Path:
    """fold_00/synthesis.png: the expression-transfer grid of fold 0 of the folder-fixture run."""
    return _degan_folder_run(ws) / "fold_00" / "synthesis.png"


@figure("synthesis_strip")
def synthesis_strip(ws: Workspace) -> Path:
    """degan-synthesize RUN FACE --fold 0 --identity 0 --identity S003: a fixture face on two identities."""
    run = _degan_folder_run(ws)
    out = ws.tmp / "synthesis_strip.png"
    ws.run("synthesize", str(run), str(FIXTURES / STRIP_FACE), "--fold", "0", "--identity", "0",
           "--identity", "S003", "-o", str(out), module="cli.degan")
    return out


# -------------------------------------------------------------------------------------
def make(names: list[str], out: Path) -> list[tuple[Path, int, tuple[int, int]]]:
    """Render the figures ``names`` into ``out``; ``(path, bytes, (width, height))`` of each PNG written."""
    from PIL import Image

    written = []
    with tempfile.TemporaryDirectory(prefix="facekit-figures-") as tmp:
        ws = Workspace(Path(tmp))
        for name in names:
            png = FIGURES[name].render(ws)
            dest = out / f"{name}.png"
            size = publish(png, dest)
            with Image.open(dest) as im:
                written.append((dest, size, im.size))
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=IMG, help=f"output folder [default: {IMG.relative_to(ROOT)}]")
    ap.add_argument("--only", action="append", metavar="NAME", help="make only this figure (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the figures and exit")
    args = ap.parse_args(argv)
    if args.list:
        for f in FIGURES.values():
            print(f"{f.name:16s} {f.about}")
        return 0
    names = args.only or list(FIGURES)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        print(f"error: no figure named {', '.join(unknown)} (known: {', '.join(FIGURES)})", file=sys.stderr)
        return 2
    if not args.out.is_dir():
        print(f"error: {args.out}: output folder does not exist", file=sys.stderr)
        return 2
    try:
        for path, size, (w, h) in make(names, args.out):
            print(f"wrote {path} ({w}x{h} px, {size / 1000:.0f} kB)")
    except FigureError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
