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


@pytest.fixture(scope="module")
def run(canvas_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DE-GAN run (``run``) and a baseline run (``base`` beside it) of fold 1."""
    from degan.presets import get_preset
    from degan.train import run_cv
    out = tmp_path_factory.mktemp("ck") / "run"
    run_cv(canvas_file, get_preset("tiny"), out, folds=[1], progress=False)
    run_cv(canvas_file, get_preset("tiny").replace(method="baseline"), out.parent / "base", folds=[1],
           progress=False)
    return out


class TestNetworksFromCheckpoints:
    """build_networks / load_fold_model / load_generator: the networks of a finished fold."""

    def test_degan_and_baseline(self, run: Path) -> None:
        from degan.checkpoint import build_networks, checkpoint_method, fold_checkpoint, load_fold_model
        from degan.models import DeganNets
        state = load_checkpoint(fold_checkpoint(run, 1))
        nets = build_networks(state)
        assert isinstance(nets, DeganNets) and not nets.local.training and checkpoint_method(state) == "degan"
        x = torch.zeros(2, 1, 16, 16)
        torch.testing.assert_close(load_fold_model(state)(x)[-1], nets.classify(x)[-1])
        base = load_checkpoint(fold_checkpoint(run.parent / "base", 1))
        assert checkpoint_method(base) == "baseline" and load_fold_model(base)(x).shape == (2, 3)

    def test_earlier_meta_and_mismatched_weights(self, run: Path) -> None:
        from degan.checkpoint import build_networks, checkpoint_method, fold_checkpoint
        state = load_checkpoint(fold_checkpoint(run, 1))
        state["meta"]["model"] = state["meta"].pop("method")              # as earlier versions wrote it
        assert checkpoint_method(state) == "degan"
        state["config"]["arch"]["width"] = 0.25
        with pytest.raises(CheckpointError, match="weights do not match"):
            build_networks(state)

    def test_generator(self, run: Path) -> None:
        from degan.checkpoint import load_generator
        from degan.errors import RunDirError
        G, meta, cfg = load_generator(run)
        assert meta["fold"] == 1 and cfg.preset == "tiny" and not G.training
        with pytest.raises(RunDirError, match="fold 0"):
            load_generator(run, fold=0)
        with pytest.raises(RunDirError, match="baseline"):
            load_generator(run.parent / "base")
