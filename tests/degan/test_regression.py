"""Fixed-seed outputs: the tiny CVs of bench/degan_regression.py give the recorded bytes.

The reference in tests/degan/reference/ was recorded with the code before the restructuring of
issue 22 (same predictions.csv bytes, metrics, history, and weights of every checkpoint).
Bit-identical weights need the torch build the reference was made with (and the same kind of
CPU); with another torch the test is skipped.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = Path(__file__).parent / "reference"
SCENARIOS = ("tiny-degan", "tiny-baseline")


class TestFixedSeedOutputs:
    def test_tiny_cv_matches_the_reference(self, tmp_path: Path) -> None:
        made_with = {json.loads((REFERENCE / f"{s}.json").read_text())["torch"] for s in SCENARIOS}
        if made_with != {torch.__version__}:
            pytest.skip(f"reference made with torch {', '.join(made_with)}, this is {torch.__version__}")
        res = subprocess.run([sys.executable, str(ROOT / "bench" / "degan_regression.py"), "check", str(REFERENCE),
                              "--only", ",".join(SCENARIOS), "--work", str(tmp_path)],
                             capture_output=True, text=True, timeout=900)
        report = json.loads(res.stdout) if res.stdout.strip().startswith("{") else {}
        assert res.returncode == 0 and report.get("identical"), res.stdout[-3000:] + res.stderr[-3000:]
        for name in SCENARIOS:
            s = report["scenarios"][name]
            assert s["csv_files"] == 2 and s["checkpoints"] == 2, s
