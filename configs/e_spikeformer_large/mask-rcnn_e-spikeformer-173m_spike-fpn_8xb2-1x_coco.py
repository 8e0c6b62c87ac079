# Mask R-CNN with the E-SpikeFormer 173M backbone (ESpikeFormerLarge '173M', the authors' "171M"
# weights: widths [196, 384, 768], no RepConv token branch), SpikeFPN and spiking heads on COCO
# 2017, 12 epochs, 8 GPUs x 2 images.
#
# NO DENSE RECIPE HAS BEEN PUBLISHED FOR THE LARGE FAMILY. Network, recipe and the split between
# published and our own parts are those of the 83M config this one inherits
# (mask-rcnn_e-spikeformer-83m_spike-fpn_8xb2-1x_coco.py, read its header); only the backbone size
# and its checkpoint differ. Differences from the published code: docs/differences.md
# ("Large family").
#
#     bash tools/dist_train.sh \
#         configs/e_spikeformer_large/mask-rcnn_e-spikeformer-173m_spike-fpn_8xb2-1x_coco.py 8
#
# Pretrained backbone: the released 171M_1x4 ImageNet file at `pretrained`; elsewhere:
#     --cfg-options model.backbone.init_cfg.checkpoint=PATH
# From scratch:  --cfg-options model.backbone.init_cfg=None
_base_ = ['./mask-rcnn_e-spikeformer-83m_spike-fpn_8xb2-1x_coco.py']

pretrained = 'checkpoints/e-spikeformer-173m-1x4_in1k.pth'  # the authors' "171M_1x4"
# ESpikeFormerLarge('173M', out_indices=(1, 2, 3, 4)).out_channels; strides 4, 8, 16, 32
backbone_channels = [196, 384, 768, 768]

model = dict(
    backbone=dict(arch='173M', init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=backbone_channels),
)
