"""The E-SpikeFormer classifiers as timm models.

``import sdt_dense`` registers them with timm::

    timm.list_models('e_spikeformer*')
    timm.create_model('e_spikeformer_19m', pretrained=True,
                      pretrained_cfg_overlay=dict(file='/path/to/released.pth'))
    timm.create_model('e_spikeformer_19m', features_only=True, out_indices=(1, 2, 3, 4))
    timm.create_model('e_spikeformer_83m.in1k_1x8', pretrained=True,
                      pretrained_cfg_overlay=dict(file='/path/to/83M_1x8.pth'))

Weights are read by the classifier's own ``load_pretrained`` (``custom_load``): weights-only with
the project's allow-list, strict, and converting the released layout (timm's
``checkpoint_filter_fn`` role is played by :data:`~sdt_dense.checkpoint.BASE_FORMAT` and
:data:`~sdt_dense.checkpoint.LARGE_FORMAT`). The released files are not downloadable from a hub,
so a ``pretrained=True`` load needs ``file=`` in the overlay (which keeps ``custom_load``; timm
would otherwise reset it for a user-given source); ``pretrained_cfg['released_file']`` names the
authors' file for each size.

``features_only`` uses timm's getter wrapper over the classifiers' ``forward_intermediates``:
Base stages 0-4 (strides 2, 4, 8, 16, 16); Large levels 0-3 (strides 2, 4, 8, 16; the dense
backbone's extra stride-32 level is not part of the classifier).

Large family (``e_spikeformer_83m``, ``e_spikeformer_173m``): the pretrained tag selects the
released variant and with it the neurons' ``D`` (``in1k_1x4``: D = 4, the default tag;
``in1k_1x8``: D = 8; ``in1k_1x8_384``: D = 8 at 384 px). The models are built with the
distillation head (``kd=True``): 83.02 M / 171.74 M parameters, the paper's "83M" (the authors
call the 768-wide weights "171M", the paper "173M"). Pass ``kd=False`` for a file without
``head_kd``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._builder import resolve_pretrained_cfg
from timm.models._pretrained import PretrainedCfg

from .backbones import ESpikeFormerClassifier, ESpikeFormerLargeClassifier

__all__ = ['TIMM_ARCHS', 'TIMM_LARGE_ARCHS', 'SDTPretrainedCfg']

#: timm name -> (our arch, the authors' name of the released classification weights)
TIMM_ARCHS: Dict[str, tuple] = {
    'e_spikeformer_t': ('t', None),
    'e_spikeformer_5m': ('5M', '5.1M'),
    'e_spikeformer_10m': ('10M', '10M'),
    'e_spikeformer_19m': ('19M', '19M'),
}

#: Large family: timm name -> (our arch, {pretrained tag: (released file name, D, input size)});
#: the first tag is the default. File names as the authors list them.
TIMM_LARGE_ARCHS: Dict[str, tuple] = {
    'e_spikeformer_83m': (
        '83M',
        {
            'in1k_1x4': ('83M_1x4', 4, 224),
            'in1k_1x8': ('83M_1x8', 8, 224),
            'in1k_1x8_384': ('83M_1x8_384', 8, 384),
        },
    ),
    'e_spikeformer_173m': (
        '173M',
        {
            'in1k_1x4': ('171M_1x4', 4, 224),
            'in1k_1x8': ('171M_1x8', 8, 224),
            'in1k_1x8_384': ('171M_1x8_384', 8, 384),
        },
    ),
}


@dataclass
class SDTPretrainedCfg(PretrainedCfg):
    """timm's pretrained config plus what the released E-SpikeFormer weights need: the authors'
    file name and the neurons' ``D`` (timm's own class takes no extra keys)."""

    released_file: Optional[str] = None
    D: Optional[int] = None


def _cfg(released_file, **kwargs) -> SDTPretrainedCfg:
    base = dict(
        url='',
        file=None,
        custom_load=True,
        released_file=released_file,
        num_classes=1000,
        input_size=(3, 224, 224),
        pool_size=(14, 14),
        crop_pct=0.875,
        interpolation='bicubic',
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        first_conv='backbone.downsamples.0.conv',
        classifier='head',
        license="see the authors' release",
    )
    return SDTPretrainedCfg(**{**base, **kwargs})


def _large_cfg(released_file: str, D: int, size: int) -> SDTPretrainedCfg:
    # Evaluation as published: shorter side 232 then centre crop 224 (crop_pct 224 / 232);
    # above 224 resize to the input size and crop all of it.
    return _cfg(
        released_file,
        D=D,
        input_size=(3, size, size),
        pool_size=(size // 16,) * 2,
        crop_pct=224 / 232 if size == 224 else 1.0,
    )


default_cfgs = generate_default_cfgs(
    {
        **{f'{name}.in1k': _cfg(released) for name, (_, released) in TIMM_ARCHS.items()},
        **{
            f'{name}.{tag}': _large_cfg(*variant)
            for name, (_, tags) in TIMM_LARGE_ARCHS.items()
            for tag, variant in tags.items()
        },
    }
)


def _keep_custom_load(kwargs: dict) -> None:
    """timm resets ``custom_load`` when the overlay names a ``file``/``url``; our loader is what
    reads the released layouts, so keep it unless the caller says otherwise."""
    overlay = dict(kwargs.get('pretrained_cfg_overlay') or {})
    if overlay.get('file') or overlay.get('url'):
        overlay.setdefault('custom_load', True)
        kwargs['pretrained_cfg_overlay'] = overlay


def _check_in_chans(kwargs: dict) -> None:
    in_chans = kwargs.pop('in_chans', 3)
    if in_chans != 3:  # the stem is built for images; the released weights have 3 channels
        raise ValueError(f'E-SpikeFormer timm models take 3 input channels, got {in_chans}')


def _create(variant: str, pretrained: bool = False, **kwargs) -> ESpikeFormerClassifier:
    arch = TIMM_ARCHS[variant][0]
    _check_in_chans(kwargs)
    _keep_custom_load(kwargs)
    return build_model_with_cfg(
        ESpikeFormerClassifier,
        variant,
        pretrained,
        arch=arch,
        feature_cfg=dict(feature_cls='getter'),
        kwargs_filter=('in_chans',),
        **kwargs,
    )


def _create_large(variant: str, pretrained: bool = False, **kwargs) -> ESpikeFormerLargeClassifier:
    """A Large classifier whose neurons' ``D`` follows the pretrained tag (``neuron_cfg`` given
    explicitly takes precedence)."""
    arch = TIMM_LARGE_ARCHS[variant][0]
    _check_in_chans(kwargs)
    _keep_custom_load(kwargs)
    cfg = resolve_pretrained_cfg(
        variant,
        pretrained_cfg=kwargs.get('pretrained_cfg'),
        pretrained_cfg_overlay=kwargs.get('pretrained_cfg_overlay'),
    )
    D: Optional[int] = getattr(cfg, 'D', None)  # None for a plain user-given PretrainedCfg
    neuron_cfg = dict(kwargs.pop('neuron_cfg', None) or {})
    if D is not None:
        neuron_cfg.setdefault('D', D)
    kwargs.setdefault('kd', True)
    return build_model_with_cfg(
        ESpikeFormerLargeClassifier,
        variant,
        pretrained,
        arch=arch,
        neuron_cfg=neuron_cfg,
        feature_cfg=dict(feature_cls='getter', out_indices=(0, 1, 2, 3)),
        kwargs_filter=('in_chans',),
        **kwargs,
    )


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


@register_model
def e_spikeformer_83m(pretrained: bool = False, **kwargs) -> ESpikeFormerLargeClassifier:
    """E-SpikeFormer Large 83M ([128, 256, 512], 12 blocks, RepConv token branch; 84.0 %
    ImageNet top-1 published). Tags ``in1k_1x4`` (D = 4), ``in1k_1x8``, ``in1k_1x8_384``."""
    return _create_large('e_spikeformer_83m', pretrained, **kwargs)


@register_model
def e_spikeformer_173m(pretrained: bool = False, **kwargs) -> ESpikeFormerLargeClassifier:
    """E-SpikeFormer Large 173M (the authors' "171M" weights; [196, 384, 768], 12 blocks; 86.2 %
    ImageNet top-1 published). Tags ``in1k_1x4`` (D = 4), ``in1k_1x8``, ``in1k_1x8_384``."""
    return _create_large('e_spikeformer_173m', pretrained, **kwargs)
