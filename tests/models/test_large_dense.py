"""E-SpikeFormer Large (83M / 173M) in dense prediction: every config of
configs/e_spikeformer_large/ and the toy Large detector declare the backbone's true strides and
widths, carry the derived recipe (layer decay, drop path, SyncBN, with_cp, released weights),
build and train; spike-driven inference, RepConv fusion and BN folding keep the toy detector's
outputs (float64); the toy config trains and tests end to end."""

from __future__ import annotations

import copy
import functools
import json
import sys
from pathlib import Path

import mmcv.ops  # noqa: F401  (compiled ops: RoIAlign; a missing build fails, never skips)
import pytest
import torch
from mmdet.registry import MODELS as DET_MODELS
from mmdet.testing import demo_mm_inputs  # noqa: E402
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS as SEG_MODELS
from torch import nn

import sdt_dense  # noqa: F401  (registers the models)
from sdt_dense.deploy import fold_bn, fuse_rep_conv, spike_driven
from sdt_dense.models import ESpikeFormerLarge
from sdt_dense.models.layers import RepConv
from sdt_dense.models.neurons import get_spike_slices
from sdt_testing import REPO, randomise_bn, run_ok, true_pyramid_strides

CONFIGS = REPO / 'configs'
LARGE = CONFIGS / 'e_spikeformer_large'
LARGE_CONFIGS = sorted(LARGE.glob('*.py'))
DET_CONFIGS = [p for p in LARGE_CONFIGS if 'mask-rcnn' in p.name]
SEG_CONFIGS = [p for p in LARGE_CONFIGS if p.name.startswith('fpn_')]
TOY = CONFIGS / 'toy' / 'mask-rcnn_e-spikeformer-large-toy_spike-fpn_toy.py'
TOY_MAE = CONFIGS / 'toy' / 'spike-mae_e-spikeformer-large-toy_toy.py'
#: a tiny Large arch (83M layout) that replaces the real one where a model is run
TINY = dict(embed_dims=[16, 32, 64], depth=2, num_heads=4, rep_branch=True)


def ids(p: Path) -> str:
    return p.stem


@functools.lru_cache(maxsize=None)
def _read(path: Path) -> Config:
    return Config.fromfile(str(path))


def read(path: Path) -> Config:
    """``Config.fromfile`` (slow: resolves mmdet/mmseg bases), cached; a private copy."""
    return copy.deepcopy(_read(path))


def full_size_backbone(cfg: Config) -> ESpikeFormerLarge:
    """The config's backbone with its real arch, on the meta device (no memory, no weights)."""
    kwargs = dict(cfg.model.backbone, init_cfg=None)
    assert kwargs.pop('type') == 'ESpikeFormerLarge'
    with torch.device('meta'):
        return ESpikeFormerLarge(**kwargs)


def tiny_cfg(path: Path) -> Config:
    """The config with the TINY arch (same out_indices, so the same strides), the neck widths
    that arch needs, no checkpoint and few proposals / RoIs."""
    cfg = read(path)
    backbone = cfg.model.backbone
    backbone.update(arch=TINY, init_cfg=None)
    widths = ESpikeFormerLarge(TINY, out_indices=backbone.out_indices).out_channels
    cfg.model.neck.in_channels = widths
    train_cfg = cfg.model.get('train_cfg') or {}
    if 'rpn_proposal' in train_cfg:
        train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=50)
        rcnn = train_cfg.rcnn if isinstance(train_cfg.rcnn, list) else [train_cfg.rcnn]
        for stage in rcnn:
            stage.sampler.num = 32
        cfg.model.test_cfg.rpn.update(nms_pre=200, max_per_img=50)
    return cfg


def build(cfg: Config) -> nn.Module:
    registry = DET_MODELS if cfg.default_scope == 'mmdet' else SEG_MODELS
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = registry.build(copy.deepcopy(cfg.model))
    model.init_weights()
    return revert_sync_batchnorm(model)  # as the Runner does without distributed training


# ---------------------------------------------------------------------------------------------
# Configs: declared widths and strides are the backbone's


def test_all_large_configs_present():
    assert {p.name for p in LARGE_CONFIGS} == {
        'mask-rcnn_e-spikeformer-83m_spike-fpn_8xb2-1x_coco.py',
        'mask-rcnn_e-spikeformer-173m_spike-fpn_8xb2-1x_coco.py',
        'cascade-mask-rcnn_e-spikeformer-83m_spike-fpn_8xb2-3x_coco.py',
        'cascade-mask-rcnn_e-spikeformer-173m_spike-fpn_8xb2-3x_coco.py',
        'fpn_e-spikeformer-83m_8xb2-160k_ade20k-512x512.py',
        'fpn_e-spikeformer-173m_8xb2-160k_ade20k-512x512.py',
    }


