# Cascade Mask R-CNN with the E-SpikeFormer 83M backbone (ESpikeFormerLarge '83M'), SpikeFPN and
# spiking heads on COCO 2017, 36 epochs, 8 GPUs x 2 images.
#
# NO DENSE RECIPE HAS BEEN PUBLISHED FOR THE LARGE FAMILY (83M / 173M). This config is ours:
#   * the detector and its recipe are the Base family's published cascade
#     (configs/e_spikeformer/cascade-mask-rcnn_e-spikeformer-19m_spike-fpn_8xb2-3x_coco.py: three
#     spiking 4-conv + 1-fc box heads, GIoU loss, 36 epochs with steps at 27 and 33, AdamW 2e-4
#     for a total batch of 16, weight decay 0.05, 1000-iteration warm-up);
#   * the backbone, its released weights, the layer-wise lr decay 0.75, drop path 0.1, the added
#     stride-32 level (true strides 4/8/16/32 + P6 at 64), SyncBN and with_cp are set exactly as
#     in mask-rcnn_e-spikeformer-83m_spike-fpn_8xb2-1x_coco.py, whose header says which of these
#     are published (the trunk, its weights, layer decay 0.75, drop path 0.1) and which are ours.
# Differences from the published code: docs/differences.md ("Large family").
#
# CONFIG=configs/e_spikeformer_large/cascade-mask-rcnn_e-spikeformer-83m_spike-fpn_8xb2-3x_coco.py
# bash tools/dist_train.sh $CONFIG 8
#
# Pretrained: the released 83M_1x4 ImageNet file at `pretrained`; elsewhere:
#     --cfg-options model.backbone.init_cfg.checkpoint=PATH
# From scratch:  --cfg-options model.backbone.init_cfg=None
_base_ = [
    '../_base_/models/cascade-mask-rcnn_e-spikeformer-19m_spike-fpn.py',
    '../_base_/e-spikeformer_coco-instance_ms-adamw-1x.py',
    '../_base_/sdt_runtime.py',  # custom_imports and the reliability custom_hooks
]

pretrained = 'checkpoints/e-spikeformer-83m-1x4_in1k.pth'  # the authors' "83M_1x4"
# ESpikeFormerLarge('83M', out_indices=(1, 2, 3, 4)).out_channels / .out_strides
backbone_channels = [128, 256, 512, 512]
backbone_strides = [4, 8, 16, 32]

model = dict(
    backbone=dict(
        _delete_=True,
        type='ESpikeFormerLarge',
        arch='83M',
        out_indices=(1, 2, 3, 4),  # strides 4, 8, 16, 32 (index 4 = the added stride-32 level)
        neuron_cfg=dict(D=4),
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        drop_path_rate=0.1,
        with_cp=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained),
    ),
    neck=dict(in_channels=backbone_channels),
    rpn_head=dict(anchor_generator=dict(strides=backbone_strides + [64], base_sizes=None)),
    roi_head=dict(
        bbox_roi_extractor=dict(featmap_strides=backbone_strides),
        mask_roi_extractor=dict(featmap_strides=backbone_strides),
    ),
)

# Layer-wise lr decay; its parameter groups replace the Base recipe's paramwise_cfg (no weight
# decay on any 1-D tensor). lr 2e-4 for a total batch of 16 (the Base cascade's).
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
    constructor='LargeLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.75),
)

# The 3x schedule of the Base cascade (8 GPUs x 2 images).
train_dataloader = dict(batch_size=2, num_workers=2)
max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33], gamma=0.1),
]
auto_scale_lr = dict(base_batch_size=16)
