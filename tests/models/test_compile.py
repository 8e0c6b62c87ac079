"""torch.compile: the backbone traces as one graph (no graph break from the SFA neuron, the
attention or the saved-count packing) and the compiled model computes exactly what eager mode does."""

import pytest
import torch
import torch._dynamo as dynamo

from sdt_dense.models import ESpikeFormer, ESpikeFormerLarge

pytestmark = pytest.mark.slow


def _graphs(model, x):
    dynamo.reset()
    out = dynamo.explain(model)(x)
    return out.graph_count, out.graph_break_count, [str(b.reason)[:200] for b in out.break_reasons]


def test_backbone_is_one_graph():
    torch.manual_seed(0)
    model = ESpikeFormer(arch='t', save_counts=True).train()
    graphs, breaks, reasons = _graphs(model, torch.randn(1, 3, 64, 64))
    assert (graphs, breaks) == (1, 0), reasons


def test_large_backbone_and_lif_are_one_graph():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 64)
    lif = ESpikeFormer(arch='t', neuron_cfg=dict(type='LIF', T=2)).train()
    assert _graphs(lif, x)[:2] == (1, 0)
    large = ESpikeFormerLarge(
        arch=dict(embed_dims=[16, 32, 64], depth=2, num_heads=4, rep_branch=True), out_indices=(1, 2, 3, 4)
    ).train()
    assert _graphs(large, x)[:2] == (1, 0)


def test_compiled_training_step_equals_eager_in_float64():
    """fullgraph=True fails on any graph break; aot_eager traces forward and backward through
    AOTAutograd (the SFA straight-through Function included) and runs the same aten ops, so in
    float64 outputs and every gradient must be bit-identical to eager mode."""
    torch.manual_seed(0)
    model = ESpikeFormer(arch='t').double().train()
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    ref = model(x)
    sum(o.square().sum() for o in ref).backward()
    ref_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    dynamo.reset()
    out = torch.compile(model, fullgraph=True, backend='aot_eager')(x)
    sum(o.square().sum() for o in out).backward()
    for a, b in zip(ref, out):
        assert torch.equal(a, b)
    for g, p in zip(ref_grads, model.parameters()):
        assert torch.equal(g, p.grad)
