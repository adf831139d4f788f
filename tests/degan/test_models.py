from __future__ import annotations

import pytest
import torch

from degan.presets import get_preset, list_presets
from degan.models import BaselineCNN, Encoder, PlainCNN, build_baseline, build_degan


class TestModels:
    @pytest.mark.parametrize("preset", list_presets())
    @pytest.mark.parametrize("channels", [1, 3])
    def test_shapes(self, preset: str, channels: int) -> None:
        cfg = get_preset(preset)
        s, n_e, n_i, b = cfg.arch.image_size, 7, 11, 2
        nets = build_degan(cfg, channels, n_e, n_i)
        x = torch.rand(b, channels, s, s) * 2 - 1
        with torch.no_grad():
            f, taps = nets.G.encoder.forward_taps(x)
            assert f.shape == (b, cfg.arch.feat_dim)
            assert [t.shape[-1] for t in taps] == [s, s // 2, s // 4, s // 8]
            assert [t.shape[1] for t in taps] == nets.G.encoder.tap_channels
            torch.testing.assert_close(nets.G.encoder(x), f)
            out = nets.G(x, torch.tensor([0, n_i - 1]), torch.randn(b, cfg.arch.noise_dim))
            assert out.shape == x.shape and out.abs().max() <= 1
            e, i = nets.D(x)
            assert e.shape == (b, n_e + 1) and i.shape == (b, n_i)
            heads = nets.local(f, taps)
            assert len(heads) == 5 and all(h.shape == (b, n_e) for h in heads)
            assert build_baseline(cfg, channels, n_e)(x).shape == (b, n_e)
            assert build_baseline(cfg.replace({"baseline.network": "cnn3"}), channels, n_e)(x).shape == (b, n_e)

    def test_plain_cnn_layout(self) -> None:
        cfg = get_preset("cpu").replace({"baseline.network": "cnn3"})
        model = build_baseline(cfg, 1, 7)
        assert isinstance(model, PlainCNN)
        convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        assert [c.out_channels for c in convs] == [16, 16, 32, 32, 64, 64]        # 64/128/256 x width 0.25
        assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model.modules()) == 3
        assert model.classifier[-1].in_features == 64
        assert isinstance(build_baseline(cfg.replace({"baseline.network": "encoder"}), 1, 7), BaselineCNN)

    def test_paper_resolutions(self) -> None:
        enc = Encoder(1, 1.0, 350)
        _, taps = enc.forward_taps(torch.zeros(1, 1, 96, 96))
        assert [tuple(t.shape[1:]) for t in taps] == [(64, 96, 96), (128, 48, 48), (192, 24, 24), (256, 12, 12)]

    def test_init_normal_002(self) -> None:
        nets = build_degan(get_preset("paper"), 1, 7, 100)
        w = nets.D.trunk.stages[2][0][0].weight.detach()
        assert abs(float(w.std()) - 0.02) < 0.002 and abs(float(w.mean())) < 0.002

    def test_identity_code_is_one_hot(self) -> None:
        cfg = get_preset("tiny")
        dec = build_degan(cfg, 1, 3, 5).G.decoder
        code = dec.identity_code(torch.tensor([2, 4]))
        assert code.tolist() == [[0, 0, 1, 0, 0], [0, 0, 0, 0, 1]]

    @pytest.mark.parametrize("depth", [1, 2, 3])
    def test_local_depth(self, depth: int) -> None:
        cfg = get_preset("tiny").replace(local_depth=depth)
        nets = build_degan(cfg, 1, 3, 5)
        for k, m in enumerate(nets.local.locals):
            n_down = 4 - k                                  # tap k+1 is at S / 2^k; f(x) at S / 16
            convs = [c for c in m.features.modules() if isinstance(c, torch.nn.Conv2d)]
            assert len(convs) == n_down * depth + 1
            assert [c.stride[0] for c in convs] == ([2] + [1] * (depth - 1)) * n_down + [1]
        x = torch.rand(2, 1, cfg.arch.image_size, cfg.arch.image_size) * 2 - 1
        with torch.no_grad():
            heads = nets.local(*nets.G.encoder.forward_taps(x))
        assert [h.shape for h in heads] == [(2, 3)] * 5



class TestExpressionHead:
    def test_absent_by_default_and_drawn_last(self) -> None:
        cfg = get_preset("tiny")
        torch.manual_seed(0)
        plain = build_degan(cfg, 1, 3, 5)
        torch.manual_seed(0)
        with_head = build_degan(cfg.replace(expr_weight=1.0), 1, 3, 5)
        assert plain.G.expr_head is None
        assert with_head.G.expr_head is not None and with_head.G.expr_head.weight.shape == (3, cfg.arch.feat_dim)
        for name in ("G", "D", "local"):                   # same seed: every other weight is unchanged
            own = with_head.modules()[name].state_dict()
            for key, val in plain.modules()[name].state_dict().items():
                torch.testing.assert_close(own[key], val, rtol=0, atol=0)

    def test_forward_returns_logits_of_f(self) -> None:
        cfg = get_preset("tiny").replace(expr_weight=1.0)
        G = build_degan(cfg, 1, 3, 5).G.eval()
        x = torch.rand(4, 1, cfg.arch.image_size, cfg.arch.image_size) * 2 - 1
        ids, z = torch.tensor([0, 1, 2, 4]), torch.randn(4, cfg.arch.noise_dim)
        with torch.no_grad():
            fake, logits = G(x, ids, z, expression=True)
            torch.testing.assert_close(fake, G(x, ids, z))
            torch.testing.assert_close(logits, G.expr_head(G.encoder(x)))
        assert logits.shape == (4, 3)

    def test_expression_without_head_refused(self) -> None:
        cfg = get_preset("tiny")
        G = build_degan(cfg, 1, 3, 5).G
        x = torch.zeros(1, 1, cfg.arch.image_size, cfg.arch.image_size)
        with pytest.raises(ValueError, match="expr_weight"):
            G(x, torch.tensor([0]), torch.zeros(1, cfg.arch.noise_dim), expression=True)
