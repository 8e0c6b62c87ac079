"""Saved activations at the spike representation's size (``SavedCounts``, the ``save_counts``
switch): what is stored, that it rebuilds or recomputes bit for bit, and that gradients are
bit-identical with ``save_counts`` ``False``, ``True`` and ``'recompute'`` (E-SpikeFormer ``m``,
with_cp, bf16 autocast, LIF, DDP, D=8, float64, the Large family, the toy Mask R-CNN and the
segmentation neck)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sdt_dense.models.backbones.e_spikeformer import ESpikeFormer
from sdt_dense.models.neurons import SavedCounts, SFANeuron, sfa_quantise
from sdt_dense.models.neurons.saved_counts import (
    CountsView,
    PackedBits,
    observe_saved,
    saved_storage,
    set_save_counts,
)


def bits_of(t: torch.Tensor) -> torch.Tensor:
    """The raw bit patterns (so that -0.0 and 0.0 differ)."""
    ints = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()]
    return t.contiguous().view(ints)


def saved_input(x: torch.Tensor, D: int, norm):
    """``sfa_quantise(x, D, norm)`` saved by a product (as a synaptic layer saves its input),
    inside SavedCounts; returns (neuron output, the tensor autograd hands back, objects packed)."""
    packed = []
    w = torch.ones((), dtype=x.dtype, requires_grad=True)
    with SavedCounts(observer=packed.append):
        out = sfa_quantise(x.requires_grad_(), D, norm)
        y = out * w  # saves `out` for the gradient of w
    return out, y.grad_fn._saved_self, packed


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16, torch.float16, torch.float64])
@pytest.mark.parametrize('D,norm', [(4, None), (4, 1.0), (4, 3.0), (8, 2.5), (15, None), (30, 7.0)])
def test_rebuild_is_bit_identical_for_every_count(dtype, D, norm):
    # every count 0..D, and -0.0 (clamp keeps its sign), on a tensor long enough for vector paths
    values = torch.cat((torch.arange(D + 1.0), torch.tensor([-0.0, -3.0, D + 5.0])))
    x = values.repeat(1000)[torch.randperm(1000 * (D + 4), generator=torch.Generator().manual_seed(D))]
    x = x.to(dtype).view(1000, -1)
    out, rebuilt, packed = saved_input(x, D, norm)
    assert torch.signbit(out).any()  # the -0.0 case is exercised
    assert rebuilt.dtype == out.dtype and rebuilt.shape == out.shape
    assert torch.equal(bits_of(rebuilt), bits_of(out))
    (view,) = [p for p in packed if isinstance(p, CountsView)]
    # codes 0..D plus the -0.0 code fit a nibble up to D = 14
    per_byte = 2 if D <= 14 else 1
    assert view.source.nbytes == -(-out.numel() // per_byte)


def test_views_of_a_neuron_output_share_one_packed_copy():
    x = torch.randn(2, 4, 6, 5) * 3
    packed = []
    with SavedCounts(observer=packed.append):
        s = SFANeuron()(x.requires_grad_())
        k = s.flatten(2).transpose(-1, -2)  # (2, 4, 30) -> (2, 30, 4), as the head split
        w = torch.randn(2, 4, 30, requires_grad=True)
        a = torch.bmm(w, k)  # saves the view k
        b = s * 2.0  # saves nothing (a Python number)
        c = F.conv2d(s, torch.randn(3, 4, 1, 1, requires_grad=True))  # saves s itself
    views = [p for p in packed if isinstance(p, CountsView)]
    assert len(views) == 2 and views[0].source is views[1].source
    assert torch.equal(a.grad_fn._saved_mat2, k) and torch.equal(c.grad_fn._saved_input, s)
    assert b.grad_fn is not None


def test_other_tensors_pass_through_and_masks_become_bits():
    x = torch.randn(3, 50, requires_grad=True)
    packed = []
    with SavedCounts(observer=packed.append):
        real = x * 1.5
        y = real * torch.randn(3, 50, requires_grad=True)  # saves a real-valued tensor
        s = SFANeuron()(real)
    assert any(p is real for p in packed)
    (bits,) = [p for p in packed if isinstance(p, PackedBits)]
    assert bits.nbytes == 150 // 8 + 1
    window = (real >= 0) & (real <= 4)
    assert torch.equal(s.grad_fn.saved_tensors[0], window)
    assert torch.equal(y.grad_fn._saved_self, real)


@pytest.mark.parametrize('n', [1, 7, 8, 9, 64, 1001])
def test_packed_bits_round_trip(n):
    t = torch.rand(n, generator=torch.Generator().manual_seed(n)) > 0.5
    assert torch.equal(PackedBits(t.view(-1, 1)).unpack(), t.view(-1, 1))
    assert PackedBits(t).nbytes == -(-n // 8)


def test_written_in_place_after_the_neuron_is_not_packed():
    x = torch.randn(40, requires_grad=True)
    packed = []
    with SavedCounts(observer=packed.append):
        s = SFANeuron()(x * 1.0)
        s.add_(0.1)  # no longer counts: must be saved as is
        y = s * torch.ones(40, requires_grad=True)
    assert not any(isinstance(p, CountsView) for p in packed)
    assert torch.equal(y.grad_fn._saved_self, s)


def test_steps_aside_under_other_hooks_and_when_disabled():
    x = torch.randn(40, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
        with SavedCounts() as ctx:
            assert not ctx.active
    with SavedCounts(enabled=False) as ctx:
        assert not ctx.active
        s = SFANeuron()(x)
        y = s * torch.ones(40, requires_grad=True)
    assert y.grad_fn._saved_self is s


def _saved(model, x, **kw):
    kinds = {}

    def record(obj):
        key, nbytes = saved_storage(obj)
        if key not in params:
            kinds.setdefault(type(obj).__name__, {})[key] = nbytes

    params = {('tensor', p.untyped_storage().data_ptr()) for p in model.parameters()}
    with observe_saved(record):
        out = model(x)
    del out
    return {k: sum(v.values()) for k, v in kinds.items()}


@pytest.mark.slow
def test_switch_and_saved_bytes_of_the_backbone():
    """``save_counts=False`` saves float tensors; ``True`` codes and bits (at most 0.55x the float
    bytes); ``'recompute'`` (the default) also keeps the conv and BN outputs as recipes: at most
    0.25x, with no float tensor of activation size left (the stem's input image aside)."""
    torch.manual_seed(0)
    model = ESpikeFormer('t', out_indices=(4,), save_counts=False)
    x = torch.randn(1, 3, 64, 64)
    off = _saved(model, x)
    assert set(off) == {'Tensor'}
    model.save_counts = True
    on = _saved(model, x)
    assert {'CountsView', 'PackedBits'} <= set(on)
    assert sum(on.values()) <= 0.55 * sum(off.values())
    assert ESpikeFormer('t').save_counts == 'recompute'
    model.save_counts = 'recompute'
    rec = _saved(model, x)
    assert {'CountsView', 'RecomputedView', 'PackedBits'} <= set(rec)
    assert sum(rec.values()) <= 0.25 * sum(off.values())
    assert rec['Tensor'] <= 0.1 * off['Tensor']


def _seeded(seed: int = 0) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def backbone_grads(model, x, amp: bool = False):
    """All parameter gradients of a fixed random projection of the backbone's outputs."""
    model.zero_grad(set_to_none=True)
    _seeded(1)
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp):
        outs = model(x)
    gen = torch.Generator().manual_seed(2)
    loss = sum((o.float() * torch.randn(o.shape, generator=gen)).sum() for o in outs)
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_grads_bit_identical(model, run, modes=(True, 'recompute')):
    """Gradients with every ``save_counts`` mode equal those of ``False`` bit for bit (every
    trainable parameter has one)."""
    set_save_counts(model, False)
    ref = run()
    assert len(ref) == sum(p.requires_grad for p in model.parameters())
    for mode in modes:
        set_save_counts(model, mode)
        new = run()
        assert ref.keys() == new.keys()
        for name in ref:
            assert torch.equal(bits_of(ref[name]), bits_of(new[name])), (mode, name)


