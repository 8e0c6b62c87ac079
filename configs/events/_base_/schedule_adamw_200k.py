# Optimiser, schedule and runtime of the event-camera detectors.
#
# No E-SpikeFormer (Spike-Driven Transformer V3) event-camera detection recipe has been published.
# The optimiser is this repository's E-SpikeFormer COCO recipe (AdamW lr 2e-4, weight decay 0.05,
# none on norm layers and biases, linear warmup); the models train from scratch (ImageNet weights
# expect 3 image channels in the stem, events give C = 1, 2 or 20); the length (200k iterations of
# batch 8, cosine decay) is our assumption, sized like the event-detection literature's runs of a
# few hundred thousand iterations (RVT: 400k), and should be tuned.
_base_ = [
    'mmdet::_base_/default_runtime.py',
    '../../_base_/sdt_runtime.py',  # custom_imports and the reliability custom_hooks
]

max_iters = 200_000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10_000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(max_norm=10.0, norm_type=2),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(
        type='CosineAnnealingLR',
        by_epoch=False,
        begin=1000,
        end=max_iters,
        T_max=max_iters - 1000,
        eta_min=2e-6,
    ),
]
# lr 2e-4 is for a total batch of 8; --auto-scale-lr rescales it for another one.
auto_scale_lr = dict(enable=False, base_batch_size=8)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        type='AtomicCheckpointHook',
        by_epoch=False,
        interval=10_000,
        max_keep_ckpts=3,
        save_best='prophesee/mAP',
        rule='greater',
    ),
)
log_processor = dict(by_epoch=False)
