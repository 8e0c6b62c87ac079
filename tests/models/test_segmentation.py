"""ADE20K semantic segmentation: spiking Semantic-FPN neck and head, configs, tools end to end."""

import copy
import functools
import json
import sys
from pathlib import Path

import mmseg.models  # noqa: E402,F401  (the OpenMMLab stack is required)
import numpy as np
import pytest
import torch
from mmengine.config import Config  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402
from mmengine.structures import PixelData  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402
from mmseg.structures import SegDataSample  # noqa: E402
from PIL import Image  # noqa: E402
from torch import nn

import sdt_dense  # noqa: E402,F401  (registers the models)
from sdt_dense.checkpoint import safe_load  # noqa: E402
from sdt_dense.models import ESpikeFormer, SFANeuron  # noqa: E402
from sdt_testing import PYTHON, run_ok  # noqa: E402
from sdt_testing import REPO as ROOT
from sdt_testing.pyramids import make_head, make_neck  # noqa: E402

ADE_CONFIGS = sorted((ROOT / 'configs' / 'e_spikeformer').glob('fpn_*ade20k*.py'))
CFG_10M = ROOT / 'configs' / 'e_spikeformer' / 'fpn_e-spikeformer-10m_8xb2-160k_ade20k-512x512.py'
TOY_CONFIG = ROOT / 'configs' / 'toy' / 'fpn_e-spikeformer-t_toy.py'
REF_CKPT = ROOT / 'tests' / 'data' / 'base' / 'e_spikeformer_t_official_format.pth'
MMSEG_TRAIN = Path(sys.modules['mmseg'].__file__).parent / '.mim' / 'tools' / 'train.py'


