"""Every "published behaviour back" option of docs/differences.md, and every "kept as published"
statement there: one parametrized test, one case each. A case loads a config, applies the option
exactly as documented (parsed like ``--cfg-options``), builds the module concerned and asserts the
published behaviour."""

from __future__ import annotations

import argparse
import copy
import functools
import math
from pathlib import Path
from typing import Callable, Dict, Sequence, Tuple

import mmcv.ops  # noqa: F401  (compiled ops: RoIAlign; a missing build fails, never skips)
import pytest
import torch
from mmdet.registry import MODELS as DET_MODELS
from mmengine.config import Config, DictAction
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS as SEG_MODELS
from torch import nn

import sdt_dense  # noqa: F401  (registers the models)
from sdt_dense.models import ESpikeFormer, SFANeuron, SpikingLayer
from sdt_testing import REPO

CONFIGS = REPO / 'configs'
ZOO = CONFIGS / 'e_spikeformer'
MASK_RCNN = CONFIGS / 'mask_rcnn_sdt.py'
MASK_RCNN_10M = ZOO / 'mask-rcnn_e-spikeformer-10m_spike-fpn_8xb4-1x_coco.py'
CASCADE = ZOO / 'cascade-mask-rcnn_e-spikeformer-19m_spike-fpn_8xb2-3x_coco.py'
SPIKING_PREDICTORS = ZOO / ('mask-rcnn_e-spikeformer-19m_spike-fpn_spiking-predictors_8xb4-1x_coco.py')
RETINA = ZOO / 'retinanet_e-spikeformer-10m_spike-fpn_8xb4-1x_coco.py'
TOY_DET = CONFIGS / 'toy' / 'mask-rcnn_e-spikeformer-t_spike-fpn_toy.py'
SEG_19M = ZOO / 'fpn_e-spikeformer-19m_8xb2-160k_ade20k-512x512.py'
SEG_10M = ZOO / 'fpn_e-spikeformer-10m_8xb2-160k_ade20k-512x512.py'
#: the configs that claim the published network and recipe
PUBLISHED_DET = (MASK_RCNN, MASK_RCNN_10M, CASCADE)
PUBLISHED_SEG = (SEG_19M, SEG_10M)
DOC = (REPO / 'docs' / 'differences.md').read_text()

#: the RetinaNet head's published initialisation, verbatim from docs/differences.md
RETINA_INIT_SNIPPET = (
    "model = dict(bbox_head=dict(init_cfg=dict(type='Normal', layer='Conv2d', "
    "std=0.01, override=dict(type='Normal', name='retina_cls', std=0.01, "
    'bias_prob=0.01))))'
)


@functools.lru_cache(maxsize=None)
def _read(path: Path) -> Config:
    return Config.fromfile(str(path))


def load(path: Path, options: Sequence[str] = ()) -> Config:
    """The config with ``--cfg-options *options`` applied as tools/train.py does."""
    cfg = copy.deepcopy(_read(path))
    if options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--cfg-options', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(['--cfg-options', *options]).cfg_options)
    return cfg


def build(cfg: Config, part: dict) -> nn.Module:
    registry = DET_MODELS if cfg.default_scope == 'mmdet' else SEG_MODELS
    torch.manual_seed(0)
    return registry.build(copy.deepcopy(part))


def tiny_backbone(cfg: Config) -> ESpikeFormer:
    """The config's backbone with the tiny width and no checkpoint (everything else kept)."""
    kwargs = dict(cfg.model.backbone, arch='t', init_cfg=None)
    kwargs.pop('type')
    torch.manual_seed(0)
    return ESpikeFormer(**kwargs)


def neuron_outputs(module: nn.Module, *args) -> list:
    outs = []
    handles = [
        m.register_forward_hook(lambda _m, _i, o: outs.append(o.detach()))
        for m in module.modules()
        if isinstance(m, SFANeuron)
    ]
    try:
        with torch.no_grad():
            module(*args)
    finally:
        for h in handles:
            h.remove()
    return outs


def neck_inputs(channels: Sequence[int], size: int = 16) -> list:
    g = torch.Generator().manual_seed(1)
    return [
        3 * torch.randn(1, c, size >> min(i, 2), size >> min(i, 2), generator=g)
        for i, c in enumerate(channels)
    ]


