"""Detection and segmentation heads of sdt-dense."""

from .spike_bbox_head import SpikeConvFCBBoxHead, SpikeShared2FCBBoxHead, SpikeShared4Conv1FCBBoxHead
from .spike_fpn_head import SpikeFPNHead
from .spike_mask_head import SpikeFCNMaskHead
from .spike_retina_head import SpikeRetinaHead
from .spike_rpn_head import SpikeRPNHead

__all__ = [
    'SpikeConvFCBBoxHead',
    'SpikeShared2FCBBoxHead',
    'SpikeShared4Conv1FCBBoxHead',
    'SpikeFCNMaskHead',
    'SpikeRetinaHead',
    'SpikeRPNHead',
    'SpikeFPNHead',
]
