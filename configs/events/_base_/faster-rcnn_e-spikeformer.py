# Two-stage event detector, boxes only: mmdet's Faster R-CNN (the box part of Mask R-CNN) on the
# multi-timestep E-SpikeFormer (10M), SpikeFPN, the spiking RPN head and the spiking
# 2-fc box head, as configs/mask_rcnn_sdt.py without the mask branch.
#
# True strides: stages 1..4 at 4, 8, 16, 16 and a max-pooled P6 at 32; the RPN anchors and RoIAlign
# use exactly those (base_sizes keep distinct anchor sizes on the two stride-16 levels). Anchor
# scale 4 (16..256 px) instead of COCO's 8 (32..512 px): Gen1 / half-resolution 1 Mpx objects are
# 10..200 px.
_base_ = ['mmdet::_base_/models/faster-rcnn_r50_fpn.py']

width = 192
model = dict(
    data_preprocessor=dict(_delete_=True, type='EventDetDataPreprocessor', pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='MultiStepESpikeFormer',
        fusion='mean',
        arch='10M',
        in_channels=2,
        out_indices=(1, 2, 3, 4),  # '10M': channels 48, 96, 192, 240; strides 4, 8, 16, 16
        last_stride=1,
        init_cfg=None,
    ),
    neck=dict(type='SpikeFPN', in_channels=[48, 96, 192, 240], out_channels=width, num_outs=5),
    rpn_head=dict(
        type='SpikeRPNHead',
        in_channels=width,
        feat_channels=width,
        anchor_generator=dict(scales=[4], strides=[4, 8, 16, 16, 32], base_sizes=[4, 8, 16, 32, 64]),
    ),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width, featmap_strides=[4, 8, 16, 16]),
        bbox_head=dict(type='SpikeShared2FCBBoxHead', in_channels=width, fc_out_channels=768, num_classes=2),
    ),
)
