from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class TestThroughputScript:
    def test_quick_cpu(self, tmp_path: Path) -> None:
        out = tmp_path / "t.json"
        res = subprocess.run([sys.executable, str(ROOT / "bench" / "degan_throughput.py"), "--quick", "--threads",
                              "2", "--out", str(out)], capture_output=True, text=True, timeout=180)
        assert res.returncode == 0, res.stderr[-3000:]
        report = json.loads(out.read_text())
        assert report["device"] == "cpu" and {r["preset"] for r in report["results"]} == {"paper", "cpu"}
        assert report["device_name"]                    # the CPU model (bench/_machine.py)
        for r in report["results"]:
            assert r["status"] == "ok", r
            for k in ("stage1_img_per_s", "stage2_img_per_s", "baseline_img_per_s"):
                assert r[k] > 0
