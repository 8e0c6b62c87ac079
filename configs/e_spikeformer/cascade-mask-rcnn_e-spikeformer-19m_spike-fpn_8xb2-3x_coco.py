# Cascade Mask R-CNN with the 19M E-SpikeFormer, SpikeFPN and spiking heads: the published cascade
# network and recipe, built on configs/mask_rcnn_sdt.py (same backbone, neck, true feature strides
# 4/8/16/16/32, RPN anchors, mask head, and the same deliberate differences, docs/differences.md).
# What the cascade changes: mmdet's Cascade R-CNN (three stages with IoU thresholds 0.5/0.6/0.7 and
# loss weights 1/0.5/0.25, 2000 training proposals, RPN SmoothL1 loss and allowed_border 0), each
# stage a spiking 4-conv + 1-fc box head (SyncBN, GIoU loss x10 on decoded boxes); 36 epochs with
# lr x0.1 after epochs 27 and 33; 8 GPUs x 2 images (lr 2e-4 for that total batch of 16).
#
# Pretrained: the released 19M ImageNet checkpoint at `pretrained` of configs/mask_rcnn_sdt.py;
# elsewhere: --cfg-options model.backbone.init_cfg.checkpoint=PATH
# from scratch: --cfg-options model.backbone.init_cfg=None
_base_ = ['../mask_rcnn_sdt.py']

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
    loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
rcnn_stage = dict(
    assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                  match_low_quality=False, ignore_iof_thr=-1),
    sampler=dict(type='RandomSampler', num=512, pos_fraction=0.25, neg_pos_ub=-1,
                 add_gt_as_proposals=True),
    mask_size=28,
    pos_weight=-1,
    debug=False)
model = dict(
    type='CascadeRCNN',
    rpn_head=dict(loss_bbox=dict(type='SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0)),
    roi_head=dict(  # extractors and the mask head come from configs/mask_rcnn_sdt.py
        type='CascadeRoIHead',
        num_stages=3,
        stage_loss_weights=[1, 0.5, 0.25],
        bbox_head=[  # a list replaces the base's single box head
            dict(**spike_box_head,
                 bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                 target_stds=[0.1, 0.1, 0.2, 0.2])),
            dict(**spike_box_head,
                 bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                 target_stds=[0.05, 0.05, 0.1, 0.1])),
            dict(**spike_box_head,
                 bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                 target_stds=[0.033, 0.033, 0.067, 0.067])),
        ]),
    train_cfg=dict(
        rpn=dict(allowed_border=0),
        rpn_proposal=dict(max_per_img=2000),
        rcnn=[
            rcnn_stage,
            dict(rcnn_stage, assigner=dict(rcnn_stage['assigner'], pos_iou_thr=0.6,
                                           neg_iou_thr=0.6, min_pos_iou=0.6)),
            dict(rcnn_stage, assigner=dict(rcnn_stage['assigner'], pos_iou_thr=0.7,
                                           neg_iou_thr=0.7, min_pos_iou=0.7)),
        ]))

train_dataloader = dict(batch_size=2, num_workers=2)
max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33],
         gamma=0.1),
]
auto_scale_lr = dict(base_batch_size=16)
