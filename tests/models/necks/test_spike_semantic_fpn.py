"""SpikeSemanticFPN, the segmentation neck (the published QFPN), against a hand-written reference."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import sdt_dense  # noqa: F401  (registers the models)
from sdt_testing import randomise_bn
from sdt_testing.pyramids import make_neck, pyramid, sfa


def test_neck_matches_hand_written_qfpn():
    """lateral = BN(conv1x1(SFA(x))), top-down nearest + add, out = BN(conv3x3(SFA(p)))."""
    neck = make_neck()
    randomise_bn(neck)
    neck.eval()
    feats = pyramid()

    def unit(m, x, padding):
        conv, bn = m.layer.conv, m.layer.norm
        y = F.conv2d(sfa(x), conv.weight, conv.bias, padding=padding)
        return F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)

    lat = [unit(m, x, 0) for m, x in zip(neck.lateral_convs, feats)]
    for i in range(3, 0, -1):
        lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=lat[i - 1].shape[-2:], mode='nearest')
    expected = [unit(m, p, 1) for m, p in zip(neck.fpn_convs, lat)]
    with torch.no_grad():
        outs = neck(feats)
    assert len(outs) == 4
    for out, exp in zip(outs, expected):
        torch.testing.assert_close(out, exp, rtol=1e-5, atol=1e-5)
