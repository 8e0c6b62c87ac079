"""A failed write (full disk, file size limit) loses nothing: the error names the file, the previous
checkpoint and ``last_checkpoint`` still load and ``--resume`` continues from them; metrics, ``--out``
results and the energy report are complete or absent, never half-written."""

import errno
import json
import os
import pickle

import pytest
import torch
from mmengine.runner import Runner

from sdt_dense.analysis import EnergyReport, write_report
from sdt_dense.cli.launcher import write_metrics
from sdt_dense.cli.test import atomic_dump_det_results
from sdt_dense.engine.atomic_io import atomic_write
from sdt_testing import REPO, make_toy_data, run_tool
from sdt_testing.faults import FAULTS_MODULE, fail_writes
from sdt_testing.toy_runner import HELPERS_MODULE, read_losses, toy_runner_cfg


def _names(directory):
    return sorted(os.listdir(directory))


def test_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / 'iter_2.pth'
    atomic_write(b'good checkpoint', target)
    fail_writes(monkeypatch, 'iter_2.pth', nbytes=5)
    with pytest.raises(OSError) as err:
        atomic_write(b'a longer, newer checkpoint', target)
    assert err.value.errno == errno.ENOSPC
    assert str(err.value) == (
        f'[Errno 28] No space left on device: could not write {target} (its previous content is unchanged)'
    )
    assert target.read_bytes() == b'good checkpoint'
    assert _names(tmp_path) == ['iter_2.pth']  # the partial temporary file is gone

    fail_writes(monkeypatch, 'new.json', nbytes=0)
    with pytest.raises(OSError, match=r'could not write .*new\.json \(it was not created\)'):
        atomic_write(b'{}', tmp_path / 'new.json')
    atomic_write(b'{}', tmp_path / 'other.json')  # other files are written as usual
    assert (tmp_path / 'other.json').read_bytes() == b'{}'
    assert _names(tmp_path) == ['iter_2.pth', 'other.json']


def _train(cfg):
    Runner.from_cfg(cfg).train()


@pytest.mark.slow
def test_full_disk_during_a_checkpoint_then_resume(tmp_path, monkeypatch):
    """max_keep_ckpts=1: mmengine deletes the old checkpoint before writing the new one; here the
    old one survives the failed write, the pointer still names it and --resume reproduces the
    losses of an uninterrupted run."""
    kw = dict(max_iters=6, interval=2, hooks=[dict(type='RNGStateHook')])
    full, cut = tmp_path / 'full', tmp_path / 'cut'
    cfg = toy_runner_cfg(str(full), **kw)
    cfg['default_hooks']['checkpoint']['max_keep_ckpts'] = 1
    _train(cfg)

    fail_writes(monkeypatch, 'iter_4.pth', nbytes=100)
    cfg = toy_runner_cfg(str(cut), **kw)
    cfg['default_hooks']['checkpoint']['max_keep_ckpts'] = 1
    with pytest.raises(OSError, match=rf'No space left on device: could not write {cut}/iter_4.pth'):
        _train(cfg)
    monkeypatch.undo()
    assert (cut / 'last_checkpoint').read_text() == str(cut / 'iter_2.pth')
    assert torch.load(cut / 'iter_2.pth')['meta']['iter'] == 2
    assert [n for n in _names(cut) if not n.startswith('20')] == [
        'iter_2.pth',
        'last_checkpoint',
        'losses.jsonl',
    ]  # no partial file, no staging directory

    cfg = toy_runner_cfg(str(cut), resume=True, **kw)
    cfg['default_hooks']['checkpoint']['max_keep_ckpts'] = 1
    _train(cfg)
    a, b = read_losses(full), read_losses(cut)
    assert sorted(a) == sorted(b) == list(range(1, 7))
    assert a == b
    assert (cut / 'last_checkpoint').read_text() == str(cut / 'iter_6.pth')
    assert not (cut / 'iter_2.pth').exists()  # max_keep_ckpts still applies once writes work