@pytest.fixture(scope='module', autouse=True)
def mmseg_scope_single_thread():
    """mmseg as the default registry scope, and one intra-op thread: on a shared, oversubscribed
    CPU, OpenMP teams of 2+ threads run these small convolutions many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield
    torch.set_num_threads(threads)


def fake_batch(model, n: int = 2, size: int = 64, num_classes: int = 150, training: bool = True):
    """A preprocessed batch of random images with random labels (255 = ignore on a border)."""
    g = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(n):
        inputs.append(torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8))
        label = torch.randint(0, num_classes, (1, size, size), generator=g)
        label[:, :4] = 255
        sample = SegDataSample(gt_sem_seg=PixelData(data=label))
        sample.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size)))
        samples.append(sample)
    return model.data_preprocessor(dict(inputs=inputs, data_samples=samples), training)


@functools.lru_cache(maxsize=None)
def _read_config(path: str) -> Config:
    return Config.fromfile(path)


def load_config(path) -> Config:
    """``Config.fromfile`` (slow: it resolves ``mmseg::`` bases), cached; returns a private copy."""
    return copy.deepcopy(_read_config(str(path)))


def build_from_config(path, size: int = 64, **backbone_overrides):
    cfg = load_config(path)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None  # no checkpoint needed
    model_cfg.backbone.update(backbone_overrides)
    model_cfg.data_preprocessor.size = (size, size)
    return cfg, MODELS.build(model_cfg)


# --------------------------------------------------------------------------------------------
# Configs


def test_all_ade_configs_present():
    names = {p.name for p in ADE_CONFIGS}
    assert names == {
        'fpn_e-spikeformer-10m_8xb2-160k_ade20k-512x512.py',
        'fpn_e-spikeformer-19m_8xb2-160k_ade20k-512x512.py',
        'fpn_e-spikeformer-10m-stage1234_8xb2-160k_ade20k-512x512.py',
        'fpn_e-spikeformer-19m-stage1234_8xb2-160k_ade20k-512x512.py',
    }


@pytest.mark.slow
@pytest.mark.parametrize('path', ADE_CONFIGS, ids=lambda p: p.stem)
def test_ade_config_builds_and_runs(path):
    torch.manual_seed(0)
    cfg, model = build_from_config(path, size=32)
    assert cfg.default_scope == 'mmseg'
    assert cfg.custom_imports['imports'] == ['sdt_dense']
    model.train()
    losses = model(**fake_batch(model, size=32), mode='loss')
    assert set(losses) == {'decode.loss_ce', 'decode.acc_seg'}
    # random labels over 150 classes: the loss starts near ln(150) = 5.0
    assert 2.0 < losses['decode.loss_ce'].item() < 10.0

    model.eval()
    with torch.no_grad():
        results = model(**fake_batch(model, size=32, training=False), mode='predict')
    assert len(results) == 2
    for r in results:
        assert r.seg_logits.data.shape == (150, 32, 32)
        pred = r.pred_sem_seg.data
        assert pred.shape == (1, 32, 32) and 0 <= pred.min() and pred.max() < 150


def test_loss_gradients_reach_every_parameter():
    _, model = build_from_config(TOY_CONFIG, size=32)
    model.train()
    losses = model(**fake_batch(model, size=32, num_classes=4), mode='loss')
    losses['decode.loss_ce'].backward()
    # every parameter is in the graph (STE through all neurons) ...
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    # ... and the gradient is non-zero from the stem on pixels to the classifier (attention branches
    # may be silent at initialisation, so their weights can get exact zeros)
    for name, p in model.named_parameters():
        if name.startswith(('neck.', 'decode_head.', 'backbone.downsamples.0.')):
            assert p.grad.any(), name


@pytest.mark.parametrize('path', ADE_CONFIGS, ids=lambda p: p.stem)
def test_declared_strides_are_the_backbone_strides(path):
    cfg = load_config(path)
    backbone_cfg = dict(cfg.model.backbone, init_cfg=None)
    backbone_cfg.pop('type')
    backbone = ESpikeFormer(**backbone_cfg)
    assert list(cfg.model.decode_head.feature_strides) == backbone.out_strides
    assert list(cfg.model.neck.in_channels) == backbone.out_channels
    assert list(cfg.model.decode_head.in_channels) == [cfg.model.neck.out_channels] * 4
    # and the backbone really produces maps at those strides
    with torch.no_grad():
        outs = backbone.eval()(torch.zeros(1, 3, 32, 32))
    assert [32 // o.shape[-1] for o in outs] == backbone.out_strides


@pytest.mark.parametrize('path', ADE_CONFIGS, ids=lambda p: p.stem)
def test_published_recipe_settings(path):
    cfg = load_config(path)
    opt = cfg.optim_wrapper
    assert opt.type == 'OptimWrapper'
    assert opt.optimizer == dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.005)
    assert opt.paramwise_cfg.custom_keys == {'decode_head': dict(lr_mult=2.0)}
    assert [dict(s) for s in cfg.param_scheduler] == [
        dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
        dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=1500, end=160000),
    ]
    assert cfg.train_cfg.max_iters == 160000
    assert cfg.train_dataloader.batch_size * 8 == 16  # 8xb2: 16 images per iteration
    assert cfg.model.backbone.layer_scale_init_value is None  # the 1e-6 bug is fixed by default
    assert cfg.model.backbone.init_cfg.type == 'Pretrained'
    assert cfg.model.backbone.arch in path.name.upper()  # '10M' / '19M', as the file name says
    for part in ('backbone', 'neck', 'decode_head'):
        assert cfg.model[part].norm_cfg.type == 'SyncBN'
    assert cfg.model.decode_head.dropout_ratio == 0.1
    assert cfg.model.decode_head.num_classes == 150
    assert cfg.model.data_preprocessor.size == (512, 512)
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        assert loader.dataset.type == 'ADE20KDataset'
        assert loader.dataset.data_root == 'data/ade/ADEChallengeData2016'
        loads = [t for t in loader.dataset.pipeline if t.type == 'LoadAnnotations']
        assert loads and all(t.reduce_zero_label for t in loads)
    crop = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'RandomCrop']
    assert crop[0].crop_size == (512, 512)


def test_published_recipe_learning_rates():
    cfg = load_config(CFG_10M)
    # the effective learning rates: backbone and neck 1e-3, decode head 2e-3
    from mmengine.optim import OptimWrapper, build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS

    _, model = build_from_config(CFG_10M, arch='t')
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    head_ids = {id(p) for p in model.decode_head.parameters()}
    lrs = {
        ('head' if id(g['params'][0]) in head_ids else 'other', round(g['lr'], 9))
        for g in wrapper.optimizer.param_groups
    }
    assert lrs == {('head', 2e-3), ('other', 1e-3)}
    assert all(g['weight_decay'] == 0.005 for g in wrapper.optimizer.param_groups)

    # the schedule, on a one-parameter optimizer with the config's base lr
    optimizer = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1e-3)
    wrapper = OptimWrapper(optimizer)
    schedulers = [
        PARAM_SCHEDULERS.build(dict(s, optimizer=wrapper)) for s in copy.deepcopy(cfg.param_scheduler)
    ]
    lrs = {}
    for it in range(3001):
        lrs[it] = optimizer.param_groups[0]['lr']
        for s in schedulers:
            s.step()
    # linear warmup over the first 1500 iterations (mmengine reaches the peak at the last one) ...
    assert lrs[0] == pytest.approx(1e-9)
    assert lrs[750] == pytest.approx(0.5e-3, rel=1e-3)
    assert lrs[1499] == pytest.approx(1e-3) and lrs[1500] == pytest.approx(1e-3)
    # ... then linear (power 1) decay, reaching 0 at the last of the 160k iterations
    for it in (2000, 3000):
        assert lrs[it] == pytest.approx(1e-3 * (1 - (it - 1500) / (160000 - 1 - 1500)), rel=1e-6)
    assert schedulers[1].end == 160000 and schedulers[1].eta_min == 0


def test_missing_pretrained_checkpoint_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the configs' relative checkpoints/ path does not exist here
    cfg = load_config(CFG_10M)
    cfg.model.backbone.arch = 't'  # keeps the config's init_cfg
    cfg.model.neck.in_channels = [12, 24, 48, 128]
    model = MODELS.build(cfg.model)
    with pytest.raises(FileNotFoundError, match=r'checkpoints/e-spikeformer-10m_in1k\.pth'):
        model.init_weights()


def test_segmentor_loads_released_checkpoint_strictly():
    """The configs' Pretrained init reads a file in the released layout into the backbone."""
    cfg = load_config(CFG_10M)
    cfg.model.backbone.update(arch='t', init_cfg=dict(type='Pretrained', checkpoint=str(REF_CKPT)))
    cfg.model.neck.in_channels = [12, 24, 48, 128]
    model = MODELS.build(cfg.model)
    model.init_weights()
    released = safe_load(REF_CKPT)['model']
    assert torch.equal(
        model.backbone.downsamples[0].conv.weight, released['downsample1_1.encode_conv.weight']
    )
    assert torch.equal(
        model.backbone.stages[4][1].attn.v.conv.weight, released['block4.1.attn.v_conv.0.weight']
    )


