"""Backbones: the backbone contract (:class:`SpikeBackbone`, :class:`SpikeClassifierMixin`), the
published 5M / 10M / 19M family (:class:`ESpikeFormer`), the 83M / 173M family
(:class:`ESpikeFormerLarge`) and the event-camera backbone over T real timesteps
(:class:`MultiStepESpikeFormer`)."""

from .base import SpikeBackbone, SpikeClassifierMixin
from .e_spikeformer import ESpikeFormer, ESpikeFormerClassifier
from .e_spikeformer_large import ESpikeFormerLarge, ESpikeFormerLargeClassifier
from .multi_step import MultiStepESpikeFormer

__all__ = [
    'SpikeBackbone',
    'SpikeClassifierMixin',
    'ESpikeFormer',
    'ESpikeFormerClassifier',
    'ESpikeFormerLarge',
    'ESpikeFormerLargeClassifier',
    'MultiStepESpikeFormer',
]