@pytest.mark.slow
@pytest.mark.parametrize('path', LARGE_CONFIGS + [TOY], ids=ids)
def test_declared_widths_and_strides_are_the_full_size_backbones(path):
    """With the real arch (built on the meta device): the neck's in_channels are the backbone's
    out_channels and every declared stride is one of its out_strides."""
    cfg = read(path)
    backbone = full_size_backbone(cfg)
    if path != TOY:
        arch = '173M' if '173m' in path.name else '83M'
        assert cfg.model.backbone.arch == arch
    assert list(cfg.model.neck.in_channels) == backbone.out_channels
    strides = backbone.out_strides
    assert strides == [4, 8, 16, 32]
    if cfg.default_scope == 'mmdet':
        assert cfg.model.neck.num_outs == 5  # P2..P5 + max-pooled P6
        assert list(cfg.model.rpn_head.anchor_generator.strides) == strides + [64]
        for name in ('bbox_roi_extractor', 'mask_roi_extractor'):
            assert list(cfg.model.roi_head[name].featmap_strides) == strides
    else:
        assert list(cfg.model.decode_head.feature_strides) == strides


@pytest.mark.slow
@pytest.mark.parametrize('path', DET_CONFIGS + [TOY], ids=ids)
def test_detector_runs_at_the_declared_strides_and_trains(path):
    """The detector (TINY arch, same levels): measured backbone, neck, anchor and RoI strides all
    equal; anchor sizes are 32..512 px (x2 per level); one train step with the config's optimizer
    (layer decay) updates the stem and the neck."""
    cfg = tiny_cfg(path)
    model = build(cfg)
    s = true_pyramid_strides(model.eval(), size=64)
    assert s['backbone'] == s['declared_backbone'] == [4, 8, 16, 32]
    assert s['backbone_channels'] == model.backbone.out_channels == [16, 32, 64, 64]
    assert s['neck'] == s['anchors'] == [4, 8, 16, 32, 64]
    assert s['roi'] and all(r == s['neck'][:4] for r in s['roi'])
    anchors = model.rpn_head.prior_generator
    widths = [float((a[:, 2] - a[:, 0]).max()) for a in anchors.base_anchors]
    assert widths == pytest.approx([45.25 * 2**i for i in range(5)], rel=1e-3)  # 32..512 at 1:2

    wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    packed = demo_mm_inputs(1, [(3, 64, 96)], num_items=[2], num_classes=3, with_mask=True)
    stem = model.backbone.downsamples[0].conv.weight
    neck = model.neck.lateral_convs[0].layer.conv.weight
    before = [stem.detach().clone(), neck.detach().clone()]
    model.train()
    log = model.train_step(packed, wrapper)
    assert torch.isfinite(log['loss'])
    assert not torch.equal(stem, before[0]) and not torch.equal(neck, before[1])


