from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from degan.config import DeganConfig
from degan.models import build_degan
from degan.train import (ClassifyStep, GanStep, Precision, adam, eval_mode, like, lr_at, mixup_batch, set_lr,
                         with_synthesised)

CPU = torch.device("cpu")


def _gan_step(cfg: DeganConfig, nets, d_acc_ema: float | None = 0.0) -> GanStep:  # type: ignore[no-untyped-def]
    return GanStep(nets.G, nets.D, adam(nets.G.parameters(), cfg.stage1.lr, cfg.train),
                   adam(nets.D.parameters(), cfg.stage1.lr, cfg.train), cfg.stage1, Precision("off", CPU),
                   d_acc_ema=d_acc_ema)


def _batch(n: int = 8, ids: int = 4) -> tuple[torch.Tensor, ...]:
    x = torch.rand(n, 1, 16, 16) * 2 - 1
    return x, torch.randint(0, 3, (n,)), torch.randint(0, ids, (n,))


class TestGanStep:
    def test_g_steps_rule(self, tiny_cfg: DeganConfig) -> None:
        nets = build_degan(tiny_cfg, 1, 3, 4)
        x, y, ids = _batch()
        z = torch.randn(8, tiny_cfg.arch.noise_dim)
        weak = _gan_step(tiny_cfg, nets, d_acc_ema=0.0)(x, y, ids, ids, z)
        strong_step = _gan_step(tiny_cfg, nets, d_acc_ema=10.0)        # EMA stays above the threshold
        strong = strong_step(x, y, ids, ids, z)
        assert weak["g_steps"] == 1 and strong["g_steps"] == tiny_cfg.stage1.g_steps == 2
        assert strong_step.d_acc_ema == pytest.approx(0.9 * 10.0 + 0.1 * strong["d_acc"])
        assert all(p.requires_grad for p in nets.D.parameters())    # D unfrozen again after the G steps
        assert _gan_step(tiny_cfg, nets, d_acc_ema=None).d_acc_ema is None     # 0.5 until the first step

    def test_expression_term_by_hand(self, tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(expr_weight=0.5)
        nets = build_degan(cfg, 1, 3, 4)
        x, y, ids = _batch()
        G = nets.G
        head_before = G.expr_head.weight.detach().clone()
        G.train()
        bn_state = {k: v.clone() for k, v in G.state_dict().items()}
        with torch.no_grad():                           # the term at the step's (pre-update) weights
            expected = F.cross_entropy(G.expr_head(G.encoder(x)), y).item()
        G.load_state_dict(bn_state)                     # undo that pass's BN running-statistics update
        terms = _gan_step(cfg, nets)(x, y, ids, ids, torch.randn(8, cfg.arch.noise_dim))
        assert terms["g_cls"] == pytest.approx(expected, rel=1e-5)
        assert not torch.equal(G.expr_head.weight.detach(), head_before)   # G's optimiser trains the head
        plain = build_degan(tiny_cfg, 1, 3, 4)
        terms = _gan_step(tiny_cfg, plain)(x, y, ids, ids, torch.randn(8, tiny_cfg.arch.noise_dim))
        assert "g_cls" not in terms and "g_recon" not in terms

    def test_reconstruction_term_uses_own_identities(self, tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(recon_weight=5.0, recon_fraction=0.5)
        nets = build_degan(cfg, 1, 3, 4)
        seen: list[torch.Tensor] = []
        real_forward = nets.G.forward

        def spy(x: torch.Tensor, identity: torch.Tensor, *a: object, **kw: object) -> object:
            seen.append(identity.clone())
            return real_forward(x, identity, *a, **kw)
        nets.G.forward = spy  # type: ignore[method-assign]
        x, y, ids = _batch()
        others = (ids + 1) % 4
        terms = _gan_step(cfg, nets)(x, y, ids, others, torch.randn(8, cfg.arch.noise_dim))
        assert torch.equal(seen[0][:4], ids[:4]) and torch.equal(seen[0][4:], others[4:])
        assert terms["g_recon"] > 0


class TestClassifyStep:
    def test_one_update_returns_terms_and_final_logits(self) -> None:
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 3)
        before = model.weight.detach().clone()

        def loss(out: list[torch.Tensor], y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
            value = F.cross_entropy(out[-1], y)
            return value, {"ce": value.item()}
        step = ClassifyStep(lambda x: [model(x) * 0, model(x)], loss, torch.optim.SGD(model.parameters(), 0.1),
                            Precision("off", CPU))
        x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
        terms, final = step(x, y)
        assert set(terms) == {"ce", "loss"} and final.shape == (5, 3)
        assert not torch.equal(model.weight.detach(), before)


class TestMixup:
    @staticmethod
    def _ce(out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        loss = F.cross_entropy(out, y)
        return loss, {"ce": loss.item()}

    @pytest.mark.parametrize("lam", [0.7, 0.2])
    def test_batch_and_loss_by_hand(self, lam: float) -> None:
        x = torch.arange(4 * 2 * 2, dtype=torch.float32).reshape(4, 1, 2, 2)
        y = torch.tensor([0, 1, 2, 0])
        perm = torch.randperm(4, generator=torch.Generator().manual_seed(3))
        mixed, y_major, loss_fn = mixup_batch(x, y, self._ce, lam, torch.Generator().manual_seed(3))
        torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[perm])
        assert torch.equal(y_major, y if lam >= 0.5 else y[perm])
        out = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0], [0.0, 1.0, 3.0], [1.0, -2.0, 0.0]])
        logp = out - out.exp().sum(1, keepdim=True).log()           # log-softmax, by hand
        want = -(lam * logp[torch.arange(4), y] + (1 - lam) * logp[torch.arange(4), y[perm]]).mean()
        loss, terms = loss_fn(out, torch.zeros(4, dtype=torch.long))  # the label passed in is ignored
        torch.testing.assert_close(loss, want)
        assert terms["ce"] == pytest.approx(float(want), rel=1e-5)

    def test_lambda_one_changes_nothing(self) -> None:
        x, y = torch.randn(5, 1, 3, 3), torch.tensor([0, 1, 1, 2, 0])
        mixed, y_major, loss_fn = mixup_batch(x, y, self._ce, 1.0)
        out = torch.randn(5, 3)
        torch.testing.assert_close(mixed, x)
        assert torch.equal(y_major, y)
        torch.testing.assert_close(loss_fn(out, y)[0], self._ce(out, y)[0])


