from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from degan import distributed

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TestDistributed:
    def test_single_process_defaults(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
            monkeypatch.delenv(var, raising=False)
        info = distributed.setup("cpu")
        assert (info.rank, info.world_size, info.main, info.distributed) == (0, 1, True, False)
        m = torch.nn.Linear(2, 2)
        assert distributed.wrap(m, info) is m and distributed.unwrap(m) is m
        assert distributed.all_reduce_mean(3.0) == 3.0 and distributed.broadcast_object("x") == "x"
        distributed.barrier()

    def test_device_order(self) -> None:
        dev = distributed.pick_device()
        expect = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
        assert dev.type == expect and distributed.pick_device("cpu").type == "cpu"

    def test_missing_or_unknown_device_in_one_line(self) -> None:
        from degan.errors import DeviceError
        if not torch.cuda.is_available():
            with pytest.raises(DeviceError) as ei:
                distributed.check_device("cuda")
            assert str(ei.value) == "--device cuda: CUDA is not available on this machine"
        with pytest.raises(DeviceError, match="--device cuda:99"):
            distributed.pick_device("cuda:99")
        with pytest.raises(DeviceError, match="--device toaster: not a device"):
            distributed.setup("toaster")
        assert distributed.check_device("cpu").type == "cpu"

    @pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built")
    def test_two_process_gloo_run(self, canvas_file: Path, tmp_path: Path) -> None:
        out = tmp_path / "ddp"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--master-port", str(_free_port()), "-m", "facekit_cli.degan", "train", str(canvas_file), "--fold", "0",
               "--preset", "tiny", "--epochs", "2", "--out", str(out), "--no-progress", "--device", "cpu"]
        res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
        assert res.stdout.count("% on fold 0") == 1              # rank 0 alone reports and writes
        run = json.loads((out / "config.json").read_text())
        assert run["world_size"] == 2
        hist = json.loads((out / "fold_00" / "history.json").read_text())
        assert [h["stage"] for h in hist] == ["gan", "gan", "local", "local"]
        assert not list(out.rglob("*.tmp-*"))
