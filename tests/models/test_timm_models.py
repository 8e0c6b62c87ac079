"""The classifiers as timm models: listing, released-file loading, dense features."""
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
    assert {'e_spikeformer_t', 'e_spikeformer_5m', 'e_spikeformer_10m',
            'e_spikeformer_19m'} <= set(timm.list_models('e_spikeformer*'))


def test_parameter_counts_match_the_published_sizes():
    for name, params in (('e_spikeformer_5m', 5_105_608), ('e_spikeformer_19m', 18_987_504)):
        model = timm.create_model(name)
        assert sum(p.numel() for p in model.parameters()) == params


def test_create_model_pretrained_loads_a_released_file():
    model = timm.create_model('e_spikeformer_t', pretrained=True,
                              pretrained_cfg_overlay=dict(file=str(OFFICIAL)))
    expected = load_expected()
    model.double().eval()
    with torch.no_grad():
        logits = model(expected['input'])
    assert (logits - expected['eval']['logits']).abs().max() <= 1e-9


def test_features_only_returns_the_dense_taps():
    model = timm.create_model('e_spikeformer_t', pretrained=True, features_only=True,
                              out_indices=(1, 2, 3, 4),
                              pretrained_cfg_overlay=dict(file=str(OFFICIAL)))
    assert model.feature_info.channels() == [24, 48, 96, 128]
    assert model.feature_info.reduction() == [4, 8, 16, 16]
    expected = load_expected()
    model.double().eval()
    with torch.no_grad():
        feats = model(expected['input'])
    assert len(feats) == 4
    for i, f in enumerate(feats, start=1):
        assert (f - expected['eval'][f'stage{i}']).abs().max() <= 1e-9
