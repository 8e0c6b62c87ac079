# Spiking Semantic FPN with the tiny E-SpikeFormer ('t') on the toy ADE20K-layout dataset: a
# CPU-sized end-to-end check of the segmentation stack (no download, no pretrained weights).
#
#     python tools/misc/make_toy_data.py --task seg --out data/toy_ade
#     python tools/train.py configs/toy/fpn_e-spikeformer-t_toy.py
#     python tools/test.py configs/toy/fpn_e-spikeformer-t_toy.py \
#         work_dirs/fpn_e-spikeformer-t_toy/iter_400.pth
#
# Label 0 of the PNGs is background and ignored (reduce_zero_label, as ADE20K); classes 1..4 are the
# shapes below (the default --num-classes 4 of make_toy_data.py, in its order).
_base_ = [
    'mmseg::_base_/default_runtime.py',
    '../_base_/sdt_runtime.py',
]  # custom_imports and the reliability custom_hooks

data_root = 'data/toy_ade'
classes = ('circle', 'square', 'triangle', 'star')
palette = [[220, 20, 60], [0, 128, 0], [0, 0, 192], [250, 170, 30]]
crop_size = (128, 128)

norm_cfg = dict(type='BN', requires_grad=True)
neuron_cfg = dict(type='SFA', D=4)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=crop_size,
    ),
    backbone=dict(
        type='ESpikeFormer',
        arch='t',  # embed dims [24, 48, 96, 128]
        out_indices=(1, 2, 3, 4),  # channels [24, 48, 96, 128], strides [4, 8, 16, 16]
        neuron_cfg=neuron_cfg,
        norm_cfg=norm_cfg,
    ),
    neck=dict(
        type='SpikeSemanticFPN',
        in_channels=[24, 48, 96, 128],
        out_channels=64,
        num_outs=4,
        neuron_cfg=neuron_cfg,
        norm_cfg=norm_cfg,
    ),
    decode_head=dict(
        type='SpikeFPNHead',
        in_channels=[64, 64, 64, 64],
        in_index=[0, 1, 2, 3],
        feature_strides=[4, 8, 16, 16],
        channels=64,
        dropout_ratio=0.1,
        num_classes=len(classes),
        neuron_cfg=neuron_cfg,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, avg_non_ignore=True),
    ),  # mean over labelled pixels only
    train_cfg=dict(),
    test_cfg=dict(mode='whole'),
)

dataset_type = 'BaseSegDataset'
metainfo = dict(classes=classes, palette=palette)
train_pipeline = [
    dict(type='SafeLoadImageFromFile', on_error='skip'),  # a corrupt image: skipped, with a warning
    dict(type='LoadAnnotations'),  # reduce_zero_label comes from the dataset
    # a label value that is no class, or a label map of another size than its image: an error
    # naming the PNG (sdt_dense.datasets.transforms.CheckSegLabel)
    dict(type='CheckSegLabel', num_classes=len(classes)),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='SafeLoadImageFromFile', on_error='raise'),  # evaluation never skips an image
    dict(type='LoadAnnotations'),  # reduce_zero_label comes from the dataset
    # a label value that is no class, or a label map of another size than its image: an error
    # naming the PNG (sdt_dense.datasets.transforms.CheckSegLabel)
    dict(type='CheckSegLabel', num_classes=len(classes)),
    dict(type='PackSegInputs'),
]
# what the train and val splits share (labels 1..K; 0 = background, ignored via reduce_zero_label)
_toy_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    metainfo=metainfo,
    img_suffix='.jpg',
    seg_map_suffix='.png',
    reduce_zero_label=True,
)
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        **_toy_dataset,
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        **_toy_dataset,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=test_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

max_iters = 400
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, betas=(0.9, 0.999), weight_decay=0.005),
    paramwise_cfg=dict(custom_keys={'decode_head': dict(lr_mult=2.0)}),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=50, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=200)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# Checkpoints written atomically (the other default hooks: mmengine's defaults).
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=200),
)
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
