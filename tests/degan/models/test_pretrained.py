from __future__ import annotations

import torch

from degan.config import DeganConfig
from degan.models import DeganNets, build_degan, load_pretrained

States = dict[str, dict[str, torch.Tensor]]


def _pretrain_across(cfg: DeganConfig, pre_labels: list[str],
                     labels: list[str]) -> tuple[DeganNets, DeganNets, States]:
    """A source model on ``pre_labels`` (4 identities) loaded into a fresh target on ``labels``
    (5 identities, init std 0.5); also the target's G and D states before loading."""
    src = build_degan(cfg, 1, len(pre_labels), 4)
    pre = {"models": {"G": src.G.state_dict(), "D": src.D.state_dict()}, "meta": {"label_names": pre_labels}}
    dst = build_degan(cfg.replace(init_std=0.5), 1, len(labels), 5)
    fresh = {name: {k: v.clone() for k, v in m.state_dict().items()} for name, m in (("G", dst.G), ("D", dst.D))}
    load_pretrained(dst, pre, cfg.arch, labels)
    return src, dst, fresh


class TestLoadPretrained:
    def test_identity_parts_reinitialised(self, tiny_cfg: DeganConfig) -> None:
        src = build_degan(tiny_cfg, 1, 4, 9)                  # another data set: 4 classes, 9 identities
        pre = {"models": {"G": src.G.state_dict(), "D": src.D.state_dict()}}
        dst = build_degan(tiny_cfg.replace(init_std=0.5), 1, 3, 5)
        load_pretrained(dst, pre, tiny_cfg.arch)
        torch.testing.assert_close(dst.G.encoder.state_dict(), src.G.encoder.state_dict())
        torch.testing.assert_close(dst.D.trunk.state_dict(), src.D.trunk.state_dict())
        fd, nz = tiny_cfg.arch.feat_dim, tiny_cfg.arch.noise_dim
        w_dst, w_src = dst.G.decoder.fc.weight, src.G.decoder.fc.weight
        torch.testing.assert_close(w_dst[:, :fd], w_src[:, :fd])
        torch.testing.assert_close(w_dst[:, -nz:], w_src[:, -nz:])
        assert w_dst.shape[1] == fd + 5 + nz
        assert dst.D.head_id.weight.shape == (5, fd) and dst.D.head_expr.weight.shape == (4, fd)
        assert float(dst.D.head_expr.weight.detach().std()) > 0.1      # other label set: kept its fresh init

    def test_expression_head_matched_by_label_name(self, tiny_cfg: DeganConfig) -> None:
        # JAFFE-like pre-training labels vs CK+-like target labels: same count, other order/classes
        pre_labels = ["anger", "disgust", "fear", "happy", "neutral", "sadness", "surprise"]
        labels = ["anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"]
        src, dst, fresh_states = _pretrain_across(tiny_cfg, pre_labels, labels)
        fresh = fresh_states["D"]["head_expr.weight"]
        w, b = dst.D.head_expr.weight.detach(), dst.D.head_expr.bias.detach()
        ws, bs = src.D.head_expr.weight.detach(), src.D.head_expr.bias.detach()
        for i, name in enumerate(labels):
            if name in pre_labels:
                j = pre_labels.index(name)
                torch.testing.assert_close(w[i], ws[j])
                torch.testing.assert_close(b[i], bs[j])
        torch.testing.assert_close(w[1], fresh[1])            # contempt: not in JAFFE, fresh init
        torch.testing.assert_close(w[-1], ws[-1])             # the "fake" output
        assert not torch.equal(w[2], ws[2])                   # disgust is row 1 in JAFFE, row 2 here

    def test_generator_expression_head_matched_by_label_name(self, tiny_cfg: DeganConfig) -> None:
        cfg = tiny_cfg.replace(expr_weight=1.0)
        pre_labels = ["anger", "disgust", "happy"]
        labels = ["disgust", "contempt", "anger", "happy"]
        src, dst, fresh_states = _pretrain_across(cfg, pre_labels, labels)
        fresh = fresh_states["G"]["expr_head.weight"]
        w, ws = dst.G.expr_head.weight.detach(), src.G.expr_head.weight.detach()
        torch.testing.assert_close(w[0], ws[1])               # disgust
        torch.testing.assert_close(w[2], ws[0])               # anger
        torch.testing.assert_close(w[3], ws[2])               # happy: the last row is a class, not "fake"
        torch.testing.assert_close(w[1], fresh[1])            # contempt: fresh init
        torch.testing.assert_close(dst.G.expr_head.bias.detach()[3], src.G.expr_head.bias.detach()[2])
