# Mask R-CNN with the tiny E-SpikeFormer ('t'), SpikeFPN and spiking heads on the toy COCO-format
# shapes dataset: the model of configs/mask_rcnn_sdt.py (same neck/heads, box predictors on the real
# fc output as published, true strides 4/8/16/16/32) shrunk to train from scratch on a CPU in
# minutes. Used by tools/quickstart.sh. Fully spike-driven box predictors:
#     --cfg-options model.roi_head.bbox_head.spiking_predictors=True
#
#     python tools/misc/make_toy_data.py --task det --out data/toy_coco
#     python tools/train.py configs/toy/mask-rcnn_e-spikeformer-t_spike-fpn_toy.py
#     python tools/test.py configs/toy/mask-rcnn_e-spikeformer-t_spike-fpn_toy.py \
#         work_dirs/mask-rcnn_e-spikeformer-t_spike-fpn_toy/epoch_7.pth
#
# Classes are the default --num-classes 3 of make_toy_data.py, in its order.
_base_ = [
    '../_base_/models/mask-rcnn_e-spikeformer-19m_spike-fpn.py',
    '../_base_/e-spikeformer_coco-instance_ms-adamw-1x.py',
    '../_base_/sdt_runtime.py',  # custom_imports and the reliability custom_hooks
]

data_root = 'data/toy_coco/'
classes = ('circle', 'square', 'triangle')
metainfo = dict(classes=classes, palette=[(220, 20, 60), (0, 128, 0), (0, 0, 192)])
image_size = (128, 128)  # (w, h) of the generated images
width = 64

model = dict(
    backbone=dict(arch='t', init_cfg=None),  # channels 24, 48, 96, 128 at strides 4, 8, 16, 16
    neck=dict(in_channels=[24, 48, 96, 128], out_channels=width),
    rpn_head=dict(in_channels=width, feat_channels=width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(in_channels=width, fc_out_channels=256, num_classes=len(classes)),
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(num_convs=2, in_channels=width, conv_out_channels=width, num_classes=len(classes)),
    ),
    # Fewer proposals and RoIs than on COCO (a toy image holds at most 4 objects).
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=300), rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=100)),
)

train_pipeline = [
    dict(type='SafeLoadImageFromFile', on_error='skip'),  # a corrupt image: skipped, with a warning
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),  # sets scale_factor (here 1)
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='SafeLoadImageFromFile', on_error='raise'),  # evaluation never skips an image
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        pipeline=train_pipeline,
        filter_cfg=dict(filter_empty_gt=True, min_size=8),
    ),
)
val_dataloader = dict(
    batch_size=8, num_workers=1, dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline)
)
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

# From scratch: a higher lr and a short warmup; 7 epochs of 75 iterations, lr x0.1 for the last
# one (about 11 CPU minutes on one thread, with the final validation). bbox / segm mAP over
# training seeds (and with spiking predictors, or the binary neck at test time):
# benchmarks/toy_accuracy.py, results in benchmarks/results/toy_accuracy_mask_rcnn*_cpu.json.
optim_wrapper = dict(optimizer=dict(lr=1e-3))
max_epochs = 7
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[6], gamma=0.1),
]
auto_scale_lr = dict(base_batch_size=4)
randomness = dict(seed=0)
# (the checkpoint hook type and the reliability hooks come from the bases)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
log_processor = dict(window_size=10)