def test_published_layer_scale_is_an_explicit_option():
    for path in ADE_CONFIGS:
        assert load_config(path).model.backbone.layer_scale_init_value is None, path.name
    _, model = build_from_config(ADE_CONFIGS[0], arch='t')
    assert not any('gamma' in n for n, _ in model.named_parameters())
    # --cfg-options model.backbone.layer_scale_init_value=1e-6 (the published init)
    _, model = build_from_config(ADE_CONFIGS[0], arch='t', layer_scale_init_value=1e-6)
    gammas = [p for n, p in model.named_parameters() if n.endswith('.gamma')]
    assert len(gammas) == 3 * 8  # three branches of each of the 6 + 2 transformer blocks
    assert all(torch.all(g == 1e-6) for g in gammas)


# --------------------------------------------------------------------------------------------
# Neck and head


def test_syncbn_config_gives_syncbatchnorm():
    sync = dict(type='SyncBN', requires_grad=True)
    for module in (make_neck(norm_cfg=sync), make_head(norm_cfg=sync)):
        norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        convs = [
            m
            for m in module.modules()
            if isinstance(m, nn.Conv2d) and m is not getattr(module, 'conv_seg', None)
        ]
        assert norms and len(norms) == len(convs)
        assert all(isinstance(m, nn.SyncBatchNorm) for m in norms)
    _, model = build_from_config(ADE_CONFIGS[0], arch='t')  # the ADE configs: SyncBN everywhere
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert all(isinstance(m, nn.SyncBatchNorm) for m in norms)
    plain = make_head(norm_cfg=dict(type='BN'))
    assert all(
        type(m) is nn.BatchNorm2d for m in plain.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
    )


def test_every_conv_is_fed_by_a_neuron():
    """Each conv of the segmentor, except the stem on pixels, takes a neuron output object."""
    _, model = build_from_config(ROOT / 'configs' / 'toy' / 'fpn_e-spikeformer-t_toy.py')
    model.eval()
    # The outputs are kept alive (not only their ids: a freed tensor's id can be reused by the
    # next allocation, which would let a non-neuron input pass) and compared by identity.
    neuron_outputs, offenders, seen = [], [], []
    for m in model.modules():
        if isinstance(m, SFANeuron):
            m.register_forward_hook(lambda mod, a, out: neuron_outputs.append(out))
    stem = model.backbone.downsamples[0].conv
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)) and m is not stem:

            def check(mod, args, name=name):
                seen.append(name)
                if not any(args[0] is out for out in neuron_outputs):
                    offenders.append(name)

            m.register_forward_pre_hook(check)
    data = fake_batch(model, size=64, num_classes=4, training=False)
    with torch.no_grad():
        model(**data, mode='predict')
    convs = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    assert len(seen) == len(convs) - 1
    assert any(n.startswith('neck.') for n in seen) and 'decode_head.conv_seg' in seen
    assert offenders == []


