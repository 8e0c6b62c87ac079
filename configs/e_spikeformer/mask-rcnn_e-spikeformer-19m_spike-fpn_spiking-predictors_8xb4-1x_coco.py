# Mask R-CNN 19M exactly as configs/mask_rcnn_sdt.py, but with fully spike-driven box predictors:
# an SFA neuron (its own, D=4, norm=1) in front of fc_cls and fc_reg, so that every synaptic layer
# of the neck and heads reads spike counts. The published head (and configs/mask_rcnn_sdt.py) feeds
# them the real-valued output of the last shared fc, i.e. two real-input (MAC) layers per RoI.
_base_ = ['./mask-rcnn_e-spikeformer-19m_spike-fpn_8xb4-1x_coco.py']

model = dict(roi_head=dict(bbox_head=dict(spiking_predictors=True)))
