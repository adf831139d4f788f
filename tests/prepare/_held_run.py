"""``facekit prepare`` in a fresh interpreter, with one part held back: for the
multi-process tests of tests/prepare/test_pool.py and test_run.py.

Usage: ``python _held_run.py MARKS HOLD -- <facekit arguments>``

Every part writes ``MARKS/started-<pid>-<part index>`` when a worker starts it.
The part with index ``HOLD`` stops after its first frame (its temporary part
file is open), writes ``MARKS/holding-<pid>-<index>`` and waits until
``MARKS/release`` exists (a stand-in for a part that takes long, e.g. a huge
image), so a test can kill that worker, the parent, or start a second run at a
known moment. ``HOLD`` -1 holds nothing.
Exits with the facekit command's exit status.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import facekit.prepare._worker as W


def main() -> None:
    marks, hold = Path(sys.argv[1]), int(sys.argv[2])
    args = sys.argv[sys.argv.index("--") + 1:]
    real = W.PartProcessor.process

    def process(self, part, path, progress=None, attrs=None):
        import os
        (marks / f"started-{os.getpid()}-{part.index}").write_text("")
        if part.index == hold:
            inner = progress

            def progress(n):
                if not (marks / "release").exists():
                    (marks / f"holding-{os.getpid()}-{part.index}").write_text("")
                    while not (marks / "release").exists():
                        time.sleep(0.02)
                if inner is not None:
                    inner(n)
        return real(self, part, path, progress=progress, attrs=attrs)

    W.PartProcessor.process = process
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # the checkout's cli/, as `python -m cli` finds it
    from cli.facekit import main as facekit
    facekit(args, prog_name="facekit")


if __name__ == "__main__":
    main()