# --------------------------------------------------------------------------------------------
# Tools end to end on toy data


@pytest.fixture(scope='module')
def toy_data(tmp_path_factory):
    from sdt_dense.toy_data import make_seg_dataset

    root = tmp_path_factory.mktemp('toy_ade')
    meta = make_seg_dataset(root, num_train=6, num_val=3, image_size=64, num_classes=4, seed=1)
    return root, meta


def tiny_toy_config(tmp_path: Path, data_root: Path) -> Path:
    """The toy config at 64 px for a few iterations, without dataloader workers."""
    path = tmp_path / 'toy_tiny.py'
    path.write_text(f"""
_base_ = [{str(TOY_CONFIG)!r}]
data_root = {str(data_root)!r}
crop_size = (64, 64)
model = dict(data_preprocessor=dict(size=crop_size))
_loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(batch_size=2, **_loader, dataset=dict(data_root=data_root, pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),  # reduce_zero_label comes from the dataset
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')]))
val_dataloader = dict(**_loader, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=3, val_interval=3)
default_hooks = dict(checkpoint=dict(interval=3), logger=dict(interval=1))
""")
    return path


def test_toy_config_matches_toy_data(toy_data):
    _, meta = toy_data
    cfg = load_config(TOY_CONFIG)
    assert list(cfg.classes) == meta['classes']
    assert cfg.model.decode_head.num_classes == len(meta['classes'])
    assert cfg.data_root == 'data/toy_ade'
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        assert loader.dataset.reduce_zero_label  # PNG label 0 is background, ignored


def miou_from_pngs(pred_dir: Path, gt_dir: Path, num_classes: int) -> float:
    """mIoU (%) over labels 1..K of the PNGs (0 = ignored), classes absent from both skipped."""
    inter = np.zeros(num_classes)
    union = np.zeros(num_classes)
    gts = sorted(gt_dir.glob('*.png'))
    assert gts
    for gt_path in gts:
        gt = np.asarray(Image.open(gt_path)).astype(np.int64)
        pred = np.asarray(Image.open(pred_dir / gt_path.name)).astype(np.int64)
        valid = gt != 0
        for k in range(num_classes):
            g, p = (gt == k + 1) & valid, (pred == k + 1) & valid
            inter[k] += (g & p).sum()
            union[k] += (g | p).sum()
    present = union > 0
    return float(100 * np.mean(inter[present] / union[present]))


@pytest.mark.slow
def test_toy_train_then_test_reports_miou(toy_data, tmp_path):
    data_root, meta = toy_data
    config = tiny_toy_config(tmp_path, data_root)
    work = tmp_path / 'work'
    log = run_ok([PYTHON, ROOT / 'tools' / 'train.py', config, '--work-dir', work], cwd=tmp_path)
    assert 'mIoU' in log  # validation at the last iteration
    ckpt = work / 'iter_3.pth'
    assert ckpt.exists()

    out_dir = tmp_path / 'preds'
    log = run_ok(
        [PYTHON, ROOT / 'tools' / 'test.py', config, ckpt, '--work-dir', tmp_path / 'test', '--out', out_dir],
        cwd=tmp_path,
    )
    assert 'mIoU' in log
    metrics = json.loads((tmp_path / 'test' / 'metrics.json').read_text())
    # IoUMetric's number equals an independent count over the saved predictions
    expected = miou_from_pngs(out_dir, data_root / 'annotations' / 'validation', len(meta['classes']))
    assert metrics['mIoU'] == pytest.approx(expected, abs=0.01)


@pytest.mark.slow
def test_stock_mmseg_train_script_runs_the_config(toy_data, tmp_path):
    assert MMSEG_TRAIN.is_file(), f'the installed mmseg ships no {MMSEG_TRAIN} (its .mim tools)'
    data_root, _ = toy_data
    config = tiny_toy_config(tmp_path, data_root)
    work = tmp_path / 'work'
    run_ok(
        [
            PYTHON,
            MMSEG_TRAIN,
            config,
            '--work-dir',
            work,
            '--cfg-options',
            'train_cfg.max_iters=2',
            'train_cfg.val_interval=100',
            'default_hooks.checkpoint.interval=2',
        ],
        cwd=tmp_path,
    )
    state = safe_load(work / 'iter_2.pth')['state_dict']
    assert any(k.startswith('decode_head.scale_heads.') for k in state)
