from __future__ import annotations

from pathlib import Path

import pytest
import torch

from degan import checkpoint as ck_mod
from degan.checkpoint import load_checkpoint, save_checkpoint
from degan.errors import CheckpointError


def _payload(v: float) -> dict:
    return {"stage": "gan", "epoch": 1, "models": {"m": {"w": torch.full((3,), v)}}, "config": {}, "meta": {}}


class TestCheckpoint:
    def test_round_trip(self, tmp_path: Path) -> None:
        p = save_checkpoint(tmp_path / "a" / "c.pt", _payload(1.0))
        d = load_checkpoint(p)
        assert d["format"] == ck_mod.FORMAT and torch.equal(d["models"]["m"]["w"], torch.ones(3))

    def test_failed_write_keeps_previous(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        p = save_checkpoint(tmp_path / "c.pt", _payload(1.0))

        def boom(obj: object, f: object) -> None:
            Path(f).write_bytes(b"partial")          # type: ignore[arg-type]
            raise KeyboardInterrupt
        monkeypatch.setattr(ck_mod.torch, "save", boom)
        with pytest.raises(KeyboardInterrupt):
            save_checkpoint(p, _payload(2.0))
        monkeypatch.undo()
        assert torch.equal(load_checkpoint(p)["models"]["m"]["w"], torch.ones(3))
        assert [q.name for q in tmp_path.iterdir()] == ["c.pt"]        # no temporary left behind

    @pytest.mark.parametrize("content", [b"", b"garbage" * 10, None])
    def test_corrupt(self, tmp_path: Path, content: bytes | None) -> None:
        p = tmp_path / "c.pt"
        if content is None:
            save_checkpoint(p, _payload(1.0))
            p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
        else:
            p.write_bytes(content)
        with pytest.raises(CheckpointError, match="corrupt or truncated"):
            load_checkpoint(p)

    def test_not_a_degan_checkpoint(self, tmp_path: Path) -> None:
        p = tmp_path / "c.pt"
        torch.save({"state_dict": {}}, p)
        with pytest.raises(CheckpointError, match="not a degan checkpoint"):
            load_checkpoint(p)
        with pytest.raises(CheckpointError, match="does not exist"):
            load_checkpoint(tmp_path / "missing.pt")
