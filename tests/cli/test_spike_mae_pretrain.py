"""Spike-MAE pretraining through tools/train.py and tools/dist_train.sh, and the hand-over of its
weights to a dense Large backbone (``init_cfg=dict(type='Pretrained')``)."""
from __future__ import annotations

import pytest
import torch

from sdt_dense.checkpoint import extract_state_dict, safe_load
from sdt_dense.models import ESpikeFormerLarge
from sdt_dense.toy_data import make_cls_dataset
from sdt_testing import REPO, free_port, run_tool

CONFIG = REPO / 'configs' / 'toy' / 'spike-mae_e-spikeformer-large-toy_toy.py'
ITERS = 4


def _options(data_root) -> list:
    return ['--cfg-options', f'train_dataloader.dataset.data_root={data_root}',
            'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False', f'train_cfg.max_iters={ITERS}',
            f'default_hooks.checkpoint.interval={ITERS}', 'default_hooks.logger.interval=1']


@pytest.fixture(scope='module')
def toy_cls(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy_cls')
    make_cls_dataset(root, num_train=12, num_val=1, image_size=64)
    return root


@pytest.mark.slow
def test_pretrain_then_initialise_dense_backbone(toy_cls, tmp_path):
    work = tmp_path / 'work'
    proc = run_tool(['train.py', CONFIG, '--work-dir', work, *_options(toy_cls)], check=True)
    assert f'Iter(train) [{ITERS}/{ITERS}]' in proc.stdout + proc.stderr
    ckpt = work / f'iter_{ITERS}.pth'
    saved = extract_state_dict(safe_load(ckpt))
    assert any(k.startswith('decoder_pred.') for k in saved)

    from mmengine.config import Config
    arch = Config.fromfile(CONFIG).toy_large_arch
    backbone = ESpikeFormerLarge(arch, out_indices=(1, 2, 3, 4),
                                 init_cfg=dict(type='Pretrained', checkpoint=str(ckpt),
                                               prefix='backbone.'))
    backbone.init_weights()
    for key, value in backbone.state_dict().items():
        if f'backbone.{key}' in saved:
            assert torch.equal(value, saved[f'backbone.{key}']), key
        else:  # layer scales and the stride-32 level keep their init
            assert '.ls' in key or key.startswith('extra_stride32.'), key
    feats = backbone(torch.randn(1, 3, 64, 64))
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2]


@pytest.mark.slow
def test_dist_train_two_cpu_processes(toy_cls, tmp_path):
    work = tmp_path / 'work'
    proc = run_tool(['dist_train.sh', CONFIG, '2', '--work-dir', work, *_options(toy_cls)],
                    check=True, PORT=str(free_port()))
    log = proc.stdout + proc.stderr
    assert 'World size: 2' in log
    assert f'Iter(train) [{ITERS}/{ITERS}]' in log
    assert (work / f'iter_{ITERS}.pth').is_file()
