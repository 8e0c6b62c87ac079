"""SpikeFPNHead, the segmentation head (the published QFPNHead): structure and published sizes,
stride checks, dropout, and spike-driven inference of neck and head equal to integer mode."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import sdt_dense  # noqa: F401  (registers the models)
from sdt_dense.deploy import spike_driven
from sdt_testing import randomise_bn
from sdt_testing.pyramids import make_head, make_neck, pyramid


@pytest.fixture(scope='module', autouse=True)
def _mmseg_scope():
    """The head builds its loss through the default scope's registry: mmseg's."""
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def test_head_structure_and_published_sizes():
    # published taps: strides [2, 4, 8, 16] -> [1, 1, 2, 3] stages of SFA -> conv3x3 -> BN
    head = make_head(in_channels=[128] * 4, channels=128, num_classes=150, strides=(2, 4, 8, 16))
    convs = [[m for m in sh.modules() if isinstance(m, nn.Conv2d)] for sh in head.scale_heads]
    assert [len(c) for c in convs] == [1, 1, 2, 3]
    assert all(c.kernel_size == (3, 3) and c.bias is None for cs in convs for c in cs)
    # parameter count of the published QFPNHead (1.053 M): 7 convs 128x128x3x3 + BN,
    # conv_seg 128 -> 150 with bias
    n_params = sum(p.numel() for p in head.parameters())
    assert n_params == 7 * (128 * 128 * 9 + 2 * 128) + 128 * 150 + 150
    # neck of the 19M config (0.668 M with conv biases; ours drops the biases that the
    # following BN makes redundant: 8 x 128)
    neck = make_neck([32, 64, 128, 360], 128)
    assert sum(p.numel() for p in neck.parameters()) == 667_648 - 8 * 128
    # other taps: [4, 8, 16, 16] -> [1, 1, 2, 2], logits at stride 4
    head = make_head(strides=(4, 8, 16, 16))
    n_convs = [sum(isinstance(m, nn.Conv2d) for m in sh.modules()) for sh in head.scale_heads]
    assert n_convs == [1, 1, 2, 2]
    feats = pyramid((16,) * 4, (4, 8, 16, 16), size=64)
    assert head(feats).shape == (2, 5, 16, 16)


def test_head_rejects_wrong_feature_strides():
    meta = [dict(img_shape=(32, 32), ori_shape=(32, 32))]
    feats = pyramid((16,) * 4, (2, 4, 8, 16), size=32)  # the published taps of a 32 px input
    assert make_head(strides=(2, 4, 8, 16)).predict(feats, meta, {}).shape == (2, 5, 32, 32)
    # the published configs declared [4, 8, 16, 32] for features at strides [2, 4, 8, 16]
    with pytest.raises(ValueError, match=r'feature_strides=\[4, 8, 16, 32\] put level 0'):
        make_head(strides=(4, 8, 16, 32)).predict(feats, meta, {})
    # taps (1, 2, 3, 4) are at [4, 8, 16, 16]: a level declared at 32 does not match its size
    feats = pyramid((16,) * 4, (4, 8, 16, 16), size=32)
    with pytest.raises(ValueError, match='put level 3 at 8x'):
        make_head(strides=(4, 8, 16, 32))(feats)
    with pytest.raises(ValueError, match='powers of two'):
        make_head(strides=(2, 4, 8, 12))
    with pytest.raises(ValueError, match='one stride per input level'):
        make_head(strides=(2, 4, 8))
    with pytest.raises(ValueError, match='finest'):
        make_head(strides=(4, 2, 8, 16))
    with pytest.raises(ValueError, match='expected'):
        make_head()(pyramid((16, 16, 16, 8)))
    with pytest.raises(ValueError, match='input levels'):
        make_neck()(pyramid()[:3])


def test_in_channels_different_from_channels():
    head = make_head(in_channels=(8, 16, 24, 40), channels=12, num_classes=3)
    first = [next(m for m in sh.modules() if isinstance(m, nn.Conv2d)) for sh in head.scale_heads]
    assert [c.in_channels for c in first] == [8, 16, 24, 40]
    assert all(c.out_channels == 12 for c in first)
    out = head(pyramid(size=32))
    assert out.shape == (2, 3, 16, 16)  # stride 2
    out.sum().backward()
    assert all(p.grad is not None for p in head.parameters())


def test_dropout_active_in_train_mode_only():
    head = make_head(dropout_ratio=0.5)
    seen = {}
    head.out_neuron.register_forward_hook(lambda m, a, out: seen.__setitem__('spikes', out))
    head.conv_seg.register_forward_pre_hook(lambda m, a: seen.__setitem__('conv_in', a[0]))
    feats = pyramid((16,) * 4)

    torch.manual_seed(0)
    head.train()
    head(feats)
    spikes, conv_in = seen['spikes'], seen['conv_in']
    active = spikes.flatten(2).abs().sum(-1) > 0  # (B, C) channels that fired
    dropped = conv_in.flatten(2).abs().sum(-1) == 0
    assert (active & dropped).any() and (active & ~dropped).any()  # whole channels silenced
    kept = active & ~dropped
    torch.testing.assert_close(conv_in.flatten(2)[kept], spikes.flatten(2)[kept] / 0.5)

    head.eval()
    head(feats)
    assert seen['conv_in'] is seen['spikes']  # eval: the spikes reach conv_seg directly


def test_spike_driven_inference_equals_integer_mode():
    neck, head = make_neck(), make_head()
    randomise_bn(neck)
    randomise_bn(head, 1)
    model = nn.Sequential(neck, head).eval()
    feats = pyramid()
    with torch.no_grad():
        expected = model(feats)
        with spike_driven(model):
            out = model(feats)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
