"""A NaN or Inf loss stops training, naming the iteration; no corrupted checkpoint is written."""

import math

import pytest
import torch
from mmengine.runner import Runner

from sdt_dense.engine import NonFiniteLossError
from sdt_testing.toy_runner import read_losses, toy_runner_cfg


@pytest.mark.parametrize('value', [math.nan, math.inf])
def test_non_finite_loss_stops_and_names_the_iteration(tmp_path, value):
    # batch 2, no shuffling: sample 4 is in the 3rd batch
    cfg = toy_runner_cfg(
        str(tmp_path), max_iters=6, interval=1, bad={4: value}, hooks=[dict(type='NonFiniteLossHook')]
    )
    with pytest.raises(NonFiniteLossError) as err:
        Runner.from_cfg(cfg).train()
    msg = str(err.value)
    assert 'non-finite loss at iteration 3;' in msg
    assert "non-finite terms: ['loss']" in msg
    assert str(tmp_path / 'iter_2.pth') in msg  # the last good checkpoint
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['iter_1.pth', 'iter_2.pth']
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'iter_2.pth')
    sd = torch.load(tmp_path / 'iter_2.pth')['state_dict']
    assert all(torch.isfinite(v).all() for v in sd.values())
    losses = read_losses(tmp_path)  # recorded before the check ran (HIGHEST priority)
    assert all(math.isfinite(losses[i]['loss']) for i in (1, 2))
    assert not math.isfinite(losses[3]['loss'])


def test_control_without_hook_training_runs_on(tmp_path):
    """Control: without the hook mmengine trains through the NaN and checkpoints NaN weights."""
    cfg = toy_runner_cfg(str(tmp_path), max_iters=4, interval=1, bad={4: math.nan})
    Runner.from_cfg(cfg).train()
    sd = torch.load(tmp_path / 'iter_4.pth')['state_dict']
    assert not torch.isfinite(sd['fc.weight']).all()


def test_interval_validation():
    from sdt_dense.engine import NonFiniteLossHook

    with pytest.raises(ValueError, match='interval'):
        NonFiniteLossHook(interval=0)
