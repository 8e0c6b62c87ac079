"""The deprecated ``pretrained=`` backbone argument, as mmseg's EncoderDecoder passes it."""

import pytest
import torch
from mmengine.config import Config

from sdt_dense.checkpoint import CheckpointMismatchError, safe_load
from sdt_dense.models import ESpikeFormer
from sdt_testing import TEST_DATA

OFFICIAL = TEST_DATA / 'base' / 'e_spikeformer_t_official_format.pth'


def test_pretrained_becomes_a_strict_pretrained_init_cfg():
    model = ESpikeFormer('t', pretrained=str(OFFICIAL))
    assert model.init_cfg == dict(type='Pretrained', checkpoint=str(OFFICIAL))
    model.init_weights()
    released = safe_load(OFFICIAL)['model']
    torch.testing.assert_close(
        model.stages[3][0].attn.q.conv.weight, released['block3.0.attn.q_conv.0.weight'], rtol=0, atol=0
    )


def test_pretrained_and_init_cfg_together_raise():
    with pytest.raises(ValueError, match='init_cfg and pretrained'):
        ESpikeFormer(
            't', pretrained=str(OFFICIAL), init_cfg=dict(type='Pretrained', checkpoint=str(OFFICIAL))
        )


def _upernet_with_e_spikeformer(tmp_path) -> Config:
    """A user's config: mmseg's UPerNet-R50 base with the backbone swapped for ESpikeFormer."""
    path = tmp_path / 'user_upernet.py'
    path.write_text("_base_ = ['mmseg::_base_/models/upernet_r50.py']\n")
    cfg = Config.fromfile(str(path))
    cfg.model.backbone = dict(type='ESpikeFormer', arch='t', out_indices=(1, 2, 3, 4))
    cfg.model.decode_head.update(
        in_channels=[24, 48, 96, 128], channels=32, norm_cfg=dict(type='BN', requires_grad=True)
    )
    cfg.model.auxiliary_head.update(in_channels=96, channels=16, norm_cfg=dict(type='BN', requires_grad=True))
    return cfg


def test_mmseg_encoder_decoder_model_pretrained_loads_our_backbone(tmp_path):
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    cfg = _upernet_with_e_spikeformer(tmp_path)
    cfg.model.pretrained = str(OFFICIAL)  # EncoderDecoder hands this to the backbone
    model = MODELS.build(cfg.model)
    model.init_weights()
    released = safe_load(OFFICIAL)['model']
    torch.testing.assert_close(
        model.backbone.downsamples[0].conv.weight,
        released['downsample1_1.encode_conv.weight'],
        rtol=0,
        atol=0,
    )


def test_foreign_weights_fail_with_the_mismatch_table(tmp_path):
    from mmseg.models.backbones import ResNetV1c

    path = tmp_path / 'resnet.pth'
    torch.save({'state_dict': ResNetV1c(depth=18).state_dict()}, path)
    model = ESpikeFormer('t', pretrained=str(path))
    with pytest.raises(CheckpointMismatchError, match=r'downsamples\.0\.conv\.weight\s+missing'):
        model.init_weights()