@pytest.mark.slow
def test_m_backbone_gradients_bit_identical():
    torch.manual_seed(0)
    model = ESpikeFormer('m', drop_path_rate=0.1)
    x = torch.randn(2, 3, 64, 64)
    assert_grads_bit_identical(model, lambda: backbone_grads(model, x))


@pytest.mark.slow
@pytest.mark.parametrize(
    'kwargs,amp',
    [
        (dict(with_cp=True), False),
        ({}, True),
        (dict(neuron_cfg=dict(type='LIF', T=2)), False),
        (dict(neuron_cfg=dict(type='SFA', D=8, norm=3)), False),
    ],
    ids=['with_cp', 'bf16', 'lif', 'D8_norm3'],
)
def test_gradients_bit_identical_in_every_mode(kwargs, amp):
    torch.manual_seed(0)
    model = ESpikeFormer('t', **kwargs)
    x = torch.randn(2, 3, 64, 64)
    assert_grads_bit_identical(model, lambda: backbone_grads(model, x, amp))


@pytest.mark.slow
def test_with_cp_checkpointed_blocks_still_save_nothing():
    torch.manual_seed(0)
    # codes only: with recomputation the blocks' own saving is already below the checkpoints' inputs
    model = ESpikeFormer('t', out_indices=(2,), with_cp=True, save_counts=True)
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    with_cp = _saved(model, x)
    model.with_cp = False
    without = _saved(model, x)
    assert sum(with_cp.values()) < 0.5 * sum(without.values())


