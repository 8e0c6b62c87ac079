# RetinaNet with the 19M E-SpikeFormer (arch '19M') over T = 4 real timesteps (the last four 50 ms
# stacked histograms, 20 channels each), SpikeFPN and spiking heads, on RVT's preprocessed 1 Mpx
# release (histograms at 640 x 360; pedestrian, two wheeler, car).
# Model: configs/events/_base_/retinanet_e-spikeformer.py; data and RVT's evaluation:
# configs/events/_base_/rvt_1mpx.py; recipe: configs/events/_base_/schedule_adamw_200k.py.
#
#     python tools/train.py configs/events/retinanet_e-spikeformer-19m_spike-fpn_1xb8-200k_rvt-1mpx.py
#     python tools/test.py configs/events/retinanet_e-spikeformer-19m_spike-fpn_1xb8-200k_rvt-1mpx.py CKPT
_base_ = [
    './_base_/retinanet_e-spikeformer.py',
    './_base_/rvt_1mpx.py',
    './_base_/schedule_adamw_200k.py',
]

width = 256
model = dict(
    backbone=dict(arch='19M', in_channels=20, T=4),  # C, T of the input
    neck=dict(in_channels=[128, 256, 360], out_channels=width),  # = out_channels of arch '19M'
    bbox_head=dict(num_classes=3, in_channels=width, feat_channels=width),
)
