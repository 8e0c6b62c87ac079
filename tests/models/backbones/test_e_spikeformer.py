"""E-SpikeFormer backbone: the published network (reference fixture), sizes, options, loading."""

import math

import pytest
import torch

from sdt_dense.checkpoint import CheckpointMismatchError, load_pretrained
from sdt_dense.models import ESpikeFormer, ESpikeFormerClassifier
from sdt_testing import TEST_DATA
from sdt_testing.reference import max_error, projection_weights

# Copies of the reference data (see tests/data/README.md): the released-layout checkpoint of the
# 't' size and what the published code computes from it in float64.
OFFICIAL = TEST_DATA / 'base' / 'e_spikeformer_t_official_format.pth'
EXPECTED = TEST_DATA / 'base' / 'e_spikeformer_t_expected_f64.pt'


@pytest.fixture(scope='module')
def expected():
    e = torch.load(EXPECTED, weights_only=True)
    assert torch.equal(e['projection_check'], projection_weights(7))
    e['input'] = e['input_float32'].double()  # made from a float32 input: the cast is exact
    return e


@pytest.fixture(params=[1, 2], ids=['1-thread', '2-threads'])
def num_threads(request):
    """The float64 fixture does not depend on the summation order: check 1 and 2 threads."""
    saved = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(saved)


def _max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape and a.dtype == b.dtype == torch.float64
    return (a - b).abs().max().item()


@pytest.mark.slow
def test_reference_stage_outputs_eval_float64(expected, num_threads):
    model = ESpikeFormer(
        't', out_indices=(1, 2, 3, 4), init_cfg=dict(type='Pretrained', checkpoint=str(OFFICIAL))
    )
    model.init_weights()
    model.double().eval()
    with torch.no_grad():
        outs = model(expected['input'])
    for i, out in enumerate(outs, start=1):
        assert _max_err(out, expected['eval'][f'stage{i}']) <= 1e-9, f'stage{i}'


@pytest.mark.slow
def test_reference_logits_and_input_gradient_float64(expected, num_threads):
    model = ESpikeFormerClassifier.from_pretrained(str(OFFICIAL), 't').double().eval()
    with torch.no_grad():
        assert _max_err(model(expected['input']), expected['eval']['logits']) <= 1e-9
    model.train()
    x = expected['input'].clone().requires_grad_()
    logits = model(x)
    assert _max_err(logits, expected['train']['logits']) <= 1e-9
    (logits * expected['train']['loss_weights']).sum().backward()
    assert max_error(x.grad, expected['train']['input_grad']) <= 1e-7


def test_reference_float32_smoke(expected):
    """float32 against the float64 fixture, at whatever thread count. Pre-activations lie within
    float32 rounding of .5 ties, so a count may flip (one flip moves stage 4 by about 2e-2): the
    stem-side stages must agree to float32 precision, the later ones within a bound no flip of a
    few counts can exceed, yet far below the spread of an unrelated network."""
    model = ESpikeFormerClassifier.from_pretrained(str(OFFICIAL), 't').eval()
    x = expected['input'].float()
    stages = ESpikeFormer(
        't', out_indices=(1, 2, 3, 4), init_cfg=dict(type='Pretrained', checkpoint=str(OFFICIAL))
    )
    stages.init_weights()
    with torch.no_grad():
        outs = stages.eval()(x)
        logits = model(x)
    torch.testing.assert_close(outs[0].double(), expected['eval']['stage1'], atol=1e-4, rtol=0)
    for i in (2, 3, 4):
        err = (outs[i - 1].double() - expected['eval'][f'stage{i}']).abs()
        assert err.mean() < 1e-3, f'stage{i}'
    assert (logits.double() - expected['eval']['logits']).abs().max() < 0.1
    assert expected['eval']['logits'].std() > 0.3  # the bound above is a meaningful one


@pytest.mark.parametrize(
    'arch,params', [('t', 2_702_048), ('5M', 5_105_608), ('10M', 10_023_112), ('19M', 18_987_504)]
)
def test_parameter_counts_with_classifier(arch, params):
    model = ESpikeFormerClassifier(arch)
    assert sum(p.numel() for p in model.parameters()) == params


@pytest.mark.parametrize('last_stride', [1, 2])
def test_output_shapes_match_declared_strides(last_stride):
    model = ESpikeFormer('t', out_indices=(0, 1, 2, 3, 4), last_stride=last_stride).eval()
    H, W = 70, 45  # not divisible by 32
    with torch.no_grad():
        outs = model(torch.randn(1, 3, H, W))
    assert model.out_strides == [2, 4, 8, 16, 16 * last_stride]
    assert model.out_channels == [12, 24, 48, 96, 128]
    for out, c, s in zip(outs, model.out_channels, model.out_strides):
        assert out.shape == (1, c, math.ceil(H / s), math.ceil(W / s))


def test_out_indices_subset_and_validation():
    model = ESpikeFormer('t', out_indices=(0, 3))
    outs = model(torch.randn(1, 3, 32, 32))
    assert [o.shape[1] for o in outs] == [12, 96]
    with pytest.raises(ValueError, match='out_indices'):
        ESpikeFormer('t', out_indices=(5,))


