"""The classifiers as timm models: listing, released-file loading, dense features."""

import pytest
import timm
import torch

import sdt_dense  # noqa: F401  (registers the timm models)
from sdt_testing import TEST_DATA

OFFICIAL = TEST_DATA / 'base' / 'e_spikeformer_t_official_format.pth'
EXPECTED = TEST_DATA / 'base' / 'e_spikeformer_t_expected_f64.pt'


def load_expected() -> dict:
    e = torch.load(EXPECTED, weights_only=True)
    e['input'] = e['input_float32'].double()  # made from a float32 input: the cast is exact
    return e


def test_list_models():
    assert {'e_spikeformer_t', 'e_spikeformer_5m', 'e_spikeformer_10m', 'e_spikeformer_19m'} <= set(
        timm.list_models('e_spikeformer*')
    )


def test_parameter_counts_match_the_published_sizes():
    for name, params in (('e_spikeformer_5m', 5_105_608), ('e_spikeformer_19m', 18_987_504)):
        model = timm.create_model(name)
        assert sum(p.numel() for p in model.parameters()) == params


def test_create_model_pretrained_loads_a_released_file():
    model = timm.create_model(
        'e_spikeformer_t', pretrained=True, pretrained_cfg_overlay=dict(file=str(OFFICIAL))
    )
    expected = load_expected()
    model.double().eval()
    with torch.no_grad():
        logits = model(expected['input'])
    assert (logits - expected['eval']['logits']).abs().max() <= 1e-9


def test_features_only_returns_the_dense_taps():
    model = timm.create_model(
        'e_spikeformer_t',
        pretrained=True,
        features_only=True,
        out_indices=(1, 2, 3, 4),
        pretrained_cfg_overlay=dict(file=str(OFFICIAL)),
    )
    assert model.feature_info.channels() == [24, 48, 96, 128]
    assert model.feature_info.reduction() == [4, 8, 16, 16]
    expected = load_expected()
    model.double().eval()
    with torch.no_grad():
        feats = model(expected['input'])
    assert len(feats) == 4
    for i, f in enumerate(feats, start=1):
        assert (f - expected['eval'][f'stage{i}']).abs().max() <= 1e-9


# ---------------------------------------------------------------------------------------------
# Large family (83M / 173M). timm builds only the full sizes; the small reference fixture goes
# through the classifier's forward_intermediates (and timm's getter wrapper) directly.

LARGE = TEST_DATA / 'large'
LARGE_CKPT = LARGE / 'large_small_official_format.pth'
LARGE_EXPECTED = LARGE / 'large_small_expected_f64.pt'
#: the fixture's configuration (widths [32, 64, 128], 2 blocks, 83M layout)
LARGE_SMALL = dict(embed_dims=[32, 64, 128], depth=2, rep_branch=True)
#: published sizes (kd=True, i.e. with the distillation head / kd=False)
LARGE_PARAMS = {
    'e_spikeformer_83m': (83_015_952, 82_502_952),
    'e_spikeformer_173m': (171_740_714, 170_971_714),
}


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_large_models_and_tags_are_listed():
    names = set(timm.list_models('e_spikeformer*'))
    assert {'e_spikeformer_83m', 'e_spikeformer_173m'} <= names
    tagged = set(timm.list_models('e_spikeformer_83m*', pretrained=False, include_tags=True))
    assert {
        'e_spikeformer_83m.in1k_1x4',
        'e_spikeformer_83m.in1k_1x8',
        'e_spikeformer_83m.in1k_1x8_384',
    } <= tagged


@pytest.mark.slow
@pytest.mark.parametrize('name', list(LARGE_PARAMS))
def test_large_parameter_counts_and_released_names(name):
    """Full sizes, built on the meta device (no memory): the published parameter counts, the
    authors' file names, and D taken from the pretrained tag."""
    kd, no_kd = LARGE_PARAMS[name]
    prefix = '83M' if name.endswith('83m') else '171M'
    with torch.device('meta'):
        model = timm.create_model(name)
        assert _count(model) == kd
        assert _count(timm.create_model(name, kd=False)) == no_kd
        d8 = timm.create_model(f'{name}.in1k_1x8_384')
        d8_forced = timm.create_model(f'{name}.in1k_1x8', neuron_cfg=dict(D=4))
    assert model.pretrained_cfg['released_file'] == f'{prefix}_1x4'
    assert model.pretrained_cfg['input_size'] == (3, 224, 224)
    assert d8.pretrained_cfg['released_file'] == f'{prefix}_1x8_384'
    assert d8.pretrained_cfg['input_size'] == (3, 384, 384)
    assert {m.D for m in model.modules() if hasattr(m, 'rounding')} == {4}
    assert {m.D for m in d8.modules() if hasattr(m, 'rounding')} == {8}
    assert {m.D for m in d8_forced.modules() if hasattr(m, 'rounding')} == {4}  # explicit wins


def test_large_features_only_and_pretrained_file_use_our_loader(monkeypatch):
    """features_only: levels 0-3 (strides 2..16); a pretrained=True load with a file overlay goes
    through the classifier's own (converting, safe, strict) loader."""
    from sdt_dense.models import ESpikeFormerLargeClassifier

    with torch.device('meta'):
        feats = timm.create_model('e_spikeformer_83m', features_only=True)
    assert feats.feature_info.channels() == [64, 128, 256, 512]
    assert feats.feature_info.reduction() == [2, 4, 8, 16]
    seen = []
    monkeypatch.setattr(ESpikeFormerLargeClassifier, 'load_pretrained', lambda self, path: seen.append(path))
    with torch.device('meta'):
        timm.create_model(
            'e_spikeformer_173m', pretrained=True, pretrained_cfg_overlay=dict(file='/x/171M_1x4.pth')
        )
    assert seen == ['/x/171M_1x4.pth']


@pytest.mark.slow
def test_large_forward_intermediates_match_the_reference_fixture():
    from timm.models._features import FeatureGetterNet

    from sdt_dense.models import ESpikeFormerLargeClassifier
    from sdt_testing.reference import max_error

    expected = torch.load(LARGE_EXPECTED, weights_only=True)
    model = ESpikeFormerLargeClassifier(LARGE_SMALL, kd=True)
    model.load_pretrained(str(LARGE_CKPT))
    model.double().eval()
    x = expected['input']
    taps = dict(zip(range(4), ('stride2', 'stage1', 'stage2', 'stage3')))
    with torch.no_grad():
        feats = model.forward_intermediates(x, intermediates_only=True)
        logits, last_two = model.forward_intermediates(x, indices=2)
        wrapped = FeatureGetterNet(model, out_indices=(1, 3))(x)
    assert [f.shape[1] for f in feats] == [16, 32, 64, 128]
    for i, f in enumerate(feats):
        assert max_error(f, expected['eval'][taps[i]]) <= 1e-6, taps[i]
    assert max_error(logits, expected['eval']['logits']) <= 1e-6
    assert [torch.equal(a, b) for a, b in zip(last_two, feats[2:])] == [True, True]
    assert [torch.equal(a, b) for a, b in zip(wrapped, (feats[1], feats[3]))] == [True, True]
    with pytest.raises(ValueError, match='levels 0..3'):
        model.forward_intermediates(x, indices=[4])
