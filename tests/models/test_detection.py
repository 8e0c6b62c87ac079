"""COCO detection / instance segmentation: SpikeFPN, spiking heads, configs, tools end to end."""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from pathlib import Path

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from torch import nn

import sdt_dense  # noqa: F401  (registers the models)
from sdt_dense.deploy import spike_driven
from sdt_dense.models import SFANeuron
from sdt_dense.toy_data import make_det_dataset

register_all_modules(init_default_scope=False)


@pytest.fixture(autouse=True)
def _mmdet_scope():
    """Every test here builds through mmdet's registries, whatever scope earlier tests left."""
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


from sdt_testing import REPO as ROOT  # noqa: E402
from sdt_testing import dense_head, roi_extractors, run_ok  # noqa: E402

MAIN_CONFIG = ROOT / 'configs' / 'mask_rcnn_sdt.py'
TOY_CONFIG = ROOT / 'configs' / 'toy' / 'mask-rcnn_e-spikeformer-t_spike-fpn_toy.py'
DET_CONFIGS = [
    MAIN_CONFIG,
    *sorted(
        p
        for pattern in ('mask-rcnn_*.py', 'cascade-mask-rcnn_*.py', 'retinanet_*.py')
        for p in (ROOT / 'configs' / 'e_spikeformer').glob(pattern)
    ),
    TOY_CONFIG,
]
MMDET_TRAIN = Path(sys.modules['mmdet'].__file__).parent / '.mim' / 'tools' / 'train.py'
SYNAPSES = (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)


def test_all_detection_configs_present():
    names = {p.name for p in DET_CONFIGS}
    for expected in (
        'mask_rcnn_sdt.py',
        'mask-rcnn_e-spikeformer-10m_spike-fpn_8xb4-1x_coco.py',
        'cascade-mask-rcnn_e-spikeformer-19m_spike-fpn_8xb2-3x_coco.py',
        'retinanet_e-spikeformer-10m_spike-fpn_8xb4-1x_coco.py',
        'mask-rcnn_e-spikeformer-19m_fpn_8xb4-1x_coco.py',
        'mask-rcnn_e-spikeformer-19m-s32_spike-fpn_8xb4-1x_coco.py',
        'mask-rcnn_e-spikeformer-19m_spike-fpn_spiking-predictors_8xb4-1x_coco.py',
        'mask-rcnn_e-spikeformer-t_spike-fpn_toy.py',
    ):
        assert expected in names


def small_cfg(path: Path) -> Config:
    """The config with no checkpoint and few proposals/RoIs (the model is unchanged)."""
    cfg = Config.fromfile(str(path))
    cfg.model.backbone.init_cfg = None
    train_cfg = cfg.model.train_cfg
    if 'rpn_proposal' in train_cfg:
        train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=50)
        rcnn = train_cfg.rcnn if isinstance(train_cfg.rcnn, list) else [train_cfg.rcnn]
        for stage in rcnn:
            stage.sampler.num = 32
        cfg.model.test_cfg.rpn.update(nms_pre=200, max_per_img=50)
    return cfg


@functools.lru_cache(maxsize=None)
def built(path: Path) -> nn.Module:
    torch.manual_seed(0)
    model = MODELS.build(small_cfg(path).model)
    model.init_weights()
    return revert_sync_batchnorm(model)  # as the Runner does without distributed training


