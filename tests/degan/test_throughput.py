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

    def test_quick_cpu_processes(self, tmp_path: Path) -> None:
        """--processes 2: two spawned 1-thread processes measure at once; images/s summed and per process."""
        out = tmp_path / "t.json"
        res = subprocess.run([sys.executable, str(ROOT / "bench" / "degan_throughput.py"), "--quick", "--presets",
                              "cpu", "--threads", "2", "--processes", "2", "--out", str(out)],
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
        one, two = json.loads(out.read_text())["results"]
        assert (one["processes"], one["threads_per_process"]) == (1, 2)
        assert (two["processes"], two["threads_per_process"], two["status"]) == (2, 1, "ok")
        for k in ("stage1", "stage2", "baseline"):
            per = two[f"{k}_img_per_s_per_process"]
            assert len(per) == 2 and all(v > 0 for v in per)
            assert abs(two[f"{k}_img_per_s"] - sum(per)) < 1e-9
            assert abs(two["speedup_over_one_process"][k] - two[f"{k}_img_per_s"] / one[f"{k}_img_per_s"]) < 1e-9
