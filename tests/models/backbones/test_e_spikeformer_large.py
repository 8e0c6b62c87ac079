"""E-SpikeFormer Large (83M / 173M): the published network reproduced in float64 (reference
fixtures), the neuron rules they pin down, sizes and released key layout, the dense-prediction
options, spike-driven inference and layer-wise lr decay.

The fixtures in ``tests/data/large`` (see its README) are small configurations of the published
classifier (widths [32, 64, 128], 2 blocks, 83M code path) at D = 4 and D = 8.
"""

import argparse
import json
import math
import re
import zipfile

import pytest
import torch
from timm.layers import DropPath
from torch import nn

from sdt_dense.checkpoint import LARGE_FORMAT, CheckpointMismatchError, match_state_dict, safe_load
from sdt_dense.deploy import is_spike_driven, spike_driven
from sdt_dense.engine.optimizers import LargeLayerDecayOptimWrapperConstructor
from sdt_dense.models.backbones import ESpikeFormerLarge, ESpikeFormerLargeClassifier
from sdt_dense.models.layers import BatchDropPath, SpikeLinearAttention
from sdt_testing import TEST_DATA, randomise_bn
from sdt_testing.reference import max_error, num_threads, projection_weights

DATA = TEST_DATA / 'large'
CKPT = DATA / 'large_small_official_format.pth'
D8_DELTA = DATA / 'large_small_d8_delta.pt'
EXPECTED = {4: DATA / 'large_small_expected_f64.pt', 8: DATA / 'large_small_d8_expected_f64.pt'}
OFFICIAL_KEYS = DATA / 'official_state_dict_keys_large.json'
TOL = 1e-6

# fixture tap -> name in ESpikeFormerLargeClassifier.forward_taps
TAPS = dict(
    stride2='stride2',
    stage1='stride4',
    stage2='stride8',
    stage3_in='stride16_in',
    block3_0='block0',
    block3_1='block1',
    stage3='block1',
    pooled='pooled',
    logits_cls='logits_cls',
    logits_kd='logits_kd',
    logits='logits',
)
# a small random configuration for the option tests
TINY = dict(embed_dims=[16, 32, 64], depth=2, rep_branch=True)
# the fixtures' configuration (the checkpoints fit it)
SMALL = dict(embed_dims=[32, 64, 128], depth=2, rep_branch=True)


# ---------------------------------------------------------------------------------------------
# helpers


def reference_arch(expected: dict) -> dict:
    """Our arch dict for a fixture's ``config`` (the published constructor's keyword arguments)."""
    cfg = expected['config']
    assert cfg['T'] == 1  # repeating the input over real timesteps has no effect (memoryless)
    return dict(
        embed_dims=cfg['embed_dim'],
        depth=cfg['depths'],
        num_heads=cfg['num_heads'],
        mlp_ratio=cfg['mlp_ratios'],
        rep_branch=cfg['choice'] == 'base',
        D=expected['D'],
    )


def reference_classifier(expected: dict, checkpoint, **overrides) -> ESpikeFormerLargeClassifier:
    """The classifier of a fixture configuration with ``checkpoint`` loaded, in float64."""
    cfg = expected['config']
    model = ESpikeFormerLargeClassifier(
        reference_arch(expected), kd=cfg['kd'], drop_path_rate=cfg['drop_path_rate'], **overrides
    )
    model.load_pretrained(str(checkpoint))
    return model.double()


def run_reference(
    model: ESpikeFormerLargeClassifier, expected: dict, x: torch.Tensor, train: bool = True
) -> dict:
    """Max abs error of every stored eval tap, the eval output and (``train``) the train logits
    pair and the input gradient of ``(logits_cls R).sum() + (logits_kd R_kd).sum()``."""
    errors = {}
    model.eval()
    with torch.no_grad():
        taps = model.forward_taps(x)
        errors['eval/forward'] = max_error(model(x), expected['eval']['logits'])
    for name, stored in expected['eval'].items():
        errors[f'eval/{name}'] = max_error(taps[TAPS[name]], stored)
    if not train:
        return errors
    model.train()
    x = x.clone().requires_grad_()
    logits_cls, logits_kd = model(x)
    train = expected['train']
    ((logits_cls * train['loss_weights']).sum() + (logits_kd * train['loss_weights_kd']).sum()).backward()
    errors['train/logits_cls'] = max_error(logits_cls.detach(), train['logits_cls'])
    errors['train/logits_kd'] = max_error(logits_kd.detach(), train['logits_kd'])
    errors['train/input_grad'] = max_error(x.grad, train['input_grad'])
    return errors


