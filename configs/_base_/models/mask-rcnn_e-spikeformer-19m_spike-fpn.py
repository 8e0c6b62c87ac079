# The published Mask R-CNN network with the 19M E-SpikeFormer, SpikeFPN and spiking heads, at the
# true feature strides 4/8/16/16/32 (see configs/e_spikeformer/README.md). Model only: the recipe is
# configs/_base_/e-spikeformer_coco-instance_ms-adamw-1x.py.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']

pretrained = 'checkpoints/e-spikeformer-19m_in1k.pth'  # the released 19M ImageNet checkpoint
backbone_channels = [64, 128, 256, 360]  # ESpikeFormer('19M').out_channels, out_indices (1, 2, 3, 4)

model = dict(
    backbone=dict(
        _delete_=True,
        type='ESpikeFormer',
        arch='19M',
        out_indices=(1, 2, 3, 4),  # strides 4, 8, 16, 16
        last_stride=1,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained),
    ),
    neck=dict(
        type='SpikeFPN', in_channels=backbone_channels, out_channels=256, num_outs=5
    ),  # P2..P5 + max-pooled P6: strides 4, 8, 16, 16, 32
    rpn_head=dict(
        type='SpikeRPNHead', anchor_generator=dict(strides=[4, 8, 16, 16, 32], base_sizes=[4, 8, 16, 32, 64])
    ),
    roi_head=dict(
        bbox_roi_extractor=dict(featmap_strides=[4, 8, 16, 16]),
        bbox_head=dict(type='SpikeShared2FCBBoxHead'),
        mask_roi_extractor=dict(featmap_strides=[4, 8, 16, 16]),
        mask_head=dict(type='SpikeFCNMaskHead'),
    ),
)
