# The published Cascade Mask R-CNN network with the 19M E-SpikeFormer, SpikeFPN and spiking heads:
# the Mask R-CNN network of mask-rcnn_e-spikeformer-19m_spike-fpn.py (same backbone, neck, true
# feature strides 4/8/16/16/32, RPN anchors, RoI extractors and mask head) as mmdet's Cascade
# R-CNN: three stages with IoU thresholds 0.5/0.6/0.7 and loss weights 1/0.5/0.25, 2000 training
# proposals, RPN SmoothL1 loss and allowed_border 0, each stage a spiking 4-conv + 1-fc box head
# (SyncBN, GIoU loss x10 on decoded boxes). Model only: the recipe is
# configs/_base_/e-spikeformer_coco-instance_ms-adamw-1x.py plus the 3x schedule of the config.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']

pretrained = 'checkpoints/e-spikeformer-19m_in1k.pth'  # the released 19M ImageNet checkpoint
backbone_channels = [64, 128, 256, 360]  # ESpikeFormer('19M').out_channels, out_indices (1, 2, 3, 4)

spike_box_head = dict(
    type='SpikeShared4Conv1FCBBoxHead',  # predictors on the real-valued fc output, as published
    in_channels=256,
    conv_out_channels=256,
    fc_out_channels=1024,
    roi_feat_size=7,
    num_classes=80,
    reg_class_agnostic=True,
    reg_decoded_bbox=True,
    norm_cfg=dict(type='SyncBN', requires_grad=True),
    loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
    loss_bbox=dict(type='GIoULoss', loss_weight=10.0),
)
rcnn_stage = dict(
    assigner=dict(
        type='MaxIoUAssigner',
        pos_iou_thr=0.5,
        neg_iou_thr=0.5,
        min_pos_iou=0.5,
        match_low_quality=False,
        ignore_iof_thr=-1,
    ),
    sampler=dict(type='RandomSampler', num=512, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True),
    mask_size=28,
    pos_weight=-1,
    debug=False,
)
model = dict(
    type='CascadeRCNN',
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
        type='SpikeRPNHead',
        anchor_generator=dict(strides=[4, 8, 16, 16, 32], base_sizes=[4, 8, 16, 32, 64]),
        loss_bbox=dict(type='SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0),
    ),
    roi_head=dict(
        type='CascadeRoIHead',
        num_stages=3,
        stage_loss_weights=[1, 0.5, 0.25],
        bbox_roi_extractor=dict(featmap_strides=[4, 8, 16, 16]),
        mask_roi_extractor=dict(featmap_strides=[4, 8, 16, 16]),
        mask_head=dict(type='SpikeFCNMaskHead'),
        bbox_head=[  # a list replaces the base's single box head
            dict(
                **spike_box_head,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0.0, 0.0, 0.0, 0.0],
                    target_stds=[0.1, 0.1, 0.2, 0.2],
                ),
            ),
            dict(
                **spike_box_head,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0.0, 0.0, 0.0, 0.0],
                    target_stds=[0.05, 0.05, 0.1, 0.1],
                ),
            ),
            dict(
                **spike_box_head,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0.0, 0.0, 0.0, 0.0],
                    target_stds=[0.033, 0.033, 0.067, 0.067],
                ),
            ),
        ],
    ),
    train_cfg=dict(
        rpn=dict(allowed_border=0),
        rpn_proposal=dict(max_per_img=2000),
        rcnn=[
            rcnn_stage,
            dict(
                rcnn_stage,
                assigner=dict(rcnn_stage['assigner'], pos_iou_thr=0.6, neg_iou_thr=0.6, min_pos_iou=0.6),
            ),
            dict(
                rcnn_stage,
                assigner=dict(rcnn_stage['assigner'], pos_iou_thr=0.7, neg_iou_thr=0.7, min_pos_iou=0.7),
            ),
        ],
    ),
)