@pytest.fixture(scope='module')
def expected():
    data = {D: torch.load(path, weights_only=True) for D, path in EXPECTED.items()}
    data[8]['input'] = data[4]['input']  # the D=8 fixture uses the same input (not stored twice)
    for e in data.values():
        assert torch.equal(e['projection_check'], projection_weights(7))
    return data


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """The two fixture checkpoints in the released layout. The D=8 file is rebuilt from the D=4
    one and its stored BatchNorm tensors, and re-saved in the same layout (model, optimizer,
    epoch, scaler, args as an argparse.Namespace)."""
    base = safe_load(CKPT)
    delta = torch.load(D8_DELTA, weights_only=True)
    d8 = dict(base)
    d8['model'] = {k: delta['model'].get(k, v) for k, v in base['model'].items()}
    d8['args'] = argparse.Namespace(**{**vars(base['args']), **delta['args']})
    path = tmp_path_factory.mktemp('large') / 'large_small_d8_official_format.pth'
    torch.save(d8, path)
    return {4: CKPT, 8: path}


@pytest.fixture(scope='module')
def official_keys():
    return json.loads(OFFICIAL_KEYS.read_text())


# ---------------------------------------------------------------------------------------------
# fidelity to the published network (float64)


@pytest.mark.slow
@pytest.mark.parametrize('threads', [1, 2])
@pytest.mark.parametrize('D', [4, 8])
def test_reference_fixture_float64(D, threads, expected, checkpoints):
    """Every stored tap, the eval output, the train logits and the input gradient within 1e-6."""
    with num_threads(threads):
        model = reference_classifier(expected[D], checkpoints[D])
        errors = run_reference(model, expected[D], expected[D]['input'])
    print(f'D={D} threads={threads} max abs errors: ' + ', '.join(f'{k} {v:.1e}' for k, v in errors.items()))
    assert max(errors.values()) <= TOL, errors


def test_checkpoint_is_released_layout_and_not_plain_weights_only():
    """The fixture is a real released-layout file: plain weights-only loading would refuse its
    ``argparse.Namespace``; the project's safe loader reads it."""
    with zipfile.ZipFile(CKPT) as archive:
        pickle = next(n for n in archive.namelist() if n.endswith('/data.pkl'))
        assert b'argparse\nNamespace' in archive.read(pickle)
    ckpt = safe_load(CKPT)
    assert set(ckpt) == {'model', 'optimizer', 'epoch', 'scaler', 'args'}
    assert LARGE_FORMAT.detect(ckpt['model'])


@pytest.mark.slow
@pytest.mark.parametrize(
    'rule', [dict(rounding='half_even'), dict(window='inclusive')], ids=['half_even', 'inclusive']
)
def test_fixture_rejects_wrong_neuron_rules(rule, expected, checkpoints):
    """The fixture tells the rules apart: half-to-even rounding moves the logits, an inclusive
    straight-through window moves the input gradient (exact ties at 0 and D in attention)."""
    model = reference_classifier(expected[4], checkpoints[4], neuron_cfg=rule)
    errors = run_reference(model, expected[4], expected[4]['input'], train='window' in rule)
    if 'rounding' in rule:
        assert errors['eval/logits'] > 0.1
    else:  # the forward pass is the same; only the gradient differs
        assert errors['eval/logits'] <= TOL
        assert errors['train/input_grad'] > 1e-3


def test_d_comes_from_the_config(expected, checkpoints):
    """D=4 and D=8 checkpoints share their layout: loading the D=8 file into a D=4 model works
    but computes something else."""
    model = reference_classifier(expected[8], checkpoints[8], neuron_cfg=dict(D=4)).eval()
    assert all(m.D == 4 for m in model.modules() if hasattr(m, 'D'))
    with torch.no_grad():
        logits = model(expected[8]['input'])
    assert max_error(logits, expected[8]['eval']['logits']) > 1e-2


