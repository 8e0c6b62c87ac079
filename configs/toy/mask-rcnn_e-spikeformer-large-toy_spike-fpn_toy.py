# Mask R-CNN with a toy-size E-SpikeFormer Large backbone (ESpikeFormerLarge, the 83M layout with
# the RepConv token branch at widths [16, 32, 64], 2 transformer blocks), SpikeFPN and spiking
# heads on the toy COCO-format shapes dataset: the network of the Large detection configs
# (configs/e_spikeformer_large/, true strides 4/8/16/32 with the added stride-32 level) shrunk to
# train from scratch on a CPU. Everything but the backbone and the strides comes from the Base toy
# detector, configs/toy/mask-rcnn_e-spikeformer-t_spike-fpn_toy.py (data, heads, schedule).
#
#     python tools/misc/make_toy_data.py --task det --out data/toy_coco
#     python tools/train.py configs/toy/mask-rcnn_e-spikeformer-large-toy_spike-fpn_toy.py
#
# Initialisation from the toy spike-MAE pretraining: train
# configs/toy/spike-mae_e-spikeformer-large-toy_toy.py (same `toy_large_arch`), then set
# `mae_checkpoint` below, or inherit this file with
#     model = dict(backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained',
#                                              checkpoint=PATH)))
# (`_delete_`: the base value is None). The encoder loads strictly; the MAE decoder is skipped;
# the layer scales and the stride-32 level keep their initial values.
_base_ = ['./mask-rcnn_e-spikeformer-t_spike-fpn_toy.py']

# The spike-MAE toy arch, so that its weights load (ESpikeFormerLarge arch dict).
toy_large_arch = dict(embed_dims=[16, 32, 64], depth=2, num_heads=4, rep_branch=True)
# Spike-MAE weights for the backbone, e.g.
#     'work_dirs/spike-mae_e-spikeformer-large-toy_toy/iter_300.pth'
# None: from scratch (PyTorch's default init).
mae_checkpoint = None
backbone_channels = [16, 32, 64, 64]  # ESpikeFormerLarge(toy_large_arch).out_channels
backbone_strides = [4, 8, 16, 32]

model = dict(
    backbone=dict(
        _delete_=True,
        type='ESpikeFormerLarge',
        arch=toy_large_arch,
        out_indices=(1, 2, 3, 4),  # strides 4, 8, 16, 32
        init_cfg=(dict(type='Pretrained', checkpoint=mae_checkpoint) if mae_checkpoint else None),
    ),
    neck=dict(in_channels=backbone_channels),
    rpn_head=dict(anchor_generator=dict(strides=backbone_strides + [64], base_sizes=None)),
    roi_head=dict(
        bbox_roi_extractor=dict(featmap_strides=backbone_strides),
        mask_roi_extractor=dict(featmap_strides=backbone_strides),
    ),
)
