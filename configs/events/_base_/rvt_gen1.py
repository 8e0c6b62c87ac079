# RVT's preprocessed Gen1 release (304 x 240; car, pedestrian): stacked histograms of 50 ms windows
# (10 bins x 2 polarities = 20 channels, counts clipped at 10) in HDF5, labels aligned to histogram
# indices. Layout and evaluation: docs/events.md ("RVT's preprocessed release"); needs the `rvt`
# extra (h5py + hdf5plugin). Shared by configs/events/*_rvt-gen1.py.
#
# Input: the k = num_steps histograms ending at each labelled frame (k x 50 ms, oldest first) as
# T = k real timesteps of C = 20 channels (num_steps = 1: RVT's single-window input). Frames whose
# history starts before the sequence are dropped in training (RVT's random-access rule) and padded
# with empty histograms in test mode, so every labelled frame is scored. Counts enter as they are
# stored (0..10), as RVT feeds them. Inputs padded to 256 x 320 (divisor 32).
dataset_type = 'RVTGen1Dataset'
data_root = 'data/gen1_rvt/'
num_steps = 4
in_channels = 20

train_pipeline = [
    dict(type='LoadRVTHistogram'),  # img (T, 20, 240, 304) and boxes
    dict(type='EventRandomFlip', prob=0.5),
    dict(type='EventRandomZoom', prob=0.5, zoom_in=(1.0, 1.5), zoom_out=(1.0, 1.2)),
    dict(type='PackEventDetInputs'),
]
test_pipeline = [
    dict(type='LoadRVTHistogram'),
    dict(type='PackEventDetInputs'),
]
_dataset = dict(type=dataset_type, data_root=data_root, num_steps=num_steps)
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(**_dataset, split='train', filter_cfg=dict(filter_empty_gt=True), pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**_dataset, split='val', test_mode=True, pipeline=test_pipeline),
)
test_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**_dataset, split='test', test_mode=True, pipeline=test_pipeline),
)
# RVT's protocol: its labels are already filtered by its preprocessing; at evaluation it drops
# boxes at t <= 0.5 s and under 30 px diagonal / 10 px side from ground truth and detections, then
# COCO AP over the labelled frames (prophesee/mAP = AP@[.5:.95], prophesee/mAP_50).
val_evaluator = dict(type='PropheseeDetMetric', protocol='gen1')
test_evaluator = val_evaluator