def test_neuron_rules_default_to_the_large_family():
    neurons = [m for m in ESpikeFormerLarge(TINY).modules() if hasattr(m, 'rounding')]
    assert neurons and all(
        (n.D, n.norm, n.rounding, n.window) == (4, 4, 'half_up', 'exclusive') for n in neurons
    )
    for model in (ESpikeFormerLarge({**TINY, 'D': 8}), ESpikeFormerLarge(TINY, neuron_cfg=dict(D=8))):
        assert {m.D for m in model.modules() if hasattr(m, 'rounding')} == {8}
    clf = ESpikeFormerLargeClassifier({**TINY, 'D': 8}, kd=True)
    assert (clf.head_neuron.D, clf.head_neuron.norm) == (8, 1)  # integer spikes 0..8
    with pytest.raises(ValueError, match='single-step'):
        ESpikeFormerLarge(TINY, neuron_cfg=dict(type='LIF', T=4))


# ---------------------------------------------------------------------------------------------
# sizes and the released checkpoint layout


@pytest.mark.slow
@pytest.mark.parametrize('arch,key', [('83M', 'spikformer12_512'), ('173M', 'spikformer12_768')])
def test_parameter_counts_match_published(arch, key, official_keys):
    params = official_keys[key]['params']
    with torch.device('meta'):
        with_kd = ESpikeFormerLargeClassifier(arch, kd=True)
        without_kd = ESpikeFormerLargeClassifier(arch, kd=False)
        dense = ESpikeFormerLarge(arch, out_indices=(0, 1, 2, 3, 4))

    def count(m):
        return sum(p.numel() for p in m.parameters())

    assert count(with_kd) == params['kd_true']
    assert count(without_kd) == params['kd_false']
    assert count(with_kd.backbone) == params['no_heads']
    C2 = dense.stage_channels[3]
    assert count(dense) == params['no_heads'] + 9 * C2 * C2 + 3 * C2  # + the stride-32 layer


@pytest.mark.parametrize('spelling', ['sequential', 'module'])
@pytest.mark.parametrize('arch,key', [('83M', 'spikformer12_512'), ('173M', 'spikformer12_768')])
def test_released_key_layout_maps_onto_model(arch, key, spelling, official_keys):
    """Every released name and shape converts to exactly our state dict, with either
    SpikingJelly spelling of the conv-block keys (``conv1.0.0`` / ``conv1.0.module.0``)."""
    released = {}
    for name, shape in official_keys[key]['state_dict']:
        if spelling == 'module':
            name = re.sub(r'^(ConvBlock\d_\d\.0\.conv[12]\.0)\.', r'\1.module.', name)
        released[name] = torch.empty(shape, device='meta')
    assert spelling == 'sequential' or any('.module.' in k for k in released)
    with torch.device('meta'):
        model = ESpikeFormerLargeClassifier(arch, kd=True)
    converted = LARGE_FORMAT.to_classifier(released)
    assert {k: tuple(v.shape) for k, v in converted.items()} == {
        k: tuple(v.shape) for k, v in model.state_dict().items()
    }
    match_state_dict(model, converted)  # strict: raises on any difference
    # the backbone alone: the heads are skipped as classifier tensors
    backbone_keys = {
        k
        for k in LARGE_FORMAT.convert(released)
        if not any(re.search(p, k) for p in LARGE_FORMAT.classifier_keys)
    }
    assert backbone_keys == set(model.backbone.state_dict())