def test_metrics_json_is_complete_or_unchanged(tmp_path, monkeypatch):
    path = write_metrics({'mIoU': 41.5}, str(tmp_path))
    fail_writes(monkeypatch, 'metrics.json', nbytes=3)
    with pytest.raises(OSError, match='could not write .*metrics.json'):
        write_metrics({'mIoU': 50.0, 'aAcc': 90.0}, str(tmp_path))
    assert json.loads(open(path).read()) == {'mIoU': 41.5}
    assert _names(tmp_path) == ['metrics.json']


def test_out_pickle_of_tools_test_is_complete_or_absent(tmp_path, monkeypatch):
    out = tmp_path / 'results.pkl'
    results = [dict(img_id=i, pred=list(range(50))) for i in range(20)]
    metric = atomic_dump_det_results(str(out))
    fail_writes(monkeypatch, 'results.pkl', nbytes=64)
    with pytest.raises(OSError, match='could not write .*results.pkl'):
        metric.compute_metrics(results)
    assert _names(tmp_path) == []
    monkeypatch.undo()
    metric.compute_metrics(results)
    assert pickle.loads(out.read_bytes()) == results


def _report() -> EnergyReport:
    return EnergyReport(layers=[], neurons=[], num_images=1, meta=dict(model='toy'))


def test_energy_json_is_complete_or_absent(tmp_path, monkeypatch):
    fail_writes(monkeypatch, 'energy.json', nbytes=10)
    with pytest.raises(OSError, match='could not write .*energy.json'):
        write_report(_report(), str(tmp_path))
    assert _names(tmp_path) == []
    monkeypatch.undo()
    write_report(_report(), str(tmp_path))
    assert json.loads((tmp_path / 'energy.json').read_text()) == _report().to_dict()
    assert (tmp_path / 'energy.md').read_text().startswith('# Energy of toy\n')


# ------------------------------------------------------------------------------------------------
# tools/train.py on the toy segmentation model with a real (kernel) write failure


@pytest.mark.slow
def test_tools_train_stops_on_a_file_size_limit_and_resumes(tmp_path):
    data = make_toy_data('seg', tmp_path / 'toy_ade')
    cfg = tmp_path / 'toy_fsize.py'
    cfg.write_text(f"""
_base_ = [{str(REPO / 'configs/toy/fpn_e-spikeformer-t_toy.py')!r}]
custom_imports = dict(imports=['sdt_dense', {HELPERS_MODULE!r}, {FAULTS_MODULE!r}],
                      allow_failed_imports=False)
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root={str(data)!r}))
val_dataloader = val_cfg = val_evaluator = None
train_cfg = dict(max_iters=4)
default_hooks = dict(logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
                     checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=2))
custom_hooks = [dict(type='RNGStateHook'), dict(type='RecordLossHook'),
                dict(type='FileSizeLimitHook')]
randomness = dict(seed=0, deterministic=True)
""")
    work = tmp_path / 'work'
    # from iteration 3 on, no file may grow past 256 KiB: iter_4.pth (~1 MB) cannot be written
    proc = run_tool(
        ['train.py', cfg, '--work-dir', work],
        SDT_TEST_FSIZE_AT_ITER='3',
        SDT_TEST_FSIZE_BYTES=str(256 * 1024),
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert (
        f'OSError: [Errno 27] File too large: could not write {work}/iter_4.pth (it was not created)'
    ) in proc.stderr
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_2.pth')
    assert os.path.getsize(work / 'iter_2.pth') > 256 * 1024
    assert torch.load(work / 'iter_2.pth')['meta']['iter'] == 2
    assert not [n for n in _names(work) if n.endswith('.tmp') or 'staging' in n]
    assert sorted(read_losses(work)) == [1, 2, 3, 4]

    res = run_tool(['train.py', cfg, '--work-dir', work, '--resume'])
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'resumed epoch: 0, iter: 2' in res.stdout + res.stderr
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_4.pth')
    assert torch.load(work / 'iter_4.pth')['meta']['iter'] == 4
