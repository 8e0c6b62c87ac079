"""Backbones: the published Base family (:class:`ESpikeFormer`)."""
from .e_spikeformer import ARCH_ZOO, ESpikeFormer, ESpikeFormerClassifier

__all__ = ['ARCH_ZOO', 'ESpikeFormer', 'ESpikeFormerClassifier']
