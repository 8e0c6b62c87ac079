"""GlooSyncBatchNorm over 2 CPU processes equals BatchNorm over the concatenated batch."""

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from sdt_dense.engine.cpu_sync_bn import GlooSyncBatchNorm, convert_gloo_sync_batchnorm
from sdt_testing import free_port
from sdt_testing import sync_bn_worker as W


@pytest.mark.slow
def test_gloo_sync_bn_equals_batchnorm_on_the_whole_batch(tmp_path):
    mp.start_processes(W.worker, args=(free_port(), str(tmp_path)), nprocs=W.WORLD, start_method='spawn')
    x, upstream = W.data()
    ref = nn.BatchNorm2d(W.C, momentum=0.3)  # the reference: one process, all samples
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(W.WEIGHT))
        ref.bias.copy_(torch.tensor(W.BIAS))
    xr = x.clone().requires_grad_(True)
    yr = ref(xr)
    (yr * upstream).sum().backward()
    outs = [torch.load(tmp_path / f'rank{r}.pth') for r in range(W.WORLD)]
    assert all(o['type'] == 'GlooSyncBatchNorm' for o in outs)
    close = dict(atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.cat([o['y'] for o in outs]), yr.detach(), **close)
    torch.testing.assert_close(torch.cat([o['gx'] for o in outs]), xr.grad, **close)
    # parameter gradients are per-rank partial sums (DDP all-reduces them)
    torch.testing.assert_close(outs[0]['gw'] + outs[1]['gw'], ref.weight.grad, **close)
    torch.testing.assert_close(outs[0]['gb'] + outs[1]['gb'], ref.bias.grad, **close)
    for o in outs:
        torch.testing.assert_close(o['rm'], ref.running_mean, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(o['rv'], ref.running_var, atol=1e-6, rtol=1e-6)


def test_convert_keeps_parameters_and_mode():
    model = nn.Sequential(nn.Conv2d(3, W.C, 1), nn.SyncBatchNorm(W.C))
    with torch.no_grad():
        model[1].weight.fill_(2.0)
        model[1].running_mean.fill_(0.5)
    model[1].bias.requires_grad_(False)
    model.eval()
    out = convert_gloo_sync_batchnorm(model)
    assert out is model and type(model[1]) is GlooSyncBatchNorm
    assert not isinstance(model[1], nn.SyncBatchNorm)  # DDP refuses SyncBatchNorm on CPU
    assert torch.equal(model[1].weight, torch.full((W.C,), 2.0))
    assert torch.equal(model[1].running_mean, torch.full((W.C,), 0.5))
    assert not model[1].bias.requires_grad and not model[1].training


def test_without_process_group_it_is_batchnorm():
    x = torch.randn(4, W.C, 3, 3)
    bn, ref = GlooSyncBatchNorm(W.C), nn.BatchNorm2d(W.C)
    torch.testing.assert_close(bn(x), ref(x))
    torch.testing.assert_close(bn.running_var, ref.running_var)