@pytest.mark.slow
@pytest.mark.parametrize('path', DET_CONFIGS, ids=lambda p: p.stem)
def test_declared_strides_are_the_true_strides(path):
    model = built(path).eval()
    size = 64  # divisible by every stride (up to 64), so each level is exactly size / stride
    with torch.no_grad():
        feats = model.neck(model.backbone(torch.zeros(1, 3, size, size)))
    true_strides = [size // f.shape[-1] for f in feats]
    assert all(size % f.shape[-1] == 0 for f in feats)
    assert list(model.backbone.out_strides) == [
        size // x.shape[-1] for x in model.backbone(torch.zeros(1, 3, size, size))
    ]
    anchors = dense_head(model).prior_generator
    assert [s[0] for s in anchors.strides] == true_strides
    for ext in roi_extractors(model):
        assert list(ext.featmap_strides) == true_strides[: len(ext.featmap_strides)]
    # Anchor sizes are the published ones whatever the strides: 2x per level.
    widths = [float((a[:, 2] - a[:, 0]).max()) for a in anchors.base_anchors]
    assert widths == pytest.approx([widths[0] * 2**i for i in range(len(widths))], rel=0.01)


def real_input_predictors(model):
    """Box predictors that read the last fc's real output (``spiking_predictors=False``)."""
    if not hasattr(model, 'roi_head'):
        return []
    heads = model.roi_head.bbox_head
    heads = heads if isinstance(heads, nn.ModuleList) else [heads]
    return [fc for h in heads if not getattr(h, 'spiking_predictors', True) for fc in (h.fc_cls, h.fc_reg)]


def synapses_of(model):
    """Neck and head synaptic layers (conv / linear / deconv) fed by spikes, and SFA neurons."""
    parts = [m for m in (model.neck, dense_head(model), getattr(model, 'roi_head', None)) if m]
    neurons = [m for part in parts for m in part.modules() if isinstance(m, SFANeuron)]
    real = {id(m) for m in real_input_predictors(model)}
    synapses = [m for part in parts for m in part.modules() if isinstance(m, SYNAPSES) and id(m) not in real]
    return neurons, synapses


@pytest.mark.slow
@pytest.mark.parametrize('path', DET_CONFIGS, ids=lambda p: p.stem)
def test_config_builds_and_runs_loss_and_predict(path):
    """Loss and predict on a small image; for the spiking configs, every neck/head synapse is fed
    spike counts by a neuron of its own, and these fire at initialisation."""
    cfg = small_cfg(path)
    model = built(path)
    spiking = cfg.model.neck.type == 'SpikeFPN'
    neurons, synapses = synapses_of(model)
    if spiking:
        # Each neuron object belongs to exactly one synaptic layer.
        assert len({id(n) for n in neurons}) == len(neurons) == len(synapses)
        assert all(n.norm == 1 and n.D == 4 and n.eval_ceiling is None for n in neurons)
    else:
        assert not neurons
    inputs = {}

    def record(module, args):
        inputs.setdefault(module, []).append(args[0].detach())

    handles = [s.register_forward_pre_hook(record) for s in synapses] if spiking else []
    with_mask = hasattr(model, 'roi_head') and model.roi_head.with_mask
    num_classes = (
        dense_head(model).num_classes
        if not hasattr(model, 'roi_head')
        else cfg.model.roi_head.mask_head.num_classes
    )
    packed = demo_mm_inputs(1, [(3, 64, 96)], num_items=[2], num_classes=num_classes, with_mask=with_mask)
    try:
        model.train()
        model.zero_grad()
        losses = model(**model.data_preprocessor(packed, True), mode='loss')
        expected = (
            {'loss_cls', 'loss_bbox'} if not hasattr(model, 'roi_head') else {'loss_rpn_cls', 'loss_rpn_bbox'}
        )
        assert expected <= set(losses)
        if with_mask:
            assert any(k.endswith('loss_mask') for k in losses)
        total, _ = model.parse_losses(losses)
        assert torch.isfinite(total)
        total.backward()
        # Gradients reach the stem, through every neuron of the backbone and the neck.
        assert model.backbone.downsamples[0].conv.weight.grad.abs().sum() > 0
        if spiking:
            assert len(inputs) == len(synapses)
            for x in (x for xs in inputs.values() for x in xs):
                assert torch.equal(x, x.round()) and x.min() >= 0 and x.max() <= 4
            # No layer starts dead: each gets spikes at initialisation.
            assert all(sum(float(x.mean()) for x in xs) > 0 for xs in inputs.values())
        inputs.clear()

        model.eval()
        with torch.no_grad():
            (pred,) = model(**model.data_preprocessor(packed, False), mode='predict')
        if spiking:  # (the mask head does not run when no box survives)
            assert inputs and all(torch.equal(x, x.round()) for xs in inputs.values() for x in xs)
    finally:
        for h in handles:
            h.remove()
    inst = pred.pred_instances
    assert inst.bboxes.shape[1] == 4 and len(inst.scores) == len(inst.labels) == len(inst.bboxes)
    if with_mask:
        assert inst.masks.shape[1:] == (64, 96)


def test_spike_driven_inference_equals_integer_mode():
    model = built(TOY_CONFIG).eval()
    torch.manual_seed(3)
    x = torch.randn(1, 3, 64, 96)
    rois = torch.tensor([[0, 4.0, 4.0, 40.0, 30.0], [0, 10.0, 20.0, 90.0, 60.0], [0, 0.0, 0.0, 64.0, 64.0]])

    def run():
        feats = model.neck(model.backbone(x))
        rpn = model.rpn_head(feats)
        bbox = model.roi_head._bbox_forward(feats, rois)
        mask = model.roi_head._mask_forward(feats, rois)
        return [*feats, *rpn[0], *rpn[1], bbox['cls_score'], bbox['bbox_pred'], mask['mask_preds']]

    with torch.no_grad():
        ref = run()
        with spike_driven(model):
            out = run()
    for a, b in zip(ref, out):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_head_initialisation_is_kept():
    model = built(TOY_CONFIG)
    mask_head = model.roi_head.mask_head
    for layer in (mask_head.upsample, mask_head.conv_logits):  # Kaiming (fan_out), zero bias
        fan_out = layer.weight.shape[0 if isinstance(layer, nn.Conv2d) else 1] * math.prod(
            layer.weight.shape[2:]
        )
        assert torch.count_nonzero(layer.bias) == 0
        assert layer.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.25)
    fc_cls = model.roi_head.bbox_head.fc_cls  # a plain Linear (published predictors)
    assert fc_cls.weight.std().item() == pytest.approx(0.01, rel=0.2)
    retina = built(DET_CONFIGS[[p.name.startswith('retinanet') for p in DET_CONFIGS].index(True)])
    bias = retina.bbox_head.retina_cls.layer.bias
    assert torch.allclose(bias, torch.full_like(bias, -math.log((1 - 0.01) / 0.01)))
    assert retina.bbox_head.retina_reg.layer.weight.std().item() == pytest.approx(0.01, rel=0.2)
    # Hidden convs that feed neurons are Kaiming-initialised (fan_out, ReLU gain), not N(0, 0.01).
    for conv in (retina.bbox_head.cls_convs[0].layer.conv, model.rpn_head.rpn_conv.layer):
        fan_out = conv.weight.shape[0] * math.prod(conv.weight.shape[2:])
        assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.1)
    assert model.rpn_head.rpn_cls.layer.weight.std().item() == pytest.approx(0.01, rel=0.2)