def test_misshaped_and_missing_tensors_are_named(tmp_path):
    arch = SMALL
    ckpt = safe_load(CKPT)
    ckpt['model']['block3.1.attn.q_conv.0.conv1.0.weight'] = torch.zeros(191, 128, 1)
    del ckpt['model']['block3.0.layer_scale2']
    path = tmp_path / 'bad.pth'
    torch.save(ckpt, path)
    with pytest.raises(CheckpointMismatchError) as err:
        ESpikeFormerLargeClassifier(arch, kd=True).load_pretrained(str(path))
    assert re.search(r'blocks\.1\.attn\.q_conv\.conv1\.conv\.weight +shape', str(err.value))
    assert re.search(r'blocks\.0\.ls2\.gamma +missing', str(err.value))
    backbone = ESpikeFormerLarge(arch, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(CheckpointMismatchError, match=r'blocks\.1\.attn\.q_conv\.conv1'):
        backbone.init_weights()


def test_backbone_loads_released_weights(expected, checkpoints):
    """init_cfg=Pretrained loads the trunk strictly, skips the heads and leaves the added
    stride-32 layer at its initial values; the features equal the classifier's taps."""
    arch = reference_arch(expected[4])
    model = ESpikeFormerLarge(
        arch, out_indices=(0, 1, 2, 3, 4), init_cfg=dict(type='Pretrained', checkpoint=str(CKPT))
    )
    extra = {k: v.clone() for k, v in model.extra_stride32.state_dict().items()}
    model.init_weights()
    for k, v in model.extra_stride32.state_dict().items():
        assert torch.equal(v, extra[k])
    clf = reference_classifier(expected[4], checkpoints[4]).float().eval()
    model.eval()
    x = expected[4]['input'][:, :, :64, :96].float()
    with torch.no_grad():
        outs, taps = model(x), clf.forward_taps(x)
    for out, name in zip(outs, ('stride2', 'stride4', 'stride8', 'block1')):
        assert torch.equal(out, taps[name])
    assert outs[4].shape == (2, 128, 2, 3)
    assert model.out_channels == [16, 32, 64, 128, 128]
    assert model.out_strides == [2, 4, 8, 16, 32]


@pytest.mark.slow
@pytest.mark.parametrize('arch', ['83M', '173M'])
def test_full_size_forward_shapes(arch):
    """Full-size backbones on a small odd-sized input: every level has the declared width and
    stride (each stride-2 layer rounds up)."""
    model = ESpikeFormerLarge(arch, out_indices=(0, 1, 2, 3, 4)).eval()
    C0, C1, C2 = model.arch_settings['embed_dims']
    assert model.out_channels == [C0 // 2, C0, C1, C2, C2]
    assert model.out_strides == [2, 4, 8, 16, 32]
    assert (model.blocks[0].rep_conv is not None) == (arch == '83M')
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 72, 40))
    for out, c, s in zip(outs, model.out_channels, model.out_strides):
        assert out.shape == (1, c, math.ceil(72 / s), math.ceil(40 / s))
        assert torch.isfinite(out).all()


# ---------------------------------------------------------------------------------------------
# spike-driven inference


@pytest.mark.slow
def test_spike_driven_equals_integer_mode(expected, checkpoints):
    """Binary spike slices through every synaptic layer give the integer-mode taps (float64),
    including the distillation head and the added stride-32 layer."""
    clf = reference_classifier(expected[4], checkpoints[4]).eval()
    x = expected[4]['input'][:, :, :128, :128]
    with torch.no_grad():
        ref = clf.forward_taps(x)
        with spike_driven(clf):
            assert is_spike_driven(clf)
            out = clf.forward_taps(x)
    assert ref.keys() == out.keys()
    errors = {k: (out[k] - ref[k]).abs().max().item() for k in ref}
    assert max(errors.values()) <= 1e-9, errors

    backbone = ESpikeFormerLarge(reference_arch(expected[4]), out_indices=(4,)).double().eval()
    backbone.load_state_dict(clf.backbone.state_dict(), strict=False)
    with torch.no_grad():
        (ref,) = backbone(x)
        with spike_driven(backbone):
            (out,) = backbone(x)
    assert (out - ref).abs().max().item() <= 1e-9


# ---------------------------------------------------------------------------------------------
# options


def test_arch_resolution_and_validation():
    resolve_arch = ESpikeFormerLarge.resolve_arch
    assert resolve_arch('171M') == resolve_arch('173M')
    assert resolve_arch('83M')['embed_dims'] == [128, 256, 512]
    with pytest.raises(KeyError, match='83M'):
        ESpikeFormerLarge('99M')
    for word in ('base', 'large'):  # no longer names: the Base family is not '83M'
        with pytest.raises(KeyError, match=r"valid: \['83M', '173M'\], aliases \['171M'\]"):
            ESpikeFormerLarge(word)
    with pytest.raises(KeyError, match=r'ESpikeFormer has an arch of that name'):
        ESpikeFormerLarge('19M')
    with pytest.raises(KeyError, match='heads'):
        ESpikeFormerLarge(dict(embed_dims=[16, 32, 64], heads=8))
    with pytest.raises(ValueError, match='out_indices'):
        ESpikeFormerLarge(TINY, out_indices=(5,))
    with pytest.raises(ValueError, match='stride16_block'):
        ESpikeFormerLarge(TINY, stride16_block=2)
    model = ESpikeFormerLarge(TINY, out_indices=(1, 3))
    assert model.extra_stride32 is None  # only built when the stride-32 level is requested
    assert (model.out_channels, model.out_strides) == ([16, 64], [4, 16])