class TestWithSynthesised:
    def test_rows_replaced_by_generator_output(self) -> None:
        calls = []

        class FakeG(torch.nn.Module):
            def forward(self, x: torch.Tensor, ident: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
                calls.append((x.shape[0], ident.clone(), z.shape))
                return torch.full_like(x, -1.0)

        x = torch.rand(8, 1, 16, 16)
        torch.manual_seed(0)
        out = with_synthesised(FakeG(), x, 0.5, n_ids=3, noise_dim=5)
        assert out.shape == x.shape
        assert torch.all(out[:4] == -1) and torch.equal(out[4:], x[4:])
        (n, ident, zshape), = calls
        assert n == 4 and zshape == (4, 5) and 0 <= int(ident.min()) and int(ident.max()) < 3
        assert torch.all(with_synthesised(FakeG(), x, 1.0, 3, 5) == -1)
        state = torch.random.get_rng_state()
        assert with_synthesised(FakeG(), x, 0.0, 3, 5) is x      # no draw, no call
        assert torch.equal(state, torch.random.get_rng_state()) and len(calls) == 2


class TestLike:
    def test_strides_of_reference_and_gradient(self) -> None:
        ref = torch.rand(4, 1, 8, 8).contiguous(memory_format=torch.channels_last)
        leaf = torch.rand(4, 8, 8, 1, requires_grad=True)
        t = leaf.permute(0, 3, 1, 2)                    # strides (64, 1, 8, 1)
        out = like(t, ref)
        assert out.stride() == ref.stride() and torch.equal(out, t)
        out.sum().backward()
        assert leaf.grad is not None and torch.equal(leaf.grad, torch.ones_like(leaf.grad))
        same = torch.rand(4, 1, 8, 8)
        assert like(same, ref) is same                 # equal strides and dtype: no copy
        half = like(same.to(torch.bfloat16), ref)
        assert half.dtype == torch.float32 and torch.equal(half, same.to(torch.bfloat16).float())


class TestEvalMode:
    def test_restores_the_mode(self) -> None:
        m = torch.nn.BatchNorm1d(2)
        for was in (True, False):
            m.train(was)
            with eval_mode(m):
                assert not m.training
            assert m.training is was
        with pytest.raises(RuntimeError), eval_mode(m.train()):
            raise RuntimeError
        assert m.training


class TestLearningRate:
    def test_lr_scale_per_group(self) -> None:
        a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.Adam([{"params": [a]}, {"params": [b], "lr_scale": 0.1}], lr=1.0)
        set_lr([opt], 0.5)
        assert [g["lr"] for g in opt.param_groups] == [0.5, pytest.approx(0.05)]

    def test_schedules(self) -> None:
        assert lr_at("constant", 0.1, 5, 10) == 0.1
        assert lr_at("cosine", 0.1, 0, 10) == pytest.approx(0.1) and lr_at("cosine", 0.1, 10, 10) == pytest.approx(0)
        assert lr_at("cosine", 0.1, 5, 10) == pytest.approx(0.05) and lr_at("cosine", 0.1, 20, 10) == pytest.approx(0)


class TestPrecision:
    def test_off_on_cpu(self) -> None:
        p = Precision("auto", CPU)
        assert not p.enabled and not p.scaler().is_enabled()
        with p.autocast():
            assert not torch.is_autocast_enabled()