@pytest.mark.slow
def test_missing_pretrained_checkpoint_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the config's relative checkpoints/ path does not exist here
    cfg = Config.fromfile(str(MAIN_CONFIG))
    assert cfg.model.backbone.init_cfg.checkpoint == 'checkpoints/e-spikeformer-19m_in1k.pth'
    model = MODELS.build(cfg.model)
    with pytest.raises(FileNotFoundError, match=r'checkpoints/e-spikeformer-19m_in1k\.pth'):
        model.init_weights()


@pytest.mark.slow
def test_published_recipe():
    cfg = Config.fromfile(str(MAIN_CONFIG))
    assert cfg.custom_imports.imports == ['sdt_dense']
    assert cfg.data_root == 'data/coco/' and cfg.default_scope == 'mmdet'
    assert cfg.model.backbone.arch == '19M' and cfg.model.backbone.type == 'ESpikeFormer'
    assert cfg.train_dataloader.batch_size * 8 == cfg.auto_scale_lr.base_batch_size == 32
    assert cfg.val_dataloader.batch_size == 1
    assert [t['type'] for t in cfg.train_pipeline][3] == 'RandomChoice'
    resize = cfg.test_pipeline[1]
    assert (resize.type, resize.scale, resize.keep_ratio) == ('Resize', (1333, 800), True)
    assert cfg.train_cfg.max_epochs == 12

    # No weight decay on norm layers and biases (the release's 'norm' key matched nothing).
    model = built(MAIN_CONFIG)
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    assert isinstance(optim.optimizer, torch.optim.AdamW)
    decay = {id(p): g['weight_decay'] for g in optim.optimizer.param_groups for p in g['params']}
    lr = {g['lr'] for g in optim.optimizer.param_groups}
    assert lr == {2e-4}
    bn = model.backbone.downsamples[1].bn
    conv = model.backbone.downsamples[1].conv
    assert decay[id(bn.weight)] == decay[id(bn.bias)] == decay[id(conv.bias)] == 0
    assert decay[id(conv.weight)] == 0.05
    assert decay[id(model.roi_head.bbox_head.shared_fcs[0].layer.weight)] == 0.05

    # Warmup over 1000 iterations, then x0.1 after epochs 8 and 11 (here 200 iterations each).
    from mmengine.registry import PARAM_SCHEDULERS

    epoch = 200
    schedulers = []
    for s in cfg.param_scheduler:
        s = dict(s, optimizer=optim)
        if s.pop('by_epoch'):
            s.update(
                begin=s['begin'] * epoch,
                end=s['end'] * epoch,
                milestones=[m * epoch for m in s['milestones']],
            )
        schedulers.append(PARAM_SCHEDULERS.build(dict(s, by_epoch=False)))
    lrs = []
    for _ in range(12 * epoch):
        lrs.append(optim.optimizer.param_groups[0]['lr'])
        for s in schedulers:
            s.step()
    assert lrs[0] == pytest.approx(2e-7)
    # mmengine's LinearLR reaches the full lr at iteration end - 1 = 999
    assert lrs[500] == pytest.approx(2e-4 * (0.001 + 0.999 * 500 / 999))
    assert lrs[1000] == lrs[8 * epoch - 1] == pytest.approx(2e-4)
    assert lrs[8 * epoch] == lrs[11 * epoch - 1] == pytest.approx(2e-5)
    assert lrs[11 * epoch] == lrs[-1] == pytest.approx(2e-6)


