# RetinaNet with the tiny multi-timestep E-SpikeFormer ('t'), SpikeFPN and the spiking RetinaNet
# head on the toy event-camera dataset (Prophesee Gen1 file layout, 304 x 240 sensor; car,
# pedestrian): the model of configs/events/retinanet_*_gen1.py shrunk to train from scratch on a
# CPU in minutes.
#
#     python tools/misc/make_toy_data.py --task events --out data/toy_events
#     export OMP_NUM_THREADS=1   # one torch thread: far faster than two on a shared 2-core CPU
#     python tools/train.py configs/toy/retinanet_e-spikeformer-t_spike-fpn_events_toy.py
#     python tools/test.py configs/toy/retinanet_e-spikeformer-t_spike-fpn_events_toy.py \
#         work_dirs/retinanet_e-spikeformer-t_spike-fpn_events_toy/iter_400.pth
#
# Input: 50 ms before each label as T = 2 polarity histograms (2 x 25 ms, C = 2), events
# downsampled by 4 (76 x 60, padded to 80 x 64); predictions are scored in sensor pixels with the
# Gen1 protocol (skip 0.5 s, 30 px diagonal / 10 px side). Test-split mAP over training seeds and
# the chance level (random boxes of training sizes): benchmarks/toy_accuracy.py, results in
# benchmarks/results/toy_accuracy_event_retinanet_cpu.json (quoted in docs/events.md).
_base_ = [
    '../events/_base_/retinanet_e-spikeformer.py',
    '../events/_base_/prophesee_gen1.py',
    '../events/_base_/schedule_adamw_200k.py',
]

data_root = 'data/toy_events/'
window_us = 50_000
num_steps = 2
width = 64
model = dict(
    backbone=dict(arch='t', in_channels=2, T=num_steps),  # strides 8, 16, 16
    neck=dict(in_channels=[48, 96, 128], out_channels=width),  # = out_channels of arch 't'
    data_preprocessor=dict(pad_size_divisor=16),
    # anchors 8..~160 px on the 4x downsampled frame (toy pedestrians are ~5 x 13 px there)
    bbox_head=dict(
        num_classes=2,
        in_channels=width,
        feat_channels=width,
        stacked_convs=2,
        anchor_generator=dict(octave_base_scale=1),
    ),
    test_cfg=dict(nms_pre=300, max_per_img=50),
)

representation = dict(type='EventHistogram', num_bins=num_steps, normalize='cutoff', count_cutoff=10)
train_pipeline = [
    dict(type='LoadPropheseeEvents'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='EventDownsample', factor=4),
    dict(type='EventRandomFlip', prob=0.5),
    representation,
    dict(type='PackEventDetInputs'),
]
test_pipeline = [
    dict(type='LoadPropheseeEvents'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='EventDownsample', factor=4),
    representation,
    dict(type='PackEventDetInputs'),
]
_loader = dict(num_workers=1, persistent_workers=True)
train_dataloader = dict(
    batch_size=4, **_loader, dataset=dict(data_root=data_root, window_us=window_us, pipeline=train_pipeline)
)
val_dataloader = dict(
    batch_size=8, **_loader, dataset=dict(data_root=data_root, window_us=window_us, pipeline=test_pipeline)
)
test_dataloader = dict(
    batch_size=8, **_loader, dataset=dict(data_root=data_root, window_us=window_us, pipeline=test_pipeline)
)

# From scratch: a higher lr, a short warmup and a cosine decay over 400 iterations of batch 4
# (about 3.3 epochs of the 480 labelled timestamps).
max_iters = 400
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=2e-3, weight_decay=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(
        type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters, T_max=max_iters - 50, eta_min=2e-5
    ),
]
default_hooks = dict(
    logger=dict(interval=20), checkpoint=dict(interval=max_iters, max_keep_ckpts=1, save_best=None)
)
log_processor = dict(window_size=20)
randomness = dict(seed=0)