def test_stride16_tap_can_be_any_block():
    torch.manual_seed(0)
    full = ESpikeFormerLarge(TINY, out_indices=(3,)).eval()
    early = ESpikeFormerLarge(TINY, out_indices=(3, 4), stride16_block=0).eval()
    early.load_state_dict(full.state_dict(), strict=False)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        taps = full.forward_taps(x)
        s16, s32 = early(x)
    assert torch.equal(s16, taps['block0']) and not torch.equal(s16, taps['block1'])
    assert torch.equal(s32, early.extra_stride32(s16))


def test_forward_out_indices_and_pretrained_alias():
    model = ESpikeFormerLarge(TINY, out_indices=(1, 4)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        s4, s32 = model(x)
        s2, s16 = model(x, out_indices=(0, 3))
    assert [t.shape[-1] for t in (s2, s4, s16, s32)] == [32, 16, 4, 2]
    with pytest.raises(ValueError, match='stride-32'):
        ESpikeFormerLarge(TINY, out_indices=(3,))(x, out_indices=(4,))
    model = ESpikeFormerLarge(SMALL, pretrained=str(CKPT))  # mmseg's EncoderDecoder spelling
    assert model.init_cfg == dict(type='Pretrained', checkpoint=str(CKPT))
    model.init_weights()
    with pytest.raises(ValueError, match='init_cfg'):
        ESpikeFormerLarge(SMALL, pretrained=str(CKPT), init_cfg=dict(type='Pretrained', checkpoint=str(CKPT)))


def test_drop_path_per_sample_or_per_batch():
    per_sample = ESpikeFormerLarge(TINY, drop_path_rate=0.5)
    per_batch = ESpikeFormerLarge(TINY, drop_path_rate=0.5, drop_path_mode='batch')
    assert isinstance(per_sample.blocks[0].drop_path, nn.Identity)  # rate 0 for the first block
    assert isinstance(per_sample.blocks[1].drop_path, DropPath)
    assert isinstance(per_batch.blocks[1].drop_path, BatchDropPath)
    torch.manual_seed(0)
    x = torch.ones(16, 4, 2, 2)
    sample_masks = [per_sample.blocks[1].drop_path(x)[:, 0, 0, 0] for _ in range(10)]
    batch_masks = [per_batch.blocks[1].drop_path(x)[:, 0, 0, 0] for _ in range(20)]
    assert any(len(m.unique()) == 2 for m in sample_masks)  # samples dropped independently
    assert all(len(m.unique()) == 1 for m in batch_masks)  # the whole batch together
    assert {m[0].item() for m in batch_masks} == {0.0, 2.0}  # kept branches scaled by 1/keep
    per_batch.eval()
    assert torch.equal(per_batch.blocks[1].drop_path(x), x)
    with pytest.raises(ValueError, match='drop_path_mode'):
        ESpikeFormerLarge(TINY, drop_path_mode='token')


def test_layer_scale_init_and_disable():
    model = ESpikeFormerLarge(TINY)
    assert model.blocks[0].ls1.gamma.shape == (64,)
    assert (model.blocks[0].ls1.gamma == 1e-6).all()
    assert (ESpikeFormerLarge(TINY, layer_scale_init_value=0.5).blocks[1].ls2.gamma == 0.5).all()
    plain = ESpikeFormerLarge(
        SMALL, layer_scale_init_value=None, init_cfg=dict(type='Pretrained', checkpoint=str(CKPT))
    )
    assert not any('ls' in k for k in plain.state_dict())
    with pytest.raises(CheckpointMismatchError, match=r'blocks\.0\.ls1\.gamma +unexpected'):
        plain.init_weights()  # the released layer scales have nowhere to go


def test_sync_bn_norm_cfg():
    model = ESpikeFormerLarge(TINY, norm_cfg=dict(type='SyncBN'))
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and all(isinstance(m, nn.SyncBatchNorm) for m in norms)


def test_attention_token_scale():
    """``token_scale=N_train`` multiplies the attention by ``N_train / N`` before its neuron."""
    torch.manual_seed(0)
    plain = randomise_bn(SpikeLinearAttention(64, 8)).eval()  # so that q, k, v spike
    scaled = SpikeLinearAttention(64, 8, token_scale=2 * 36).eval()
    same = SpikeLinearAttention(64, 8, token_scale=36).eval()
    scaled.load_state_dict(plain.state_dict())
    same.load_state_dict(plain.state_dict())
    seen = {}
    for name, m in (('plain', plain), ('scaled', scaled), ('same', same)):
        m.proj_conv.conv1.neuron.register_forward_pre_hook(
            lambda mod, args, name=name: seen.__setitem__(name, args[0])
        )
    x = torch.randn(2, 64, 6, 6) * 3
    with torch.no_grad():
        for m in (plain, scaled, same):
            m(x)
    assert seen['plain'].abs().max() > 0
    assert torch.equal(seen['scaled'], 2 * seen['plain'])
    assert torch.equal(seen['same'], seen['plain'])
    model = ESpikeFormerLarge(TINY, attn_token_scale=196)
    assert all(b.attn.token_scale == 196 for b in model.blocks)
    assert all(b.attn.token_scale is None for b in ESpikeFormerLarge(TINY).blocks)


# ---------------------------------------------------------------------------------------------
# layer-wise lr decay


class _Detector(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = ESpikeFormerLarge(
            dict(embed_dims=[8, 16, 32], depth=12, rep_branch=True), frozen_stages=0
        )
        self.neck = nn.Conv2d(32, 8, 1)
        self.head = nn.Linear(8, 4)


def test_layer_decay_lr_scales():
    from mmengine.optim import build_optim_wrapper

    model = _Detector()
    wrapper = build_optim_wrapper(
        model,
        dict(
            type='OptimWrapper',
            optimizer=dict(type='AdamW', lr=2.0, weight_decay=0.05),
            constructor='LargeLayerDecayOptimWrapperConstructor',
            paramwise_cfg=dict(layer_decay_rate=0.75),
        ),
    )
    lr, wd, seen = {}, {}, []
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            lr[p], wd[p] = group['lr'] / 2.0, group['weight_decay']
            seen.append(p)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(seen) == len(set(seen)) == len(trainable)  # each trainable parameter once
    bb = model.backbone
    assert bb.downsamples[0].conv.weight not in lr  # frozen
    by_hand = {
        bb.downsamples[1].conv.weight: 0.75**13,
        bb.conv_stages[2][1].conv2.conv.weight: 0.75**13,
        bb.downsamples[3].bn.weight: 0.75**13,
        bb.blocks[0].attn.q_conv.conv1.conv.weight: 0.75**12,
        bb.blocks[0].rep_conv.conv2.bn.bias: 0.75**12,
        bb.blocks[5].ls1.gamma: 0.75**7,
        bb.blocks[11].mlp.fc2.conv.weight: 0.75,
        bb.extra_stride32.conv.weight: 1.0,
        model.neck.weight: 1.0,
        model.head.bias: 1.0,
    }
    for p, scale in by_hand.items():
        assert lr[p] == pytest.approx(scale, rel=1e-12)
    # the published per-layer numbers (stem, blocks 0..11, heads)
    published = [
        0.02376,
        0.03168,
        0.04224,
        0.05631,
        0.07508,
        0.10011,
        0.13348,
        0.17798,
        0.23730,
        0.31641,
        0.42188,
        0.5625,
        0.75,
        1.0,
    ]
    ours = (
        [lr[bb.downsamples[1].conv.weight]]
        + [lr[b.attn.q_conv.conv1.conv.weight] for b in bb.blocks]
        + [lr[model.head.weight]]
    )
    assert ours == pytest.approx(published, abs=5e-6)
    # no weight decay on 1-D tensors (norms, biases, layer scales)
    for p in seen:
        assert wd[p] == (0.0 if p.ndim <= 1 else 0.05)


def test_layer_decay_constructor_validation():
    from mmengine.optim import build_optim_wrapper

    cfg = dict(
        type='OptimWrapper',
        optimizer=dict(type='SGD', lr=0.1),
        constructor='LargeLayerDecayOptimWrapperConstructor',
    )
    with pytest.raises(KeyError, match='layer_decay_rate'):
        build_optim_wrapper(_Detector(), dict(cfg, paramwise_cfg=dict(norm_decay_mult=0.0)))
    with pytest.raises(TypeError, match='get_layer_id'):
        build_optim_wrapper(nn.Linear(2, 2), cfg)
    groups = build_optim_wrapper(_Detector(), cfg).optimizer.param_groups  # default rate 0.75
    assert min(g['lr_scale'] for g in groups) == pytest.approx(0.75**13)
    assert all(g['weight_decay'] == 0 for g in groups)  # SGD without weight decay
    ctor = LargeLayerDecayOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)), dict(layer_decay_rate=0.5)
    )
    groups = ctor(_Detector()).optimizer.param_groups
    assert min(g['lr_scale'] for g in groups) == pytest.approx(0.5**13)
