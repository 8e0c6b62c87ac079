"""Event-camera detection models: the multi-timestep E-SpikeFormer (T real timesteps x D virtual
ones), the event data preprocessor, the RetinaNet / Faster R-CNN event configs (true strides),
spike-driven inference and energy accounting over T."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import pytest
import torch
from mmdet.registry import MODELS  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmdet.structures.bbox import HorizontalBoxes  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

import sdt_dense  # noqa: E402,F401  (registers the models)
from sdt_dense.analysis.ops import count_synaptic_ops  # noqa: E402
from sdt_dense.datasets.events.representations import representation_shape  # noqa: E402
from sdt_dense.deploy import spike_driven  # noqa: E402
from sdt_dense.models import ESpikeFormer, MultiStepESpikeFormer  # noqa: E402
from sdt_dense.models.data_preprocessors import EventDetDataPreprocessor  # noqa: E402
from sdt_testing import REPO, assert_outputs_equal, randomise_bn  # noqa: E402

register_all_modules(init_default_scope=True)

TOY = REPO / 'configs' / 'toy' / 'retinanet_e-spikeformer-t_spike-fpn_events_toy.py'
EVENT_CONFIGS = (
    sorted((REPO / 'configs' / 'events').glob('*.py'))
    + [TOY]
    + sorted((REPO / 'configs' / 'toy').glob('*_rvt-*_toy.py'))
)
REPRESENTATIONS = {
    'EventHistogram': 'histogram',
    'EventLastPolarity': 'last_polarity',
    'EventStackedHistogram': 'stacked',
}


def event_input(batch=2, steps=3, channels=2, height=64, width=80, seed=0, identical=False):
    """Event-count-like input (B, T, C, H, W): small non-negative integers."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 4, (batch, 1 if identical else steps, channels, height, width), generator=g).float()
    return x.expand(-1, steps, -1, -1, -1).contiguous() if identical else x


def _pair(out_indices=(1, 2, 3, 4), **kwargs):
    torch.manual_seed(0)
    ms = randomise_bn(
        MultiStepESpikeFormer(arch='t', in_channels=2, out_indices=out_indices, **kwargs)
    ).eval()
    single = ESpikeFormer(arch='t', in_channels=2, out_indices=out_indices).eval()
    single.load_state_dict({k: v for k, v in ms.state_dict().items() if k != 'fusion_logits'})
    return ms, single


def test_t1_equals_single_frame():
    ms, single = _pair()
    x = event_input(steps=1)
    with torch.no_grad():
        for a, b in zip(ms(x), single(x[:, 0])):
            assert torch.equal(a, b)
    # training mode too (BN on batch statistics sees the same batch)
    ms.train(), single.train()
    for a, b in zip(ms(x), single(x[:, 0])):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_fusion_over_independent_timesteps():
    ms, single = _pair()
    x = event_input(steps=3)
    with torch.no_grad():
        per_step = [single(x[:, t]) for t in range(3)]
        # memoryless neurons: each timestep is processed on its own, 'mean' averages them
        for level, out in enumerate(ms(x)):
            ref = torch.stack([p[level] for p in per_step]).mean(0)
            torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
        ms.fusion = 'last'
        for out, ref in zip(ms(x), per_step[-1]):
            torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
        # identical timesteps: T x the same frame fuses to the single-frame output
        ms.fusion = 'mean'
        same = event_input(steps=3, identical=True)
        for out, ref in zip(ms(same), single(same[:, 0])):
            torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    learned, _ = _pair(fusion='learned', T=3)
    learned.load_state_dict(ms.state_dict(), strict=False)
    with torch.no_grad():  # uniform softmax at initialisation = 'mean'
        for a, b in zip(learned(x), ms(x)):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-6)
    learned.train()
    sum(o.sum() for o in learned(x)).backward()
    assert learned.fusion_logits.grad is not None and learned.fusion_logits.grad.abs().sum() > 0
    torch.testing.assert_close(learned.fusion_weights().sum(-1), torch.ones(4))


