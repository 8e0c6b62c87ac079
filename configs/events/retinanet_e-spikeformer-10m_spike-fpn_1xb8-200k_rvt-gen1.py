# RetinaNet with the 10M E-SpikeFormer (arch '10M') over T = 4 real timesteps (the last four 50 ms
# stacked histograms, 20 channels each), SpikeFPN and spiking heads, on RVT's preprocessed Gen1
# release (304 x 240; car, pedestrian).
# Model: configs/events/_base_/retinanet_e-spikeformer.py; data and RVT's evaluation:
# configs/events/_base_/rvt_gen1.py; recipe: configs/events/_base_/schedule_adamw_200k.py.
#
#     python tools/train.py configs/events/retinanet_e-spikeformer-10m_spike-fpn_1xb8-200k_rvt-gen1.py
#     python tools/test.py configs/events/retinanet_e-spikeformer-10m_spike-fpn_1xb8-200k_rvt-gen1.py CKPT
_base_ = [
    './_base_/retinanet_e-spikeformer.py',
    './_base_/rvt_gen1.py',
    './_base_/schedule_adamw_200k.py',
]

width = 192
model = dict(
    backbone=dict(arch='10M', in_channels=20, T=4),  # C, T of the input
    neck=dict(in_channels=[96, 192, 240], out_channels=width),  # = out_channels of arch '10M'
    bbox_head=dict(num_classes=2, in_channels=width, feat_channels=width),
)
