# Faster R-CNN (boxes only) with the 19M E-SpikeFormer over T = 4 real
# timesteps, SpikeFPN and spiking heads, on Prophesee 1 Mpx (1280 x 720, at half
# resolution; pedestrian, two wheeler, car).
# Model: configs/events/_base_/faster-rcnn_e-spikeformer.py; data, representation and the published
# evaluation: configs/events/_base_/prophesee_1mpx.py; recipe (and its sources):
# configs/events/_base_/schedule_adamw_200k.py (batch 8; --auto-scale-lr rescales lr).
#
#     python tools/train.py configs/events/faster-rcnn_e-spikeformer-19m_spike-fpn_1xb8-200k_1mpx.py
#     python tools/test.py configs/events/faster-rcnn_e-spikeformer-19m_spike-fpn_1xb8-200k_1mpx.py CKPT
_base_ = [
    './_base_/faster-rcnn_e-spikeformer.py',
    './_base_/prophesee_1mpx.py',
    './_base_/schedule_adamw_200k.py',
]

width = 256
model = dict(
    backbone=dict(arch='19M', in_channels=2, T=4),  # C, T of the representation
    neck=dict(in_channels=[64, 128, 256, 360], out_channels=width),  # = out_channels of arch '19M'
    rpn_head=dict(in_channels=width, feat_channels=width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width), bbox_head=dict(in_channels=width, num_classes=3)
    ),
)
