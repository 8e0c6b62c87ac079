# Semantic FPN with the E-SpikeFormer "19M" backbone on ADE20K 512x512, published recipe, tapping
# stages (1, 2, 3, 4) instead of the published (0, 1, 2, 4): the 6-block transformer stage 3 feeds
# the pyramid and the stride-2 level is dropped, so the head runs at stride 4 (about 4x fewer head
# activations). Layer scale off (published segmentation init: 1e-6, see the published-taps config).
_base_ = './fpn_e-spikeformer-19m_8xb2-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(out_indices=(1, 2, 3, 4)),  # channels [64, 128, 256, 360], strides [4, 8, 16, 16]
    neck=dict(in_channels=[64, 128, 256, 360]),
    decode_head=dict(feature_strides=[4, 8, 16, 16]),
)
