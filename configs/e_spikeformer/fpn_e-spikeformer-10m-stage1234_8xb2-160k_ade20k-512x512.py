# Semantic FPN with the E-SpikeFormer "10M" backbone on ADE20K 512x512, published recipe, tapping
# stages (1, 2, 3, 4) instead of the published (0, 1, 2, 4) (see the 19M stage1234 config).
_base_ = './fpn_e-spikeformer-10m_8xb2-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(out_indices=(1, 2, 3, 4)),  # channels [48, 96, 192, 240], strides [4, 8, 16, 16]
    neck=dict(in_channels=[48, 96, 192, 240]),
    decode_head=dict(feature_strides=[4, 8, 16, 16]),
)
