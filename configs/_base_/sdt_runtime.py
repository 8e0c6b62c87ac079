# What every sdt-dense config shares, whatever the toolbox: the plugin import and the reliability
# hooks of sdt_dense/engine. List it next to the toolbox's runtime/schedule bases:
#
#     _base_ = ['mmdet::_base_/default_runtime.py', ..., '../_base_/sdt_runtime.py']
#
# custom_hooks is a list, so a config that sets its own replaces this one entirely (mmengine merges
# dicts key by key but never lists): add a hook by repeating these four.
#
# The checkpoint hook is NOT set here. mmengine refuses a key defined by two sibling bases, and
# `default_hooks` already comes from the toolbox (mmdet's default_runtime.py, mmseg's schedules),
# so the config that inherits those sets `default_hooks = dict(checkpoint=dict(
# type='AtomicCheckpointHook'))` (a dict: merged into the toolbox's hooks). Those configs are
# configs/_base_/e-spikeformer_coco-instance_ms-adamw-1x.py (every COCO config), the 19M ADE20K
# config (every ADE20K config) and configs/toy/fpn_e-spikeformer-t_toy.py; a test checks that every
# config ends up with it.
custom_imports = dict(imports=['sdt_dense'], allow_failed_imports=False)

# Stop on a NaN/Inf loss naming the iteration; RNG state saved in the checkpoint for exact resume;
# strict load_from/resume; an empty dataset raises an error naming it; a head whose num_classes
# differs from the dataset's classes stops the run before the first iteration, naming both.
custom_hooks = [
    dict(type='NonFiniteLossHook'),
    dict(type='RNGStateHook'),
    dict(type='StrictLoadHook'),
    dict(type='NonEmptyDatasetHook'),
    dict(type='NumClassesCheckHook'),
]
# Per-stage firing rates as scalars (local/TensorBoard/W&B, as `visualizer` says) every 50
# iterations, with a warning once per stage on a collapse to zero firing or saturation at D
# (docs/energy.md, "Firing rates during training"). To use it, repeat the list above in a config
# and add: dict(type='FiringRateHook', interval=50, low_rate=0.01, high_rate=0.99)
