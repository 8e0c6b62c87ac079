# Cascade Mask R-CNN with the 19M E-SpikeFormer, SpikeFPN and spiking heads: the published cascade
# config (spec §5.3), fixed like configs/mask_rcnn_sdt.py (true feature strides 4/8/16/16/32,
# neurons equal in train/test, no decay on norm/bias). Three cascade stages, each a spiking
# 4-conv + 1-fc box head (SyncBN, GIoU loss x10 on decoded boxes); 36 epochs with lr x0.1 after
# epochs 27 and 33; 8 GPUs x 2 images (lr 2e-4 for that total batch of 16).
#
# Pretrained: the released 19M ImageNet checkpoint at `pretrained`; elsewhere:
#     --cfg-options model.backbone.init_cfg.checkpoint=PATH
# from scratch: --cfg-options model.backbone.init_cfg=None
_base_ = [
    'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py',
    '../_base_/e-spikeformer_coco-instance_ms-adamw-1x.py',
]

pretrained = 'checkpoints/e-spikeformer-19m_in1k.pth'
spike_box_head = dict(
    type='SpikeShared4Conv1FCBBoxHead',
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
model = dict(
    backbone=dict(
        _delete_=True,
        type='ESpikeFormer',
        arch='l',
        out_indices=(1, 2, 3, 4),  # strides 4, 8, 16, 16
        last_stride=1,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(type='SpikeFPN', in_channels=[64, 128, 256, 360]),  # P2..P6: 4, 8, 16, 16, 32
    rpn_head=dict(
        type='SpikeRPNHead',
        anchor_generator=dict(strides=[4, 8, 16, 16, 32], base_sizes=[4, 8, 16, 32, 64])),
    roi_head=dict(
        bbox_roi_extractor=dict(featmap_strides=[4, 8, 16, 16]),
        bbox_head=[
            dict(**spike_box_head,
                 bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                 target_stds=[0.1, 0.1, 0.2, 0.2])),
            dict(**spike_box_head,
                 bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                 target_stds=[0.05, 0.05, 0.1, 0.1])),
            dict(**spike_box_head,
                 bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                 target_stds=[0.033, 0.033, 0.067, 0.067])),
        ],
        mask_roi_extractor=dict(featmap_strides=[4, 8, 16, 16]),
        mask_head=dict(type='SpikeFCNMaskHead')))

train_dataloader = dict(batch_size=2, num_workers=2)
max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33],
         gamma=0.1),
]
auto_scale_lr = dict(base_batch_size=16)
