# Cascade Mask R-CNN with the E-SpikeFormer 173M backbone (ESpikeFormerLarge '173M', the authors'
# "171M" weights), SpikeFPN and spiking heads on COCO 2017, 36 epochs, 8 GPUs x 2 images.
#
# NO DENSE RECIPE HAS BEEN PUBLISHED FOR THE LARGE FAMILY. Network, recipe and the split between
# published and our own parts are those of the 83M cascade config this one inherits
# (cascade-mask-rcnn_e-spikeformer-83m_spike-fpn_8xb2-3x_coco.py); only the backbone size and its
# checkpoint differ. Differences from the published code: docs/differences.md ("Large family").
#
# CONFIG=configs/e_spikeformer_large/cascade-mask-rcnn_e-spikeformer-173m_spike-fpn_8xb2-3x_coco.py
# bash tools/dist_train.sh $CONFIG 8
#
# Pretrained: the released 171M_1x4 ImageNet file at `pretrained`; elsewhere:
#     --cfg-options model.backbone.init_cfg.checkpoint=PATH
_base_ = ['./cascade-mask-rcnn_e-spikeformer-83m_spike-fpn_8xb2-3x_coco.py']

pretrained = 'checkpoints/e-spikeformer-173m-1x4_in1k.pth'  # the authors' "171M_1x4"
backbone_channels = [196, 384, 768, 768]  # ESpikeFormerLarge('173M', out_indices=(1, 2, 3, 4))

model = dict(
    backbone=dict(arch='173M', init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=backbone_channels),
)