@pytest.mark.parametrize('path', SEG_CONFIGS, ids=ids)
def test_segmentor_runs_at_the_declared_strides(path):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    cfg = tiny_cfg(path)
    cfg.model.data_preprocessor.size = (64, 64)
    model = build(cfg)
    with torch.no_grad():
        feats = model.backbone.eval()(torch.zeros(1, 3, 64, 64))
    assert [64 // f.shape[-1] for f in feats] == list(cfg.model.decode_head.feature_strides)
    g = torch.Generator().manual_seed(0)
    sample = SegDataSample(gt_sem_seg=PixelData(data=torch.randint(0, 150, (1, 64, 64), generator=g)))
    sample.set_metainfo(dict(img_shape=(64, 64), ori_shape=(64, 64)))
    data = dict(
        inputs=[torch.randint(0, 256, (3, 64, 64), generator=g, dtype=torch.uint8)], data_samples=[sample]
    )
    wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    model.train()
    log = model.train_step(data, wrapper)
    assert torch.isfinite(log['loss'])
    model.eval()
    with torch.no_grad():
        (result,) = model.test_step(data)
    assert result.seg_logits.data.shape == (150, 64, 64)


# ---------------------------------------------------------------------------------------------
# The derived recipe


@pytest.mark.parametrize('path', LARGE_CONFIGS, ids=ids)
def test_derived_recipe(path):
    cfg = read(path)
    backbone = cfg.model.backbone
    arch = '173m' if '173m' in path.name else '83m'
    assert backbone.init_cfg == dict(
        type='Pretrained', checkpoint=f'checkpoints/e-spikeformer-{arch}-1x4_in1k.pth'
    )
    assert backbone.out_indices == (1, 2, 3, 4)
    assert backbone.neuron_cfg == dict(D=4)  # the released "1x4" weights
    assert backbone.norm_cfg.type == 'SyncBN'
    assert backbone.drop_path_rate == 0.1 and backbone.with_cp is True
    # the published forms of the options docs/differences.md lists as Large rows
    for key in (
        'attn_token_scale',
        'drop_path_mode',
        'layer_scale_init_value',
        'stride16_block',
        'frozen_stages',
        'norm_eval',
    ):
        assert key not in backbone, key  # the backbone defaults (see the differences table)
    opt = cfg.optim_wrapper
    assert opt.constructor == 'LargeLayerDecayOptimWrapperConstructor'
    assert opt.paramwise_cfg == dict(layer_decay_rate=0.75)
    assert opt.optimizer.type == 'AdamW'
    assert cfg.train_dataloader.batch_size == 2  # 8 GPUs x 2 images
    if path.name.startswith('mask-rcnn'):
        assert (opt.optimizer.lr, opt.optimizer.weight_decay) == (1e-4, 0.05)
        assert cfg.auto_scale_lr.base_batch_size == 16 and cfg.train_cfg.max_epochs == 12
    elif path.name.startswith('cascade'):
        assert (opt.optimizer.lr, opt.optimizer.weight_decay) == (2e-4, 0.05)
        assert cfg.auto_scale_lr.base_batch_size == 16 and cfg.train_cfg.max_epochs == 36
        assert cfg.model.type == 'CascadeRCNN'
    else:
        assert (opt.optimizer.lr, opt.optimizer.weight_decay) == (1e-3, 0.005)
        assert cfg.train_cfg.max_iters == 160000
    head = path.read_text().split('_base_')[0]
    assert 'NO DENSE RECIPE HAS BEEN PUBLISHED' in head and 'docs/differences.md' in head


def test_layer_decay_groups_of_a_config():
    """The Mask R-CNN 83M optimizer on the real arch (meta device): 14 layer ids, stem at
    0.75^13 of the base lr, block j at 0.75^(12 - j), neck, heads and the stride-32 level at 1,
    no weight decay on 1-D tensors."""
    cfg = read(
        DET_CONFIGS[[p.name.startswith('mask-rcnn_e-spikeformer-83m') for p in DET_CONFIGS].index(True)]
    )
    with DefaultScope.overwrite_default_scope('mmdet'), torch.device('meta'):
        cfg.model.backbone.init_cfg = None
        model = DET_MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    lr = {id(p): g['lr'] for g in wrapper.optimizer.param_groups for p in g['params']}
    wd = {id(p): g['weight_decay'] for g in wrapper.optimizer.param_groups for p in g['params']}
    bb = model.backbone
    expected = {
        bb.downsamples[0].conv.weight: 0.75**13,
        bb.conv_stages[2][1].conv1.conv.weight: 0.75**13,
        bb.blocks[0].attn.q_conv.conv1.conv.weight: 0.75**12,
        bb.blocks[11].mlp.fc2.conv.weight: 0.75,
        bb.extra_stride32.conv.weight: 1.0,
        model.neck.lateral_convs[0].layer.conv.weight: 1.0,
        model.roi_head.mask_head.conv_logits.weight: 1.0,
    }
    for p, scale in expected.items():
        assert lr[id(p)] == pytest.approx(1e-4 * scale, rel=1e-9)
    assert len(lr) == sum(1 for p in model.parameters() if p.requires_grad)
    assert all(wd[id(p)] == (0 if p.ndim <= 1 else 0.05) for p in model.parameters())


def test_missing_released_checkpoint_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = read(DET_CONFIGS[0])
    backbone = dict(cfg.model.backbone, arch=TINY)
    backbone.pop('type')
    model = ESpikeFormerLarge(**backbone)
    with pytest.raises(FileNotFoundError, match=r'checkpoints/e-spikeformer-.*-1x4_in1k\.pth'):
        model.init_weights()


@pytest.mark.slow
def test_toy_config_takes_the_spike_mae_weights(tmp_path):
    """The toy detector's arch is the spike-MAE toy arch (so those weights load), it starts from
    scratch by default, and the documented child config points init_cfg at the MAE file."""
    cfg = read(TOY)
    assert cfg.mae_checkpoint is None and cfg.model.backbone.init_cfg is None
    assert cfg.model.backbone.arch == cfg.toy_large_arch
    if TOY_MAE.is_file():
        assert read(TOY_MAE).toy_large_arch == cfg.toy_large_arch
    child = tmp_path / 'toy_from_mae.py'
    child.write_text(
        f'_base_ = [{str(TOY)!r}]\n'
        "model = dict(backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained',\n"
        "                                         checkpoint='mae.pth')))\n"
    )
    assert "init_cfg=dict(_delete_=True, type='Pretrained'" in TOY.read_text()
    assert Config.fromfile(str(child)).model.backbone.init_cfg == dict(
        type='Pretrained', checkpoint='mae.pth'
    )


# ---------------------------------------------------------------------------------------------
# Deployment transforms on the toy Large detector (float64)


@pytest.fixture(scope='module')
def toy_detector():
    """The toy Large Mask R-CNN with randomised BatchNorms (every spike level occurs, folding is
    non-trivial) and non-trivial layer scales, in float64 and eval mode."""
    cfg = read(TOY)
    cfg.model.backbone.layer_scale_init_value = 0.5  # 1e-6 would hide the transformer branches
    model = randomise_bn(build(cfg), seed=1)
    return model.double().eval()


def run_parts(model: nn.Module, x: torch.Tensor) -> list:
    """Backbone, neck, RPN and RoI-head outputs (fixed RoIs) of a detector."""
    rois = torch.tensor(
        [[0, 4.0, 4.0, 40.0, 30.0], [0, 10.0, 20.0, 90.0, 60.0], [0, 0.0, 0.0, 64.0, 64.0]], dtype=x.dtype
    )
    with torch.no_grad():
        feats = model.backbone(x)
        pyramid = model.neck(feats)
        rpn = model.rpn_head(pyramid)
        bbox = model.roi_head._bbox_forward(pyramid, rois)
        mask = model.roi_head._mask_forward(pyramid, rois)
    return [*feats, *pyramid, *rpn[0], *rpn[1], bbox['cls_score'], bbox['bbox_pred'], mask['mask_preds']]


def max_diff(a: list, b: list) -> float:
    assert len(a) == len(b)
    return max((x - y).abs().max().item() for x, y in zip(a, b))


@pytest.fixture(scope='module')
def toy_input():
    return 2 * torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(3), dtype=torch.float64)


