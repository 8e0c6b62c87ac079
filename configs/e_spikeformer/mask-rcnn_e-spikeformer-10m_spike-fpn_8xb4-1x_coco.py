# Mask R-CNN with the 10M E-SpikeFormer, SpikeFPN and spiking heads, 192 channels
# throughout and a 768-wide box fc: the published 10M detection network and recipe, with the same
# deliberate differences as configs/mask_rcnn_sdt.py (docs/differences.md). 12 epochs, 8 GPUs x 4
# images.
#
# Pretrained: the released 10M ImageNet checkpoint at `pretrained`; elsewhere:
#     --cfg-options model.backbone.init_cfg.checkpoint=PATH
# from scratch: --cfg-options model.backbone.init_cfg=None
_base_ = ['./mask-rcnn_e-spikeformer-19m_spike-fpn_8xb4-1x_coco.py']

pretrained = 'checkpoints/e-spikeformer-10m_in1k.pth'
width = 192
model = dict(
    backbone=dict(arch='10M', init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[48, 96, 192, 240], out_channels=width),
    rpn_head=dict(in_channels=width, feat_channels=width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(in_channels=width, fc_out_channels=768),
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(in_channels=width, conv_out_channels=width),
    ),
)
