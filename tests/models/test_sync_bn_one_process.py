"""SyncBN in one process is BatchNorm: the claim "identical on one GPU" of the norm-layer rows of
docs/differences.md (Base row 11, Large row L11). Both backbones built with ``SyncBN`` and with
``BN`` from the same weights give bit-identical train-mode outputs, input gradients, parameter
gradients and running statistics in float64 (no process group: one device)."""

import pytest
import torch
from torch import nn

from sdt_dense.models import ESpikeFormer, ESpikeFormerLarge
from sdt_testing import randomise_bn

TOY_LARGE = dict(embed_dims=[16, 32, 64], depth=2, num_heads=4, rep_branch=True)
BUILD = {
    'base': lambda norm: ESpikeFormer('t', norm_cfg=dict(type=norm)),
    'large': lambda norm: ESpikeFormerLarge(TOY_LARGE, norm_cfg=dict(type=norm)),
}


@pytest.mark.parametrize('family', sorted(BUILD))
def test_sync_bn_in_one_process_equals_bn(family):
    torch.manual_seed(0)
    sync = randomise_bn(BUILD[family]('SyncBN')).double().train()
    plain = BUILD[family]('BN').double().train()
    plain.load_state_dict(sync.state_dict())
    assert any(isinstance(m, nn.SyncBatchNorm) for m in sync.modules())
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in plain.modules())
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64) * 2
    outs, grads = [], []
    for model in (sync, plain):
        xi = x.clone().requires_grad_(True)
        out = model(xi)
        sum((o * (i + 1)).sum() for i, o in enumerate(out)).backward()
        outs.append([o.detach() for o in out])
        grads.append([xi.grad] + [p.grad for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*outs))
    assert all(torch.equal(a, b) for a, b in zip(*grads))
    assert grads[0][0].abs().sum() > 0  # the comparison is not of zeros
    for (name, a), b in zip(sync.state_dict().items(), plain.state_dict().values()):
        assert torch.equal(a, b), name  # running statistics updated alike
