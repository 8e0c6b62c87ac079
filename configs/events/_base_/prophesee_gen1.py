# Prophesee Gen1 automotive detection (304 x 240; car, pedestrian): data, event representation and
# the published evaluation, shared by configs/events/*_gen1.py. Layout: data_root/{train,val,test}/
# <recording>_td.dat + <recording>_bbox.npy (docs/events.md).
#
# Representation: T = 4 real timesteps over a 250 ms window before each label (SpikeYOLO's Gen1
# timing: 4 frames of 62.5 ms), each a 2-channel polarity histogram with counts clipped at 10 (RVT's
# count cutoff). Alternatives, one line each (`representation` below; in_channels = C):
#   SpikeYOLO's frames:   dict(type='EventLastPolarity', num_bins=4)                      C = 1
#   RVT's input:          dict(type='EventStackedHistogram', num_bins=10, count_cutoff=10) T=1, C=20
# (with window_us = 50_000 for RVT). Inputs are padded to 256 x 320 (divisor 32).
dataset_type = 'Gen1Dataset'
data_root = 'data/gen1/'
window_us = 250_000
num_steps = 4
in_channels = 2
representation = dict(type='EventHistogram', num_bins=num_steps, normalize='cutoff', count_cutoff=10)

train_pipeline = [
    dict(type='LoadPropheseeEvents'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='EventRandomFlip', prob=0.5),  # x -> W - 1 - x, polarity kept
    representation,
    dict(type='EventRandomZoom', prob=0.5, zoom_in=(1.0, 1.5), zoom_out=(1.0, 1.2)),
    dict(type='PackEventDetInputs'),
]
test_pipeline = [
    dict(type='LoadPropheseeEvents'),
    dict(type='LoadAnnotations', with_bbox=True),
    representation,
    dict(type='PackEventDetInputs'),
]
_dataset = dict(type=dataset_type, data_root=data_root, window_us=window_us)
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
# The papers' filter: skip the first 0.5 s, boxes under 30 px diagonal or 10 px side removed from
# ground truth and detections; protocol='gen1_toolbox_script' gives the toolbox script's 0.1 s /
# 30 / 20 instead (docs/events.md). Keys: prophesee/mAP (AP@[.5:.95]), prophesee/mAP_50.
val_evaluator = dict(type='PropheseeDetMetric', protocol='gen1')
test_evaluator = val_evaluator