def attention_inputs_fire(model: nn.Module, x: torch.Tensor) -> float:
    """Mean spike count of every attention's q neuron (to check the test exercises them)."""
    counts = []
    handles = [
        b.attn.q_neuron.register_forward_hook(lambda m, i, o: counts.append(float(o.mean())))
        for b in model.backbone.blocks
    ]
    try:
        run_parts(model, x)
    finally:
        for h in handles:
            h.remove()
    return min(counts)


def test_spike_driven_equals_integer_mode(toy_detector, toy_input):
    """Binary spike slices through every synaptic layer and both attention products give the
    integer-mode outputs of the backbone, neck, RPN and RoI heads (float64)."""
    assert attention_inputs_fire(toy_detector, toy_input) > 0
    ref = run_parts(toy_detector, toy_input)
    with spike_driven(toy_detector):
        out = run_parts(toy_detector, toy_input)
    assert max_diff(ref, out) <= 1e-9


def test_rep_conv_fusion_keeps_outputs_and_makes_every_block_conv_spike_driven(toy_detector, toy_input):
    fused = fuse_rep_conv(toy_detector, inplace=False)
    reps = [m for m in fused.modules() if isinstance(m, RepConv)]
    assert len(reps) == 2 * 5  # q, k, v, projection and the token branch of both blocks
    assert all(isinstance(r.conv2, nn.Identity) for r in reps)
    ref = run_parts(toy_detector, toy_input)
    assert max_diff(ref, run_parts(fused, toy_input)) <= 1e-9

    def block_conv_inputs(model):
        kinds = []
        handles = [
            m.register_forward_pre_hook(lambda mod, args: kinds.append(get_spike_slices(args[0]) is not None))
            for m in model.backbone.blocks.modules()
            if isinstance(m, nn.Conv1d)
        ]
        try:
            with spike_driven(model):
                out = run_parts(model, toy_input)
        finally:
            for h in handles:
                h.remove()
        return kinds, out

    kinds, out = block_conv_inputs(fused)
    assert kinds and all(kinds)  # every token conv is fed binary spikes
    assert max_diff(ref, out) <= 1e-9
    kinds, _ = block_conv_inputs(toy_detector)
    assert kinds.count(False) == 10  # unfused: each RepConv's second map reads real values


