# The published Semantic FPN network and recipe with the E-SpikeFormer "19M" backbone on ADE20K
# 512x512 (the authors' E-SDT segmentation config): backbone taps out_indices=(0, 1, 2, 4), SyncBN,
# AdamW 1e-3, 160k iterations. The configs in configs/e_spikeformer/ and configs/e_spikeformer_large/
# list it with ../_base_/sdt_runtime.py; their headers say what differs from the published code.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]

# The released ImageNet-1k "19M" weights (the authors' file as downloaded, or its conversion by
# tools/model_converters/official2sdt.py). A missing file is an error when the model is initialised.
checkpoint_file = 'checkpoints/e-spikeformer-19m_in1k.pth'

norm_cfg = dict(type='SyncBN', requires_grad=True)
neuron_cfg = dict(type='SFA', D=4)  # outputs count / D, as the published QFPN / QFPNHead (T = 4)
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='ESpikeFormer',
        arch='19M',  # "19M": embed dims [64, 128, 256, 360]
        # published taps: channels [32, 64, 128, 360], strides [2, 4, 8, 16]
        out_indices=(0, 1, 2, 4),
        neuron_cfg=neuron_cfg,
        norm_cfg=norm_cfg,
        layer_scale_init_value=None,  # published: 1e-6 (see above)
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file),
    ),
    neck=dict(
        type='SpikeSemanticFPN',
        in_channels=[32, 64, 128, 360],
        out_channels=128,
        num_outs=4,
        neuron_cfg=neuron_cfg,
        norm_cfg=norm_cfg,
    ),
    decode_head=dict(
        type='SpikeFPNHead',
        in_channels=[128, 128, 128, 128],
        in_index=[0, 1, 2, 3],
        feature_strides=[2, 4, 8, 16],
        channels=128,
        dropout_ratio=0.1,
        num_classes=150,
        neuron_cfg=neuron_cfg,
        norm_cfg=norm_cfg,
        align_corners=False,
    ),
)

# 16 images per iteration in total.
train_dataloader = dict(batch_size=2, num_workers=4)
val_dataloader = dict(batch_size=1, num_workers=4)
test_dataloader = val_dataloader
auto_scale_lr = dict(enable=False, base_batch_size=16)

# AdamW 1e-3, weight decay 0.005 on every parameter (norms and biases too, as published: unlike
# the COCO configs, no exemption), decode head at 2x lr.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.005),
    paramwise_cfg=dict(custom_keys={'decode_head': dict(lr_mult=2.0)}),
)
# 1500-iteration linear warmup, then linear (power 1) decay to 0 at 160k iterations.
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=1500, end=160000),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=160000, val_interval=8000)
# Checkpoints written atomically every 10k iterations, keeping the best mIoU. The hook type is set
# here, not in sdt_runtime.py: mmengine refuses `default_hooks` in two sibling bases, and mmseg's
# schedule_160k.py defines it.
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=10000, save_best='mIoU')
)