@pytest.mark.slow
def test_ddp_gradients_bit_identical(tmp_path):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from sdt_testing import free_port

    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{free_port()}', rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        model = ESpikeFormer('t')
        ddp = DistributedDataParallel(model)
        x = torch.randn(2, 3, 32, 32)
        assert_grads_bit_identical(model, lambda: backbone_grads(ddp, x))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_toy_mask_rcnn_gradients_bit_identical():
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm

    from sdt_testing import REPO

    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(str(REPO / 'configs' / 'toy' / 'mask-rcnn_e-spikeformer-t_spike-fpn_toy.py'))
    cfg.model.backbone.init_cfg = None
    _seeded(0)
    detector = revert_sync_batchnorm(MODELS.build(cfg.model))
    detector.init_weights()
    detector.train()
    packed = demo_mm_inputs(
        2,
        [(3, 64, 96), (3, 96, 64)],
        num_items=[3, 2],
        num_classes=cfg.model.roi_head.mask_head.num_classes,
        with_mask=True,
    )

    def grads():
        detector.zero_grad(set_to_none=True)
        _seeded(3)  # proposal sampling
        losses = detector(**detector.data_preprocessor(packed, True), mode='loss')
        total, _ = detector.parse_losses(losses)
        total.backward()
        return {n: p.grad.clone() for n, p in detector.named_parameters() if p.grad is not None}

    def saved_kinds():
        kinds = set()
        with observe_saved(lambda obj: kinds.add(type(obj).__name__)):
            detector.neck([torch.randn(1, c, 8, 8) for c in detector.neck.in_channels])
        return kinds - {'Parameter'}  # weights are saved as they are

    set_save_counts(detector, False)
    assert saved_kinds() == {'Tensor'}  # float activations
    set_save_counts(detector, True)
    assert 'CountsView' in saved_kinds()
    assert_grads_bit_identical(detector, grads)
    ref = grads()
    assert len(ref) > 100 and {n.split('.')[0] for n in ref} >= {'backbone', 'neck', 'rpn_head', 'roi_head'}


@pytest.mark.slow
def test_large_backbone_and_semantic_neck_gradients_bit_identical():
    """The Large family (half-up rounding, norm = D) and the segmentation neck save counts too."""
    from sdt_dense.models import ESpikeFormerLarge, SpikeSemanticFPN

    _seeded(0)
    large = ESpikeFormerLarge(
        arch=dict(embed_dims=[16, 32, 64], depth=2, num_heads=4, rep_branch=True), drop_path_rate=0.1
    ).train()
    x = torch.randn(2, 3, 64, 64)
    assert_grads_bit_identical(large, lambda: backbone_grads(large, x))
    neck = SpikeSemanticFPN([16, 32, 64, 64], 16, 4).train()
    feats = [f.detach() for f in large(x)]
    assert_grads_bit_identical(neck, lambda: backbone_grads(neck, feats))
