# One-stage event detector: RetinaNet on the multi-timestep E-SpikeFormer (10M), SpikeFPN
# and the spiking RetinaNet head. RetinaNet rather than YOLOX: it is mmdet's simplest one-stage
# detector, this repository has its spiking head (SpikeRetinaHead: every conv behind an SFA neuron,
# so spike-driven inference and the energy tool cover the whole detector), and it needs no
# image-specific augmentation (YOLOX relies on Mosaic / MixUp of images and would need a new
# spiking head).
#
# The backbone takes (B, T, C, H, W) from EventDetDataPreprocessor, runs the T real timesteps
# through the trunk folded into the batch (SFA neurons are memoryless, D = 4 virtual timesteps each:
# T x D binary timesteps) and averages each level over T (fusion='mean').
#
# True strides: stages 2..4 at 8, 16, 16 (the published last_stride=1 keeps stage 4 at 16), plus two
# stride-2 extra convs: 8/16/16/32/64. Anchors: base_sizes keep distinct sizes on the two stride-16
# levels; octave_base_scale 2 (anchors 16..~320 px) because Gen1 / half-resolution 1 Mpx objects are
# 10..200 px, half of COCO's 4 (32..~640 px).
_base_ = ['mmdet::_base_/models/retinanet_r50_fpn.py']

width = 192
model = dict(
    data_preprocessor=dict(_delete_=True, type='EventDetDataPreprocessor', pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='MultiStepESpikeFormer',
        fusion='mean',
        arch='10M',
        in_channels=2,
        out_indices=(2, 3, 4),  # '10M': channels 96, 192, 240; strides 8, 16, 16
        last_stride=1,
        init_cfg=None,
    ),
    neck=dict(
        type='SpikeFPN',
        in_channels=[96, 192, 240],
        out_channels=width,
        start_level=0,
        add_extra_convs='on_input',
        num_outs=5,
    ),
    bbox_head=dict(
        type='SpikeRetinaHead',
        num_classes=2,
        in_channels=width,
        feat_channels=width,
        anchor_generator=dict(
            octave_base_scale=2, strides=[8, 16, 16, 32, 64], base_sizes=[8, 16, 32, 64, 128]
        ),
    ),
)
