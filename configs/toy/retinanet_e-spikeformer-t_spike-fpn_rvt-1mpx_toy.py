# RetinaNet with the tiny multi-timestep E-SpikeFormer ('t'), SpikeFPN and the spiking RetinaNet
# head on toy data in RVT's preprocessed layout (1 Mpx: 640 x 360 histograms of a 1280 x 720 sensor): the
# model of configs/events/retinanet_*_rvt-1mpx.py shrunk to run on a CPU.
#
#     python tools/misc/make_rvt_toy_data.py --dataset gen4 --out data/toy_rvt_1mpx
#     export OMP_NUM_THREADS=1
#     python tools/train.py configs/toy/retinanet_e-spikeformer-t_spike-fpn_rvt-1mpx_toy.py
#     python tools/test.py configs/toy/retinanet_e-spikeformer-t_spike-fpn_rvt-1mpx_toy.py \
#         work_dirs/retinanet_e-spikeformer-t_spike-fpn_rvt-1mpx_toy/iter_200.pth
#
# Input: the last T = 2 histograms (2 x 50 ms, C = 20 channels each) before each labelled frame.
_base_ = [
    '../events/_base_/retinanet_e-spikeformer.py',
    '../events/_base_/rvt_1mpx.py',
    '../events/_base_/schedule_adamw_200k.py',
]

data_root = 'data/toy_rvt_1mpx/'
num_steps = 2
width = 64
model = dict(
    backbone=dict(arch='t', in_channels=20, T=num_steps),  # strides 8, 16, 16
    neck=dict(in_channels=[48, 96, 128], out_channels=width),  # = out_channels of arch 't'
    data_preprocessor=dict(pad_size_divisor=32),
    bbox_head=dict(
        num_classes=3,
        in_channels=width,
        feat_channels=width,
        stacked_convs=2,
        anchor_generator=dict(octave_base_scale=2),
    ),
    test_cfg=dict(nms_pre=300, max_per_img=50),
)

_dataset = dict(data_root=data_root, num_steps=num_steps)
_loader = dict(num_workers=1, persistent_workers=True)
train_dataloader = dict(batch_size=2, **_loader, dataset=_dataset)
val_dataloader = dict(batch_size=4, **_loader, dataset=_dataset)
test_dataloader = dict(batch_size=4, **_loader, dataset=_dataset)

max_iters = 200
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
optim_wrapper = dict(optimizer=dict(lr=2e-3, weight_decay=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(
        type='CosineAnnealingLR', by_epoch=False, begin=20, end=max_iters, T_max=max_iters - 20, eta_min=2e-5
    ),
]
default_hooks = dict(
    logger=dict(interval=20), checkpoint=dict(interval=max_iters, max_keep_ckpts=1, save_best=None)
)
log_processor = dict(window_size=20)
randomness = dict(seed=0)
