# Mask R-CNN 19M, like configs/mask_rcnn_sdt.py but with a true stride-32 stage 4
# (ESpikeFormer last_stride=2): the pyramid P2..P6 is at strides 4/8/16/32/64, so mmdet's stock
# anchor strides and RoIAlign featmap_strides apply. The released checkpoint loads unchanged (only
# the stride of the stage-4 downsampling conv differs), but stage 4 then sees 4x fewer positions
# than in pretraining. Cheaper than the published stride-16 layout.
_base_ = ['./mask-rcnn_e-spikeformer-19m_spike-fpn_8xb4-1x_coco.py']

model = dict(
    backbone=dict(last_stride=2),
    rpn_head=dict(anchor_generator=dict(strides=[4, 8, 16, 32, 64], base_sizes=None)),
    roi_head=dict(
        bbox_roi_extractor=dict(featmap_strides=[4, 8, 16, 32]),
        mask_roi_extractor=dict(featmap_strides=[4, 8, 16, 32]),
    ),
)