def test_tbchw_layout_and_input_checks():
    ms, _ = _pair()
    x = event_input(steps=2)
    tb = MultiStepESpikeFormer(arch='t', in_channels=2, input_layout='TBCHW').eval()
    tb.load_state_dict(ms.state_dict())
    with torch.no_grad():
        for a, b in zip(ms(x), tb(x.transpose(0, 1))):
            assert torch.equal(a, b)
    with pytest.raises(ValueError, match='T=2 timesteps'):
        MultiStepESpikeFormer(arch='t', in_channels=2, T=3)(x)
    with pytest.raises(ValueError, match='C=2 channels'):
        MultiStepESpikeFormer(arch='t', in_channels=1)(x)
    with pytest.raises(ValueError, match='needs T'):
        MultiStepESpikeFormer(arch='t', fusion='learned')
    with pytest.raises(ValueError, match='single-step'):
        MultiStepESpikeFormer(arch='t', neuron_cfg=dict(type='LIF', T=2))
    assert ms.out_strides == [4, 8, 16, 16] and ms.out_channels == [24, 48, 96, 128]


def test_preprocessor_stacks_pads_and_sets_metainfo():
    pre = EventDetDataPreprocessor(pad_size_divisor=32)
    a, b = torch.rand(2, 2, 60, 76), torch.rand(2, 2, 40, 100)
    samples = [
        DetDataSample(metainfo=dict(img_shape=(60, 76))),
        DetDataSample(metainfo=dict(img_shape=(40, 100))),
    ]
    out = pre(dict(inputs=[a, b], data_samples=samples))
    x = out['inputs']
    assert x.shape == (2, 2, 2, 64, 128)  # (B, T, C, H, W); H, W the batch max rounded to 32
    assert torch.equal(x[0, :, :, :60, :76], a) and not x[0, :, :, 60:].any()
    assert not x[0, ..., 76:].any() and torch.equal(x[1, :, :, :40, :100], b)
    assert [s.batch_input_shape for s in out['data_samples']] == [(64, 128)] * 2
    assert [s.pad_shape for s in out['data_samples']] == [(64, 96), (64, 128)]
    norm = EventDetDataPreprocessor(mean=[1.0, 2.0], std=[2.0, 4.0])
    y = norm(dict(inputs=[a]))['inputs'][0]
    torch.testing.assert_close(y[:, 1], (a[:, 1] - 2) / 4)
    with pytest.raises(ValueError, match='representation differs'):
        pre(dict(inputs=[a, torch.rand(3, 2, 60, 76)]))


@functools.lru_cache(maxsize=None)
def _cfg(path: Path) -> Config:
    return Config.fromfile(str(path))


def _representation(cfg: Config):
    dataset = cfg.test_dataloader.dataset
    if any(s['type'] == 'LoadRVTHistogram' for s in dataset.pipeline):
        return dataset.get('num_steps', 1), 20  # RVT: k histograms of 10 bins x 2 polarities
    step = next(s for s in cfg.test_dataloader.dataset.pipeline if s['type'] in REPRESENTATIONS)
    return representation_shape(REPRESENTATIONS[step['type']], step['num_bins'], step.get('num_steps', 1))


@pytest.mark.slow
@pytest.mark.parametrize('path', EVENT_CONFIGS, ids=lambda p: p.name)
def test_event_config_true_strides_and_shapes(path):
    cfg = _cfg(path)
    backbone = MODELS.build(copy.deepcopy(cfg.model.backbone))
    strides = backbone.out_strides
    model = cfg.model
    assert model.neck.in_channels == backbone.out_channels
    steps, channels = _representation(cfg)
    assert backbone.in_channels == channels and backbone.T in (None, steps)
    classes = _dataset_classes(cfg)
    if model.type == 'RetinaNet':
        extra = model.neck.num_outs - len(strides)  # stride-2 extra convs
        expected = strides + [strides[-1] * 2 ** (i + 1) for i in range(extra)]
        assert model.bbox_head.anchor_generator.strides == expected
        assert model.bbox_head.num_classes == len(classes)
    else:
        assert model.roi_head.bbox_roi_extractor.featmap_strides == strides
        assert model.rpn_head.anchor_generator.strides == strides + [strides[-1] * 2]  # max-pool
        assert model.roi_head.bbox_head.num_classes == len(classes)
    assert cfg.model.data_preprocessor.type == 'EventDetDataPreprocessor'
    assert cfg.test_evaluator.type == 'PropheseeDetMetric'


