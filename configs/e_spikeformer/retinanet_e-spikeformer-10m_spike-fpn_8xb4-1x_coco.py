# RetinaNet with the 10M E-SpikeFormer, SpikeFPN and a spiking RetinaNet head (192 channels), on
# the E-SpikeFormer COCO recipe (12 epochs, 8 GPUs x 4 images). The release paired its spiking
# RetinaNet head only with the older LIF backbone, whose schedule ramped the lr up instead of down
# and whose head shared one stateful neuron between branches; none of that is reproduced here.
#
# Pyramid from backbone stages 2..4 (strides 8, 16, 16) plus two stride-2 extra convs on the last
# stage: true strides 8/16/16/32/64 (the release declared 8/16/32/64/128). Anchors keep RetinaNet's
# sizes through `base_sizes`.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    '../_base_/e-spikeformer_coco-instance_ms-adamw-1x.py',
    '../_base_/sdt_runtime.py',  # custom_imports and the reliability custom_hooks
]

pretrained = 'checkpoints/e-spikeformer-10m_in1k.pth'
width = 192
model = dict(
    backbone=dict(
        _delete_=True,
        type='ESpikeFormer',
        arch='10M',
        out_indices=(2, 3, 4),  # channels 96, 192, 240; strides 8, 16, 16
        last_stride=1,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained),
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
        in_channels=width,
        feat_channels=width,
        anchor_generator=dict(strides=[8, 16, 16, 32, 64], base_sizes=[8, 16, 32, 64, 128]),
    ),
)

# Boxes only: no masks are loaded or evaluated.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomChoiceResize', scales={{_base_.multi_scales}}, keep_ratio=True)],
            [
                dict(
                    type='RandomChoiceResize', scales=[(400, 1333), (500, 1333), (600, 1333)], keep_ratio=True
                ),
                dict(
                    type='RandomCrop',
                    crop_type='absolute_range',
                    crop_size=(384, 600),
                    allow_negative_crop=True,
                ),
                dict(type='RandomChoiceResize', scales={{_base_.multi_scales}}, keep_ratio=True),
            ],
        ],
    ),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(metric='bbox')
test_evaluator = val_evaluator
