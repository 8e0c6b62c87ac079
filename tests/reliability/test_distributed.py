"""tools/dist_train.sh and tools/dist_test.sh with 2 CPU processes (gloo) on the toy detector:
SyncBN synchronises over gloo, a checkpoint is saved, and 2-process evaluation gives the metrics of
1 process."""
import json
import socket

import torch

from ._helpers import REPO, make_toy_data, run_tool


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def _config(tmp_path, data):
    cfg = tmp_path / 'toy_dist.py'
    cfg.write_text(f"""
_base_ = [{str(REPO / 'configs/toy/mask-rcnn_e-spikeformer-t_fpn_toy.py')!r}]
_root = {str(data) + '/'!r}
_loader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root=_root))
train_dataloader = dict(batch_size=2, **_loader)
val_dataloader = dict(batch_size=1, **_loader)
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1, val_interval=100)
param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=2)]
sync_bn = 'torch'  # the runner converts every BN to SyncBN under distributed training
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(type='AtomicCheckpointHook', interval=1))
custom_hooks = [dict(type='NonFiniteLossHook'), dict(type='RNGStateHook'),
                dict(type='StrictLoadHook')]
randomness = dict(seed=0, deterministic=True)
""")
    return cfg


def test_dist_train_and_dist_test_on_cpu(tmp_path):
    data = make_toy_data('det', tmp_path / 'toy_coco', num_train=8, num_val=4)
    cfg = _config(tmp_path, data)
    work = tmp_path / 'work'

    train = run_tool(['dist_train.sh', cfg, '2', '--work-dir', work], PORT=_free_port())
    log = train.stdout + train.stderr
    assert train.returncode == 0, log[-4000:]
    # every rank wrapped its model; SyncBN layers were converted and synchronise over gloo
    assert 'SyncBatchNorm layers synchronise over gloo (GlooSyncBatchNorm)' in log
    assert 'Distributed training: True' in log and 'GPU number: 2' in log  # runner env info
    ckpt_path = work / 'epoch_1.pth'
    assert (work / 'last_checkpoint').read_text() == str(ckpt_path)
    ckpt = torch.load(ckpt_path)
    assert ckpt['meta']['epoch'] == 1 and ckpt['meta']['iter'] == 2  # 8 images / (2 x 2)
    assert all(torch.isfinite(v).all() for v in ckpt['state_dict'].values())

    one, two = tmp_path / 'test1', tmp_path / 'test2'
    single = run_tool(['test.py', cfg, ckpt_path, '--work-dir', one])
    assert single.returncode == 0, (single.stdout + single.stderr)[-4000:]
    dist = run_tool(['dist_test.sh', cfg, ckpt_path, '2', '--work-dir', two], PORT=_free_port())
    assert dist.returncode == 0, (dist.stdout + dist.stderr)[-4000:]
    m1 = json.loads((one / 'metrics.json').read_text())
    m2 = json.loads((two / 'metrics.json').read_text())
    assert 'coco/bbox_mAP' in m1 and 'coco/segm_mAP' in m1
    assert m1 == m2
