"""The E-SpikeFormer classifiers as timm models.

``import sdt_dense`` registers them with timm::

    timm.list_models('e_spikeformer*')
    timm.create_model('e_spikeformer_19m', pretrained=True,
                      pretrained_cfg_overlay=dict(file='/path/to/released.pth'))
    timm.create_model('e_spikeformer_19m', features_only=True, out_indices=(1, 2, 3, 4))

Weights are read by the classifier's own ``load_pretrained`` (``custom_load``): weights-only with
the project's allow-list, strict, and converting the released layout (timm's
``checkpoint_filter_fn`` role is played by :data:`~sdt_dense.checkpoint.BASE_FORMAT`). The released
files are not downloadable from a hub, so a ``pretrained=True`` load needs ``file=`` in the overlay;
``pretrained_cfg['released_file']`` names the authors' file for each size. ``features_only`` uses
timm's getter wrapper over :meth:`ESpikeFormerClassifier.forward_intermediates` (stages 0-4,
strides 2, 4, 8, 16, 16).
"""
from __future__ import annotations

from typing import Any, Dict

from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

from .backbones.e_spikeformer import ESpikeFormerClassifier

__all__ = ['TIMM_ARCHS']

#: timm name -> (our arch, the authors' name of the released classification weights)
TIMM_ARCHS: Dict[str, tuple] = {
    'e_spikeformer_t': ('t', None),
    'e_spikeformer_5m': ('s', '5.1M'),
    'e_spikeformer_10m': ('m', '10M'),
    'e_spikeformer_19m': ('l', '19M'),
}


def _cfg(released_file, **kwargs) -> Dict[str, Any]:
    return dict(
        url='', file=None, custom_load=True, released_file=released_file,
        num_classes=1000, input_size=(3, 224, 224), pool_size=(14, 14), crop_pct=0.875,
        interpolation='bicubic', mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
        first_conv='backbone.downsamples.0.conv', classifier='head',
        license='see the authors\' release', **kwargs)


default_cfgs = generate_default_cfgs({
    f'{name}.in1k': _cfg(released) for name, (_, released) in TIMM_ARCHS.items()})


def _create(variant: str, pretrained: bool = False, **kwargs) -> ESpikeFormerClassifier:
    arch = TIMM_ARCHS[variant][0]
    kwargs.pop('in_chans', None)  # 3 channels only; the stem is built for images
    return build_model_with_cfg(ESpikeFormerClassifier, variant, pretrained, arch=arch,
                                feature_cfg=dict(feature_cls='getter'), **kwargs)


@register_model
def e_spikeformer_t(pretrained: bool = False, **kwargs) -> ESpikeFormerClassifier:
    """E-SpikeFormer, the tiny size (2.7M, [24, 48, 96, 128])."""
    return _create('e_spikeformer_t', pretrained, **kwargs)


@register_model
def e_spikeformer_5m(pretrained: bool = False, **kwargs) -> ESpikeFormerClassifier:
    """E-SpikeFormer 5.1M ([32, 64, 128, 192])."""
    return _create('e_spikeformer_5m', pretrained, **kwargs)


@register_model
def e_spikeformer_10m(pretrained: bool = False, **kwargs) -> ESpikeFormerClassifier:
    """E-SpikeFormer 10M ([48, 96, 192, 240]; 78.5 % ImageNet top-1 published)."""
    return _create('e_spikeformer_10m', pretrained, **kwargs)


@register_model
def e_spikeformer_19m(pretrained: bool = False, **kwargs) -> ESpikeFormerClassifier:
    """E-SpikeFormer 19M ([64, 128, 256, 360]; 79.8 % ImageNet top-1 published)."""
    return _create('e_spikeformer_19m', pretrained, **kwargs)