def test_unknown_arch_lists_valid_ones():
    with pytest.raises(KeyError, match=r"valid: \['t', '5M', '10M', '19M'\], aliases \['s', 'm', 'l'"):
        ESpikeFormer('xl')


@pytest.mark.parametrize(
    'name,size',
    [('19M', '19M'), ('19m', '19M'), ('l', '19M'), ('10M', '10M'), ('m', '10M'), ('5.1M', '5M'), ('s', '5M')],
)
def test_paper_names_and_aliases(name, size):
    assert ESpikeFormer.canonical_arch(name) == size
    assert ESpikeFormer.resolve_arch(name) == ESpikeFormer.resolve_arch(size)


@pytest.mark.parametrize('name', ['large', 'base', 'tiny', 'small', 'medium'])
def test_word_sizes_are_not_arch_names(name):
    with pytest.raises(KeyError, match='valid'):
        ESpikeFormer(name)
    with pytest.raises(KeyError, match='valid'):
        ESpikeFormer.canonical_arch(name)


def test_arch_of_the_other_family_is_named():
    with pytest.raises(KeyError, match=r"'83M' for ESpikeFormer \(ESpikeFormerLarge has"):
        ESpikeFormer('83M')


def test_custom_arch_dict():
    model = ESpikeFormer(dict(embed_dims=[16, 32, 64, 64], depths=[1, 1, 1, 1, 1], num_heads=4))
    assert model.stage_channels == [8, 16, 32, 64, 64]
    assert len(model.stages[3]) == 1


def test_drop_path_is_applied():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32) * 3
    plain = ESpikeFormer('t', out_indices=(4,)).train()
    assert torch.equal(plain(x)[0], plain(x)[0])
    dropped = ESpikeFormer('t', out_indices=(4,), drop_path_rate=0.5)
    dropped.load_state_dict(plain.state_dict())
    dropped.train()
    torch.manual_seed(1)
    a = dropped(x)[0]
    torch.manual_seed(2)
    b = dropped(x)[0]
    assert not torch.equal(a, b)
    dropped.load_state_dict(plain.state_dict())  # same BN statistics
    dropped.eval()
    plain.eval()
    torch.testing.assert_close(dropped(x)[0], plain(x)[0])  # identity at eval


def test_layer_scale_option_loads_released_weights():
    model = ESpikeFormer('t', layer_scale_init_value=1e-6)
    load_pretrained(model, str(OFFICIAL))
    gammas = [p for n, p in model.named_parameters() if n.endswith('gamma')]
    assert len(gammas) == 8 * 3
    assert all(torch.all(g == 1e-6) for g in gammas)


def _mmengine_style_checkpoint(tmp_path, mutate):
    model = ESpikeFormer('t')
    state = {f'backbone.{k}': v.clone() for k, v in model.state_dict().items()}
    state['neck.lateral.weight'] = torch.zeros(3)
    mutate(state)
    path = tmp_path / 'ckpt.pth'
    torch.save({'state_dict': state, 'meta': {'epoch': 1}}, path)
    return model, path


@pytest.mark.slow
def test_loads_own_detector_checkpoint(tmp_path):
    model, path = _mmengine_style_checkpoint(tmp_path, lambda s: None)
    fresh = ESpikeFormer('t', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    fresh.init_weights()
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v)


def test_missing_tensor_is_named(tmp_path):
    key = 'backbone.stages.3.2.attn.v.conv.weight'
    _, path = _mmengine_style_checkpoint(tmp_path, lambda s: s.pop(key))
    with pytest.raises(CheckpointMismatchError, match=r'stages\.3\.2\.attn\.v\.conv\.weight\s+missing'):
        load_pretrained(ESpikeFormer('t'), str(path))


def test_misshaped_tensor_is_named(tmp_path):
    key = 'backbone.downsamples.2.bn.weight'
    _, path = _mmengine_style_checkpoint(tmp_path, lambda s: s.update({key: torch.zeros(7)}))
    with pytest.raises(CheckpointMismatchError, match=r'downsamples\.2\.bn\.weight\s+shape'):
        load_pretrained(ESpikeFormer('t'), str(path))


def test_released_checkpoint_into_wrong_size_fails():
    with pytest.raises(CheckpointMismatchError, match='shape'):
        load_pretrained(ESpikeFormer('s'), str(OFFICIAL))


@pytest.mark.slow
def test_official2sdt_converter(tmp_path, expected):
    from sdt_dense.cli.official2sdt import main

    dst = tmp_path / 'converted.pth'
    main([str(OFFICIAL), str(dst), '--arch', 't'])
    converted = torch.load(dst, weights_only=True)  # plain weights-only file
    assert any(k.startswith('backbone.stages.3.') for k in converted['state_dict'])
    model = ESpikeFormerClassifier('t')
    model.load_pretrained(str(dst))
    model.double().eval()
    with torch.no_grad():
        assert _max_err(model(expected['input']), expected['eval']['logits']) <= 1e-9
    backbone = ESpikeFormer('t', init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    backbone.init_weights()
