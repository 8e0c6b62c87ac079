# RVT's preprocessed 1 Mpx release (1280 x 720 sensor; pedestrian, two wheeler, car): stacked
# histograms of 50 ms windows computed at full resolution and downsampled by 2 (nearest-exact:
# every second pixel), 20 x 360 x 640, in HDF5, labels aligned to histogram indices. Layout and
# evaluation: docs/events.md ("RVT's preprocessed release"); needs the `rvt` extra (h5py +
# hdf5plugin). Shared by configs/events/*_rvt-1mpx.py.
#
# Input as configs/events/_base_/rvt_gen1.py (T = num_steps histograms of C = 20). Boxes are halved
# for training; predictions are mapped back to sensor pixels (scale_factor 0.5) and scored there
# with the published thresholds, which equals RVT's scoring at half resolution with halved
# thresholds (docs/events.md). Inputs padded to 384 x 640 (divisor 32).
dataset_type = 'RVTOneMpxDataset'
data_root = 'data/gen4_rvt/'
num_steps = 4
in_channels = 20

train_pipeline = [
    dict(type='LoadRVTHistogram'),  # img (T, 20, 360, 640) and halved boxes
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
# RVT's protocol: skip t <= 0.5 s, boxes under 60 px diagonal / 20 px side (sensor pixels; RVT: 30
# / 10 at half resolution) removed from ground truth and detections; prophesee/mAP, prophesee/mAP_50.
val_evaluator = dict(type='PropheseeDetMetric', protocol='1mpx')
test_evaluator = val_evaluator