@pytest.mark.slow
def test_published_stride_option_on_the_command_line():
    cfg = Config.fromfile(str(MAIN_CONFIG))
    cfg.merge_from_dict({'model.neck.neuron_cfg.eval_ceiling': 1})
    neck = MODELS.build(cfg.model.neck)
    assert all(n.eval_ceiling == 1 and n.norm == 1 for n in neck.modules() if isinstance(n, SFANeuron))


# ---------------------------------------------------------------------------------------------
# Tools end to end on tiny toy data


@pytest.fixture(scope='module')
def toy_coco(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy_coco')
    make_det_dataset(root, num_train=8, num_val=4, image_size=96, seed=0)
    return root


def tiny_toy_config(tmp_path: Path, data_root: Path) -> Path:
    path = tmp_path / 'toy_tiny.py'
    path.write_text(f"""
_base_ = [{str(TOY_CONFIG)!r}]
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


@pytest.mark.slow
def test_toy_config_matches_toy_data():
    cfg = Config.fromfile(str(TOY_CONFIG))
    assert cfg.data_root == 'data/toy_coco/'
    assert list(cfg.classes) == ['circle', 'square', 'triangle']
    assert cfg.model.roi_head.bbox_head.num_classes == 3 == cfg.model.roi_head.mask_head.num_classes


@pytest.mark.slow
def test_toy_train_then_test_reports_coco_metrics(toy_coco, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    config = tiny_toy_config(tmp_path, toy_coco)
    work = tmp_path / 'work'
    log = run_ok([sys.executable, ROOT / 'tools' / 'train.py', config, '--work-dir', work], cwd=tmp_path)
    assert 'coco/bbox_mAP' in log  # validation after the epoch
    ckpt = work / 'epoch_1.pth'
    assert ckpt.exists()

    prefix = tmp_path / 'results'
    log = run_ok(
        [
            sys.executable,
            ROOT / 'tools' / 'test.py',
            config,
            ckpt,
            '--work-dir',
            tmp_path / 'test',
            '--cfg-options',
            f'test_evaluator.outfile_prefix={prefix}',
        ],
        cwd=tmp_path,
    )
    assert 'bbox_mAP' in log and 'segm_mAP' in log
    metrics = json.loads((tmp_path / 'test' / 'metrics.json').read_text())
    # CocoMetric's numbers equal pycocotools' COCOeval on the dumped results.
    gt = COCO(str(toy_coco / 'annotations' / 'instances_val2017.json'))
    for iou_type in ('bbox', 'segm'):
        results = json.loads(Path(f'{prefix}.{iou_type}.json').read_text())
        assert results, 'the model made no prediction'
        ev = COCOeval(gt, gt.loadRes(results), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        for i, name in enumerate(('mAP', 'mAP_50', 'mAP_75')):
            expected = max(float(ev.stats[i]), 0.0)  # COCOeval reports -1 when undefined
            assert metrics[f'coco/{iou_type}_{name}'] == pytest.approx(expected, abs=1e-3)


@pytest.mark.slow
def test_stock_mmdet_train_script_runs_the_config(toy_coco, tmp_path):
    assert MMDET_TRAIN.is_file(), f'the installed mmdet ships no {MMDET_TRAIN} (its .mim tools)'
    config = tiny_toy_config(tmp_path, toy_coco)
    work = tmp_path / 'work'
    run_ok(
        [
            sys.executable,
            MMDET_TRAIN,
            config,
            '--work-dir',
            work,
            '--cfg-options',
            'train_cfg.val_interval=100',
        ],
        cwd=tmp_path,
    )
    state = torch.load(work / 'epoch_1.pth', weights_only=True, map_location='cpu')['state_dict']
    assert any(k.startswith('neck.lateral_convs.0.layer.conv.') for k in state)
    assert any(k.startswith('roi_head.mask_head.conv_logits.') for k in state)


@pytest.mark.slow
def test_dist_train_two_cpu_processes(toy_coco, tmp_path):
    config = tiny_toy_config(tmp_path, toy_coco)
    work = tmp_path / 'work'
    log = run_ok(
        [
            'bash',
            ROOT / 'tools' / 'dist_train.sh',
            config,
            2,
            '--work-dir',
            work,
            '--cfg-options',
            'train_cfg.val_interval=100',
        ],
        cwd=tmp_path,
        PORT=str(29500 + os.getpid() % 1000),
    )
    assert 'World size: 2' in log or 'world_size: 2' in log.lower()
    assert (work / 'epoch_1.pth').exists()