def weight_decays(cfg: Config) -> Dict[str, float]:
    """Weight decay per parameter name of a small conv-bias-BN model under ``cfg.optim_wrapper``."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=True), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1))
    wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    by_id = {id(p): g['weight_decay'] for g in wrapper.optimizer.param_groups for p in g['params']}
    return {n: by_id[id(p)] for n, p in model.named_parameters()}


# ---------------------------------------------------------------------------------------------
# The cases: name -> (config, options as after --cfg-options, check(cfg))

CASES: Dict[str, Tuple[Path, Tuple[str, ...], Callable[[Config], None]]] = {}
#: name -> options that move the config away from the published value first. For an option whose
#: value is already the config's default, the check could not fail on the config as it is (an
#: option that misspelled its key would pass): the case starts from a non-default model instead,
#: and that model alone must fail the check.
START: Dict[str, Tuple[str, ...]] = {}


def case(config: Path, *options: str, start: Tuple[str, ...] = ()):
    def register(check):
        CASES[check.__name__] = (config, options, check)
        if start:
            START[check.__name__] = start
        return check

    return register


@case(MASK_RCNN, 'model.neck.neuron_cfg.eval_ceiling=1')
def neck_binary_at_test_time(cfg):
    neck = build(cfg, cfg.model.neck)
    x = neck_inputs(cfg.model.neck.in_channels)
    assert any(s.max() > 1 for s in neuron_outputs(neck.train(), x))  # counts 0..4 in training
    spikes = neuron_outputs(neck.eval(), x)
    assert spikes and all(set(s.unique().tolist()) <= {0.0, 1.0} for s in spikes)  # binary


@case(
    MASK_RCNN,
    'model.rpn_head.anchor_generator.strides=[4,8,16,32,64]',
    'model.rpn_head.anchor_generator.base_sizes=None',
    'model.roi_head.bbox_roi_extractor.featmap_strides=[4,8,16,32]',
    'model.roi_head.mask_roi_extractor.featmap_strides=[4,8,16,32]',
)
def mask_rcnn_declared_strides(cfg):
    anchors = build(cfg, cfg.model.rpn_head).prior_generator
    assert [s[0] for s in anchors.strides] == [4, 8, 16, 32, 64]
    widths = [float((a[:, 2] - a[:, 0]).max()) for a in anchors.base_anchors]
    assert widths == pytest.approx([45.25 * 2**i for i in range(5)], rel=1e-3)  # 32..512 at 1:2
    for name in ('bbox_roi_extractor', 'mask_roi_extractor'):
        extractor = build(cfg, cfg.model.roi_head[name])
        assert [layer.spatial_scale for layer in extractor.roi_layers] == [1 / 4, 1 / 8, 1 / 16, 1 / 32]


@case(
    RETINA,
    'model.bbox_head.anchor_generator.strides=[8,16,32,64,128]',
    'model.bbox_head.anchor_generator.base_sizes=None',
)
def retinanet_declared_strides(cfg):
    published = build(cfg, cfg.model.bbox_head).prior_generator
    ours = build(cfg, _read(RETINA).model.bbox_head).prior_generator
    assert [s[0] for s in published.strides] == [8, 16, 32, 64, 128]
    assert [s[0] for s in ours.strides] == [8, 16, 16, 32, 64]
    for a, b in zip(published.base_anchors, ours.base_anchors):  # same anchor sizes
        torch.testing.assert_close(a, b)


@case(
    MASK_RCNN,
    'model.rpn_head.init_cfg.type=Normal',
    'model.rpn_head.init_cfg.layer=Conv2d',
    'model.rpn_head.init_cfg.std=0.01',
)
def rpn_head_normal_init(cfg):
    head = build(cfg, cfg.model.rpn_head)
    head.init_weights()
    for conv in (head.rpn_conv.layer, head.rpn_cls.layer, head.rpn_reg.layer):
        assert conv.weight.std().item() == pytest.approx(0.01, rel=0.2)
        assert torch.count_nonzero(conv.bias) == 0


@case(RETINA)
def retinanet_head_normal_init(cfg):
    assert RETINA_INIT_SNIPPET in DOC
    ns = {}
    exec(RETINA_INIT_SNIPPET, ns)  # the documented config lines, merged like a child config
    cfg.merge_from_dict({'model': ns['model']})
    head = build(cfg, cfg.model.bbox_head)
    head.init_weights()
    convs = [m.layer.conv for m in (*head.cls_convs, *head.reg_convs)]
    for conv in convs + [head.retina_reg.layer]:
        assert conv.weight.std().item() == pytest.approx(0.01, rel=0.2)
    bias = head.retina_cls.layer.bias
    assert torch.allclose(bias, torch.full_like(bias, -math.log((1 - 0.01) / 0.01)))


@case(MASK_RCNN, 'model.backbone.last_stride=1', start=('model.backbone.last_stride=2',))
def stage4_at_stride_16(cfg):
    for path in PUBLISHED_DET + PUBLISHED_SEG:
        assert _read(path).model.backbone.get('last_stride', 1) == 1, path.name
    assert tiny_backbone(cfg).out_strides == [4, 8, 16, 16]


@case(MASK_RCNN)
def box_predictors_read_real_values(cfg):
    """The published head: no neuron in front of fc_cls / fc_reg, in every published-recipe
    detection config (and the toy); the variant config puts one there."""
    for path in PUBLISHED_DET + (TOY_DET,):
        heads = _read(path).model.roi_head.bbox_head
        for head_cfg in heads if isinstance(heads, list) else [heads]:
            head = build(cfg, head_cfg)
            assert not head.spiking_predictors
            assert type(head.fc_cls) is nn.Linear and type(head.fc_reg) is nn.Linear, path.name
    head = build(cfg, _read(MASK_RCNN).model.roi_head.bbox_head)
    seen = {}
    head.fc_cls.register_forward_pre_hook(lambda m, a: seen.__setitem__('cls', a[0]))
    head.shared_fcs[-1].register_forward_hook(lambda m, a, o: seen.__setitem__('fc', o))
    torch.manual_seed(0)
    with torch.no_grad():
        head(3 * torch.randn(6, 256, 7, 7))
    assert seen['cls'] is seen['fc'] and seen['cls'].min() < 0  # the raw fc output, real-valued
    variant = _read(SPIKING_PREDICTORS).model.roi_head.bbox_head
    head = build(cfg, variant)
    assert isinstance(head.fc_cls, SpikingLayer) and isinstance(head.fc_reg, SpikingLayer)


@case(
    MASK_RCNN,
    'optim_wrapper.paramwise_cfg.norm_decay_mult=1',
    'optim_wrapper.paramwise_cfg.bias_decay_mult=1',
)
def detection_weight_decay_on_every_parameter(cfg):
    assert set(weight_decays(cfg).values()) == {0.05}
    ours = weight_decays(load(MASK_RCNN))
    assert ours['0.weight'] == 0.05 and ours['0.bias'] == ours['1.weight'] == ours['1.bias'] == 0


@case(MASK_RCNN, 'model.backbone.drop_path_rate=0', start=('model.backbone.drop_path_rate=0.2',))
def no_stochastic_depth(cfg):
    for path in PUBLISHED_DET + PUBLISHED_SEG:
        assert _read(path).model.backbone.get('drop_path_rate', 0) == 0, path.name
    backbone = tiny_backbone(cfg).train()
    assert not any(type(m).__name__ == 'DropPath' for m in backbone.modules())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(backbone(x), backbone(x)):  # training mode, yet deterministic
            assert torch.equal(a, b)


@case(SEG_19M, 'model.backbone.layer_scale_init_value=1e-6')
def segmentation_layer_scale(cfg):
    gammas = [p for n, p in tiny_backbone(cfg).named_parameters() if n.endswith('.gamma')]
    assert len(gammas) == 3 * 8  # three branches of each of the 6 + 2 transformer blocks
    assert all(torch.all(g == 1e-6) for g in gammas)


@case(
    SEG_19M,
    'model.backbone.norm_cfg.type=BN',
    'model.neck.norm_cfg.type=BN',
    'model.decode_head.norm_cfg.type=BN',
)
def segmentation_plain_bn(cfg):
    parts = [tiny_backbone(cfg), build(cfg, cfg.model.neck), build(cfg, cfg.model.decode_head)]
    for part in parts:
        norms = [m for m in part.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        assert norms and all(type(m) in (nn.BatchNorm1d, nn.BatchNorm2d) for m in norms)
    sync = build(cfg, _read(SEG_19M).model.neck)  # ours: SyncBN
    assert any(isinstance(m, nn.SyncBatchNorm) for m in sync.modules())


@case(SEG_19M, 'model.decode_head.dropout_ratio=0')
def segmentation_no_dropout(cfg):
    assert build(cfg, cfg.model.decode_head).dropout is None
    assert isinstance(build(cfg, _read(SEG_19M).model.decode_head).dropout, nn.Dropout2d)


# "Kept as published": the configs as they are.


@case(MASK_RCNN)
def detection_neurons_raw_counts(cfg):
    for path in PUBLISHED_DET:
        model = _read(path).model
        for part in (model.neck, model.rpn_head):
            neurons = [m for m in build(cfg, part).modules() if isinstance(m, SFANeuron)]
            assert neurons and all((n.D, n.norm, n.eval_ceiling) == (4, 1, None) for n in neurons), path.name
    neck = build(cfg, cfg.model.neck).eval()
    spikes = neuron_outputs(neck, neck_inputs(cfg.model.neck.in_channels))
    assert all(torch.equal(s, s.round()) and 0 <= s.min() and s.max() <= 4 for s in spikes)
    assert max(float(s.max()) for s in spikes) == 4  # unnormalised counts, up to D


@case(SEG_19M)
def segmentation_neurons_normalised_by_d(cfg):
    for part in (cfg.model.neck, cfg.model.decode_head):
        neurons = [m for m in build(cfg, part).modules() if isinstance(m, SFANeuron)]
        assert neurons and all((n.D, n.norm) == (4, 4) for n in neurons)


@case(MASK_RCNN)
def backbone_default_init_without_checkpoint(cfg):
    backbone = tiny_backbone(cfg)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    backbone.init_weights()
    for k, v in backbone.state_dict().items():
        assert torch.equal(v, before[k]), k


@case(
    MASK_RCNN_10M,
    'model.backbone.save_counts=False',
    'model.neck.save_counts=False',
    'model.rpn_head.save_counts=False',
    'model.roi_head.bbox_head.save_counts=False',
    'model.roi_head.mask_head.save_counts=False',
)
def float_saved_activations(cfg):
    from mmdet.testing import demo_mm_inputs

    from sdt_dense.models.neurons.saved_counts import observe_saved

    detector = DET_MODELS.build(cfg.model)
    detector.train()
    batch = detector.data_preprocessor(demo_mm_inputs(1, [(3, 64, 64)], num_classes=80, with_mask=True), True)
    kinds = set()
    with observe_saved(lambda obj: kinds.add(type(obj).__name__)):
        detector(**batch, mode='loss')
    assert kinds <= {'Tensor', 'Parameter'}  # float activations everywhere, as published
    # the default (recompute) saves codes, bits and recipes in the same places
    default = DET_MODELS.build(load(MASK_RCNN_10M).model).train()
    with observe_saved(lambda obj: kinds.add(type(obj).__name__)):
        default(**batch, mode='loss')
    assert {'CountsView', 'RecomputedView', 'PackedBits'} <= kinds


@case(SEG_10M)
def segmentation_recipe(cfg):
    assert cfg.train_cfg.val_interval == 2500 and _read(SEG_19M).train_cfg.val_interval == 8000
    for path in PUBLISHED_SEG:
        decays = weight_decays(_read(path))
        assert set(decays.values()) == {0.005}, path.name  # norms and biases decayed too


@pytest.mark.slow
@pytest.mark.parametrize('name', list(CASES))
def test_published_option(name):
    path, options, check = CASES[name]
    for option in options:  # documented verbatim
        assert option in DOC, f'{name}: {option} is not in docs/differences.md'
    start = START.get(name, ())
    cfg = load(path, start + options)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        check(cfg)
        if start:  # control: the non-default starting model fails the check (so it can fail)
            with pytest.raises(AssertionError):
                check(load(path, start))


def test_options_equal_to_the_default_start_from_another_value():
    """Every case whose option leaves the config unchanged starts from a non-default model."""
    for name, (path, options, _) in CASES.items():
        if options and load(path, options).to_dict() == _read(path).to_dict():
            assert name in START, f'{name}: its option equals the default; give it a start'
        if name in START:
            assert load(path, START[name]).to_dict() != _read(path).to_dict(), name
