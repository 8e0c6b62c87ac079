"""Backbones: the published Base family (:class:`ESpikeFormer`) and Large family
(:class:`ESpikeFormerLarge`, 83M / 173M)."""
from .e_spikeformer import ARCH_ZOO, ESpikeFormer, ESpikeFormerClassifier
from .e_spikeformer_large import ARCH_ZOO as LARGE_ARCH_ZOO
from .e_spikeformer_large import ESpikeFormerLarge, ESpikeFormerLargeClassifier

__all__ = ['ARCH_ZOO', 'ESpikeFormer', 'ESpikeFormerClassifier', 'LARGE_ARCH_ZOO',
           'ESpikeFormerLarge', 'ESpikeFormerLargeClassifier']
from .multi_step import MultiStepESpikeFormer  # noqa: E402  (event cameras: T real timesteps)

__all__ += ['MultiStepESpikeFormer']