def _dataset_classes(cfg):
    from mmdet.registry import DATASETS

    meta = cfg.test_dataloader.dataset.get('metainfo')
    return (meta or DATASETS.get(cfg.test_dataloader.dataset.type).METAINFO)['classes']


@functools.lru_cache(maxsize=None)
def toy_detector() -> torch.nn.Module:
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(_cfg(TOY).model))
    model.init_weights()
    return randomise_bn(model)


def _batch(model, sizes=((60, 76), (56, 70)), steps=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for h, w in sizes:
        inputs.append(torch.randint(0, 4, (steps, 2, h, w), generator=g).float())
        s = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(2 * h, 2 * w), scale_factor=(0.5, 0.5)))
        s.gt_instances = InstanceData(
            bboxes=HorizontalBoxes(torch.tensor([[5.0, 6.0, 40.0, 30.0], [30.0, 20.0, 40.0, 50.0]])),
            labels=torch.tensor([0, 1]),
        )
        samples.append(s)
    return model.data_preprocessor(dict(inputs=inputs, data_samples=samples), training=True)


def test_toy_detector_loss_and_predict():
    model = toy_detector().train()
    data = _batch(model)
    assert data['inputs'].shape == (2, 2, 2, 64, 80)  # 60 x 76 and 56 x 70, padded to 16
    total, log_vars = model.parse_losses(model(**data, mode='loss'))
    assert torch.isfinite(total) and {'loss_cls', 'loss_bbox'} <= set(log_vars)
    total.backward()
    assert model.backbone.downsamples[0].conv.weight.grad.abs().sum() > 0
    model.eval()
    model.bbox_head.test_cfg.score_thr = 0.0  # untrained: every score is near the prior 0.01
    with torch.no_grad():
        preds = model(**_batch(model), mode='predict')
    model.bbox_head.test_cfg.score_thr = 0.05
    boxes = preds[0].pred_instances.bboxes
    assert len(boxes) and boxes[:, 2].max() <= 2 * 76 + 1e-3  # rescaled to sensor pixels


@pytest.mark.slow
def test_spike_driven_equals_integer_mode_event_detector():
    """float64: the two modes sum the same products in different orders (see
    tests/deploy/test_spike_driven.py)."""
    model = copy.deepcopy(toy_detector()).double().eval()
    data = _batch(model, seed=1)
    x = data['inputs'].double()
    with torch.no_grad():
        ref = model(x, data['data_samples'], mode='tensor')
        with spike_driven(model):
            out = model(x, data['data_samples'], mode='tensor')
    assert_outputs_equal(ref, out, atol=1e-9)


@pytest.mark.slow
def test_energy_charges_every_real_timestep():
    """T different real timesteps are T computations (no 'repeated' discount): with T copies of a
    frame every layer's operation counts are exactly T times those of the frame alone; the stem
    is charged as dense MACs (real-valued event frames), once per timestep."""
    ms, single = _pair(out_indices=(2, 3, 4))
    one = {r.name: r for r in count_synaptic_ops(ms, event_input(batch=1, steps=1))}
    three = {r.name: r for r in count_synaptic_ops(ms, event_input(batch=1, steps=3, identical=True))}
    assert one.keys() == three.keys()
    stem = one['downsamples.0.conv']
    assert stem.input_kind == 'real' and stem.mac_ops == stem.dense_macs > 0
    for name, r in one.items():
        t = three[name]
        assert t.input_kind == r.input_kind, name
        assert (t.dense_macs, t.mac_ops, t.input_numel) == (
            3 * r.dense_macs,
            3 * r.mac_ops,
            3 * r.input_numel,
        ), name
        assert (t.input_count_sum, t.exact_acs) == (3 * r.input_count_sum, 3 * r.exact_acs), name
    # the single-frame ESpikeFormer on the same frame: the T = 1 counts
    ref = {r.name: r for r in count_synaptic_ops(single, event_input(batch=1, steps=1)[:, 0])}
    assert ref['downsamples.0.conv'].mac_ops == stem.mac_ops
