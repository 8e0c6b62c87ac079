# Mask R-CNN with the 19M E-SpikeFormer, a spiking FPN and spiking heads on COCO 2017:
# the published network and recipe (the authors' 19M Mask R-CNN config), with the deliberate
# differences listed in docs/differences.md, each with the option that restores the published
# behaviour.
#
#     CONFIG=configs/e_spikeformer/mask-rcnn_e-spikeformer-19m_spike-fpn_8xb4-1x_coco.py
#     bash tools/dist_train.sh $CONFIG 8     # 8 GPUs x 4 images = batch 32
# (configs/mask_rcnn_sdt.py is this config under a short name.)
#
# Pretrained backbone: the released 19M ImageNet checkpoint, expected at `pretrained` of the model
# base (configs/_base_/models/mask-rcnn_e-spikeformer-19m_spike-fpn.py; the released file layout
# loads as is, strictly). Elsewhere:
#     --cfg-options model.backbone.init_cfg.checkpoint=/path/to/19M.pth
# From scratch (no checkpoint):
#     --cfg-options model.backbone.init_cfg=None
# A missing file stops training at weight initialisation with "checkpoint not found: <path>".
#
# Feature strides. The published backbone keeps stage 4 at stride 16 (its last downsampling conv has
# stride 1), so the pyramid P2..P6 is really at strides 4/8/16/16/32. The release declared
# 4/8/16/32/64 (anchors placed at twice their true spacing on P5/P6, and RoIAlign on P5 with scale
# 1/32 of a stride-16 map). Here anchors and RoIAlign use the TRUE strides, and `base_sizes` keep
# the published anchor sizes (32..512 px). The alternative, a true stride-32 stage 4
# (`last_stride=2`) with mmdet's stock strides, is
#     configs/e_spikeformer/mask-rcnn_e-spikeformer-19m-s32_spike-fpn_8xb4-1x_coco.py
#
# Neck/head neurons: every SpikeFPN / Spike*Head defaults to
# neuron_cfg=dict(type='SFA', D=4, norm=1): raw spike counts 0..4 as in the published neck and
# heads during training, and the same in testing. The published neck turned binary at test time;
# reproduce that with
#     --cfg-options model.neck.neuron_cfg.eval_ceiling=1
# Box predictors: fc_cls / fc_reg read the real-valued output of the last shared fc, as published
# (SpikeShared2FCBBoxHead's default spiking_predictors=False). Fully spike-driven predictors:
#     configs/e_spikeformer/mask-rcnn_e-spikeformer-19m_spike-fpn_spiking-predictors_8xb4-1x_coco.py
#
# Recipe (configs/_base_/e-spikeformer_coco-instance_ms-adamw-1x.py): DETR-style multi-scale
# training, test at 1333x800, AdamW 2e-4 / weight decay 0.05 (none on norm layers and biases),
# 1000-iteration warmup, 12 epochs with steps at 8 and 11, 4 images per GPU; lr is for a total batch
# of 32 (--auto-scale-lr rescales it for another one).
_base_ = [
    '../_base_/models/mask-rcnn_e-spikeformer-19m_spike-fpn.py',
    '../_base_/e-spikeformer_coco-instance_ms-adamw-1x.py',
    '../_base_/sdt_runtime.py',  # custom_imports and the reliability custom_hooks
]
