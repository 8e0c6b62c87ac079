# Semantic FPN with the E-SpikeFormer "10M" backbone on ADE20K 512x512: the published
# recipe and backbone taps (0, 1, 2, 4). See the 19M config for the details and the deliberate fixes
# (layer scale off: reproduce the published 1e-6 init with
# --cfg-options model.backbone.layer_scale_init_value=1e-6).
_base_ = [
    '../_base_/fpn_e-spikeformer-19m_ade20k-512x512_adamw-160k.py',
    '../_base_/sdt_runtime.py',  # custom_imports and the reliability custom_hooks
]

checkpoint_file = 'checkpoints/e-spikeformer-10m_in1k.pth'  # released ImageNet-1k "10M" weights
model = dict(
    backbone=dict(
        arch='10M',  # "10M": embed dims [48, 96, 192, 240]
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file),
    ),
    neck=dict(in_channels=[24, 48, 96, 240]),
)  # taps (0, 1, 2, 4); strides [2, 4, 8, 16]

train_cfg = dict(val_interval=2500)  # as published for the 10M model