def test_fold_bn_keeps_outputs(toy_detector, toy_input):
    """BN folding (and folding after RepConv fusion) keeps every output in integer and
    spike-driven mode. The attention's outer BNs (after a RepConv) are not conv-BN pairs and stay
    (they cost nothing in the energy convention)."""
    ref = run_parts(toy_detector, toy_input)
    folded = fold_bn(toy_detector, inplace=False)
    bns = [n for n, m in folded.backbone.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert bns and all(n.rsplit('.', 1)[-1] in ('q_bn', 'k_bn', 'v_bn', 'proj_bn') for n in bns)
    for model in (folded, fuse_rep_conv(fold_bn(toy_detector, inplace=False))):
        assert max_diff(ref, run_parts(model, toy_input)) <= 1e-9
        with spike_driven(model):
            assert max_diff(ref, run_parts(model, toy_input)) <= 1e-9


# ---------------------------------------------------------------------------------------------
# The toy config end to end


def tiny_toy_config(tmp_path: Path, data_root: Path) -> Path:
    path = tmp_path / 'toy_large_tiny.py'
    path.write_text(f"""
_base_ = [{str(TOY)!r}]
data_root = {str(data_root) + '/'!r}
_loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(batch_size=2, **_loader, dataset=dict(data_root=data_root))
val_dataloader = dict(**_loader, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=1), logger=dict(interval=1))
""")
    return path


LEARN_EPOCHS = 12


def learning_toy_config(tmp_path: Path, data_root: Path) -> Path:
    """The toy Large config trained for LEARN_EPOCHS on a few images (short warm-up, no lr step)
    and evaluated on those training images: a check that it learns, not of generalisation."""
    path = tmp_path / 'toy_large_learn.py'
    path.write_text(f"""
_base_ = [{str(tiny_toy_config(tmp_path, data_root))!r}]
_split = dict(ann_file='annotations/instances_train2017.json', data_prefix=dict(img='train2017/'))
val_dataloader = dict(dataset=_split)
test_dataloader = val_dataloader
val_evaluator = dict(ann_file={str(data_root / 'annotations' / 'instances_train2017.json')!r})
test_evaluator = val_evaluator
train_cfg = dict(max_epochs={LEARN_EPOCHS}, val_interval={LEARN_EPOCHS})
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10)]
default_hooks = dict(checkpoint=dict(interval={LEARN_EPOCHS}), logger=dict(interval=10))
""")
    return path


@pytest.mark.slow
def test_toy_large_train_then_test(tmp_path):
    """tools/train.py then tools/test.py on the toy Large detector: it learns its training images,
    box mAP far above the chance level of random boxes of training-set sizes (drawn as for the
    event-camera chance level, :mod:`sdt_dense.analysis.chance`), on the same images."""
    from sdt_dense.analysis.chance import coco_box_chance
    from sdt_testing import make_toy_data

    data = make_toy_data('det', tmp_path / 'toy_coco', num_train=16, num_val=4, image_size=96)
    config = learning_toy_config(tmp_path, data)
    work = tmp_path / 'work'
    log = run_ok([sys.executable, REPO / 'tools' / 'train.py', config, '--work-dir', work], cwd=tmp_path)
    assert 'coco/bbox_mAP' in log  # validation after the last epoch
    ckpt = work / f'epoch_{LEARN_EPOCHS}.pth'
    state = torch.load(ckpt, weights_only=True, map_location='cpu')['state_dict']
    assert 'backbone.extra_stride32.conv.weight' in state
    assert 'backbone.blocks.1.rep_conv.conv2.conv.weight' in state
    run_ok(
        [sys.executable, REPO / 'tools' / 'test.py', config, ckpt, '--work-dir', tmp_path / 'test'],
        cwd=tmp_path,
    )
    metrics = json.loads((tmp_path / 'test' / 'metrics.json').read_text())
    assert {'coco/bbox_mAP', 'coco/segm_mAP'} <= set(metrics)
    ann = data / 'annotations' / 'instances_train2017.json'
    chance = coco_box_chance(ann, ann, per_image=10, seeds=5)
    assert chance['coco/bbox_mAP_50'] < 0.1  # random boxes rarely hit
    # (chance on 16 such images: mAP@50 0.0033 +- 0.0013 over 5 draws)
    assert metrics['coco/bbox_mAP_50'] > max(
        3 * chance['coco/bbox_mAP_50'], chance['coco/bbox_mAP_50'] + 5 * chance['coco/bbox_mAP_50_std']
    ), (metrics, chance)


# ---------------------------------------------------------------------------------------------
# The "published behaviour back" options of docs/differences.md (Large rows), applied verbatim


DOC = (REPO / 'docs' / 'differences.md').read_text()
MASK_83M = LARGE / 'mask-rcnn_e-spikeformer-83m_spike-fpn_8xb2-1x_coco.py'
MASK_173M = LARGE / 'mask-rcnn_e-spikeformer-173m_spike-fpn_8xb2-1x_coco.py'
STEM_192_SNIPPET = 'model = dict(backbone=dict(arch=dict(_delete_=True, embed_dims=[192, 384, 768])))'


def with_options(path: Path, options) -> Config:
    """The config with ``--cfg-options *options`` applied as tools/train.py does."""
    import argparse

    from mmengine.config import DictAction

    cfg = read(path)
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    cfg.merge_from_dict(parser.parse_args(['--cfg-options', *options]).cfg_options)
    return cfg


def tiny_backbone(cfg: Config) -> ESpikeFormerLarge:
    kwargs = dict(cfg.model.backbone, arch=TINY, init_cfg=None)
    kwargs.pop('type')
    return ESpikeFormerLarge(**kwargs)


def _batch_drop_path(cfg):
    from sdt_dense.models.layers import BatchDropPath

    assert isinstance(tiny_backbone(cfg).blocks[1].drop_path, BatchDropPath)


def _d8(cfg):
    neurons = [m for m in tiny_backbone(cfg).modules() if hasattr(m, 'rounding')]
    assert neurons and {(n.D, n.rounding, n.window) for n in neurons} == {(8, 'half_up', 'exclusive')}


def _plain_bn(cfg):
    norms = [m for m in tiny_backbone(cfg).modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and not any(isinstance(m, nn.SyncBatchNorm) for m in norms)


def _no_cp(cfg):
    assert tiny_backbone(cfg).with_cp is False


def _trunk_only(cfg):
    backbone = tiny_backbone(cfg)
    assert backbone.extra_stride32 is None and backbone.out_strides == [4, 8, 16]


def _rate_01(cfg):
    rates = [b.drop_path.drop_prob for b in tiny_backbone(cfg).blocks[1:]]
    assert rates == pytest.approx([0.1])  # linear 0 .. 0.1 over the (here 2) blocks


def _no_token_scale(cfg):
    assert all(b.attn.token_scale is None for b in tiny_backbone(cfg).blocks)


def _stem_192(cfg):
    ns = {}
    exec(STEM_192_SNIPPET, ns)  # the documented config lines, merged like a child config
    cfg.merge_from_dict({'model': ns['model']})
    kwargs = dict(cfg.model.backbone, init_cfg=None)
    kwargs.pop('type')
    with torch.device('meta'):
        backbone = ESpikeFormerLarge(**kwargs)
    assert backbone.stage_channels == [96, 192, 384, 768, 768]


#: name -> (config, options, check); the options must appear verbatim in docs/differences.md
LARGE_OPTIONS = {
    'batch_drop_path': (MASK_83M, ['model.backbone.drop_path_mode=batch'], _batch_drop_path),
    'd8_weights': (MASK_83M, ['model.backbone.neuron_cfg.D=8'], _d8),
    'plain_bn': (MASK_83M, ['model.backbone.norm_cfg.type=BN'], _plain_bn),
    'no_checkpointing': (MASK_83M, ['model.backbone.with_cp=False'], _no_cp),
    'trunk_only': (MASK_83M, ['model.backbone.out_indices="(1,2,3)"'], _trunk_only),
    'drop_path_rate': (MASK_83M, ['model.backbone.drop_path_rate=0.1'], _rate_01),
    'token_scale_off': (MASK_83M, ['model.backbone.attn_token_scale=None'], _no_token_scale),
    'stem_192': (MASK_173M, [], _stem_192),
}


@pytest.mark.parametrize('name', list(LARGE_OPTIONS))
def test_large_option(name):
    path, options, check = LARGE_OPTIONS[name]
    for option in options:
        assert option in DOC, f'{name}: {option} is not in docs/differences.md'
    if name == 'stem_192':
        assert STEM_192_SNIPPET in DOC
    cfg = with_options(path, [o.replace('"', '') for o in options]) if options else read(path)
    check(cfg)
