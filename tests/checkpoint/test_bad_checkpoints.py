"""Wrong architectures and checkpoints fail with errors that name the problem; nothing is loaded."""

import re

import pytest
import torch
from mmengine.runner import Runner

from sdt_dense.checkpoint import load_pretrained
from sdt_dense.models import CheckpointMismatchError, ESpikeFormer
from sdt_testing.toy_runner import toy_runner_cfg


def test_unknown_arch_lists_the_valid_ones():
    with pytest.raises(KeyError) as err:
        ESpikeFormer(arch='xl')
    msg = str(err.value)
    assert "'xl'" in msg and all(repr(a) in msg for a in ('t', '5M', '10M', '19M', 's', 'm', 'l'))


def test_unknown_arch_through_the_registry():
    from mmdet.registry import MODELS as DET_MODELS
    from mmengine.registry import DefaultScope

    with (
        DefaultScope.overwrite_default_scope('mmdet'),
        pytest.raises(KeyError, match=r"unknown arch 'huge'.*\['t', '5M', '10M', '19M'\]"),
    ):
        DET_MODELS.build(dict(type='ESpikeFormer', arch='huge'))


def _rows(msg: str) -> dict:
    """``{key: problem}`` from the mismatch table."""
    rows = {}
    for line in msg.splitlines():
        m = re.match(r'\s+(\S+)\s+(missing|shape|unexpected)\s', line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def test_backbone_checkpoint_mismatch_table(tmp_path):
    model = ESpikeFormer(arch='t')
    sd = model.state_dict()
    del sd['downsamples.1.conv.weight']
    sd['stages.3.0.attn.q.conv.weight'] = torch.zeros(3, 3, 1, 1)
    sd['extra.weight'] = torch.zeros(1)
    path = tmp_path / 'bad.pth'
    torch.save({'state_dict': sd}, path)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as err:
        load_pretrained(model, str(path))
    assert _rows(str(err.value)) == {
        'downsamples.1.conv.weight': 'missing',
        'stages.3.0.attn.q.conv.weight': 'shape',
        'extra.weight': 'unexpected',
    }
    assert 'checkpoint (3, 3, 1, 1) vs model (96, 96, 1, 1)' in str(err.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def _toy_checkpoint(tmp_path):
    """A real mmengine checkpoint of the toy model (iter_2.pth)."""
    Runner.from_cfg(toy_runner_cfg(str(tmp_path / 'src'), max_iters=2)).train()
    return tmp_path / 'src' / 'iter_2.pth'


def _tamper(src, dst):
    ckpt = torch.load(src)
    del ckpt['state_dict']['bn.running_mean']
    ckpt['state_dict']['fc.weight'] = torch.zeros(1, 5)
    torch.save(ckpt, dst)


def test_strict_load_hook_refuses_resume_and_load_from(tmp_path):
    good = _toy_checkpoint(tmp_path)
    bad = tmp_path / 'bad.pth'
    _tamper(good, bad)
    strict = [dict(type='StrictLoadHook')]
    for kw in (dict(resume=True, load_from=str(bad)), dict(load_from=str(bad))):
        work = tmp_path / f'w{len(kw)}'
        runner = Runner.from_cfg(toy_runner_cfg(str(work), max_iters=4, hooks=strict, **kw))
        before = {k: v.clone() for k, v in runner.model.state_dict().items()}
        with pytest.raises(CheckpointMismatchError) as err:
            runner.train()
        assert _rows(str(err.value)) == {'bn.running_mean': 'missing', 'fc.weight': 'shape'}
        assert 'StrictLoadHook' in str(err.value)  # says how to allow intended differences
        assert all(torch.equal(before[k], v) for k, v in runner.model.state_dict().items())
        assert not list(work.glob('*.pth'))  # nothing was written


def test_control_without_hook_mmengine_loads_leniently(tmp_path):
    """Control: mmengine alone accepts the tampered file (strict=False) and trains on."""
    bad = tmp_path / 'bad.pth'
    _tamper(_toy_checkpoint(tmp_path), bad)
    Runner.from_cfg(toy_runner_cfg(str(tmp_path / 'w'), max_iters=1, load_from=str(bad))).train()
    assert (tmp_path / 'w' / 'iter_1.pth').exists()


def test_strict_load_hook_ignore_keys(tmp_path):
    good = _toy_checkpoint(tmp_path)
    bad = tmp_path / 'bad.pth'
    _tamper(good, bad)
    hooks = [dict(type='StrictLoadHook', ignore_keys=[r'^fc\.weight$', r'^bn\.running_mean$'])]
    runner = Runner.from_cfg(toy_runner_cfg(str(tmp_path / 'w'), hooks=hooks))
    init = {k: v.clone() for k, v in runner.model.state_dict().items()}
    runner.load_checkpoint(str(bad))
    ref = torch.load(good)['state_dict']
    now = runner.model.state_dict()
    for k in now:  # the allowed tensors keep their initial values, the others are loaded
        expected = init[k] if k in ('fc.weight', 'bn.running_mean') else ref[k]
        assert torch.equal(now[k], expected), k


def test_strict_load_hook_rejects_bad_regex():
    from sdt_dense.engine import StrictLoadHook

    with pytest.raises(re.error):
        StrictLoadHook(ignore_keys=['('])
