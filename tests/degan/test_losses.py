from __future__ import annotations

import math

import pytest
import torch

from degan.losses import discriminator_loss, generator_loss, real_fake_accuracy, stage2_loss


def _nll(row: list[float], k: int) -> float:
    return -math.log(math.exp(row[k]) / sum(math.exp(v) for v in row))


class TestLosses:
    # two expressions + fake (3 logits), two identities, batch of 2
    er = [[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]
    ir = [[1.0, -1.0], [0.0, 2.0]]
    ef = [[0.0, 0.0, 3.0], [1.0, 0.0, 0.0]]
    ye, yid = [0, 1], [0, 1]

    def test_discriminator_eq1(self) -> None:
        total, terms = discriminator_loss(torch.tensor(self.er), torch.tensor(self.ir), torch.tensor(self.ef),
                                          torch.tensor(self.ye), torch.tensor(self.yid))
        expr = (_nll(self.er[0], 0) + _nll(self.er[1], 1)) / 2
        ident = (_nll(self.ir[0], 0) + _nll(self.ir[1], 1)) / 2
        fake = (_nll(self.ef[0], 2) + _nll(self.ef[1], 2)) / 2
        assert terms["d_expr"] == pytest.approx(expr)
        assert terms["d_id"] == pytest.approx(ident)
        assert terms["d_fake"] == pytest.approx(fake)
        assert float(total) == pytest.approx(expr + ident + fake, rel=1e-6)

    def test_generator_eq2(self) -> None:
        idf = [[0.3, -0.2], [1.0, 1.0]]
        target = [1, 0]
        total, terms = generator_loss(torch.tensor(self.ef), torch.tensor(idf), torch.tensor(self.ye),
                                      torch.tensor(target))
        expr = (_nll(self.ef[0], 0) + _nll(self.ef[1], 1)) / 2
        ident = (_nll(idf[0], 1) + _nll(idf[1], 0)) / 2
        assert terms["g_expr"] == pytest.approx(expr) and terms["g_id"] == pytest.approx(ident)
        assert float(total) == pytest.approx(expr + ident, rel=1e-6)

    def test_stage2_weighted_sum(self) -> None:
        logits = [torch.tensor([[float(k), 0.0], [0.0, float(k)]]) for k in range(5)]
        y = torch.tensor([0, 0])
        w = (0.7, 0.6, 0.4, 0.3, 1.0)
        total, terms = stage2_loss(logits, y, w)
        per = [(_nll([k, 0], 0) + _nll([0, k], 0)) / 2 for k in range(5)]
        for k in range(5):
            assert terms[f"L{k + 1}"] == pytest.approx(per[k])
        assert float(total) == pytest.approx(sum(a * b for a, b in zip(w, per)), rel=1e-6)

    def test_stage2_needs_five_weights(self) -> None:
        with pytest.raises(ValueError):
            stage2_loss([torch.zeros(1, 2)] * 5, torch.tensor([0]), (1.0, 1.0))

    def test_real_fake_accuracy(self) -> None:
        # real row 0 argmax 0 (real: ok), row 1 argmax 1 (ok); fake row 0 argmax 2 (ok), row 1 argmax 0 (wrong)
        assert real_fake_accuracy(torch.tensor(self.er), torch.tensor(self.ef)) == pytest.approx(0.75)
