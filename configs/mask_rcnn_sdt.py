# The users' command line for the published detector: Mask R-CNN with the 19M E-SpikeFormer,
# SpikeFPN and spiking heads on COCO 2017 (8 GPUs x 4 images), i.e.
# configs/e_spikeformer/mask-rcnn_e-spikeformer-19m_spike-fpn_8xb4-1x_coco.py, whose header says
# what is published, what differs (docs/differences.md) and how to change the checkpoint.
#
#     bash tools/dist_train.sh configs/mask_rcnn_sdt.py 8
#     bash tools/dist_test.sh configs/mask_rcnn_sdt.py work_dirs/mask_rcnn_sdt/epoch_12.pth 8
_base_ = ['./e_spikeformer/mask-rcnn_e-spikeformer-19m_spike-fpn_8xb4-1x_coco.py']
