# Mask R-CNN 19M with mmdet's stock (non-spiking) FPN, RPN, box and mask heads on the spiking
# E-SpikeFormer backbone: a baseline that isolates the backbone. Everything else (recipe, true
# strides 4/8/16/16/32) as configs/mask_rcnn_sdt.py.
_base_ = ['./mask-rcnn_e-spikeformer-19m_spike-fpn_8xb4-1x_coco.py']

model = dict(
    neck=dict(type='FPN'),
    rpn_head=dict(type='RPNHead'),
    roi_head=dict(bbox_head=dict(type='Shared2FCBBoxHead'), mask_head=dict(type='FCNMaskHead')),
)
