"""The energy tool on the E-SpikeFormer Large family (toy Large detector config, ``--shape``
mode): the attention's spike-matrix products are counted, every RepConv is fused into one
spike-fed conv by default, and ``--no-fuse-rep-conv`` shows what the unfused form would be
charged."""

from __future__ import annotations

import importlib

import pytest
import torch

from sdt_testing import REPO, randomise_bn

TOY = REPO / 'configs' / 'toy' / 'mask-rcnn_e-spikeformer-large-toy_spike-fpn_toy.py'


@pytest.fixture(scope='module')
def toy_checkpoint(tmp_path_factory):
    """A toy Large detector checkpoint with randomised BatchNorms and layer scale 0.5, so that
    every neuron, the attention included, fires."""
    importlib.import_module('mmdet')
    from mmengine.config import Config

    from sdt_dense.cli import measure_energy as tool

    cfg = Config.fromfile(str(TOY))
    tool.init_scope(cfg)
    torch.manual_seed(0)
    model = randomise_bn(tool.build_model(cfg, 'mmdet', backbone_only=False), seed=2)
    for block in model.backbone.blocks:
        for scale in (block.ls1, block.ls2):
            scale.gamma.data.fill_(0.5)
    path = tmp_path_factory.mktemp('energy_large') / 'toy_large.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return path, model.backbone


def run_tool(checkpoint, out, *extra):
    from sdt_dense.cli import measure_energy as tool

    return tool.main(
        [str(TOY), str(checkpoint), '--shape', '64', '64', '--num-images', '1', '--out', str(out), *extra]
    )


@pytest.mark.slow
def test_backbone_shape_mode_counts_attention_products(toy_checkpoint, tmp_path):
    checkpoint, backbone = toy_checkpoint
    data = run_tool(checkpoint, tmp_path / 'fused')
    assert (tmp_path / 'fused' / 'energy.json').is_file()
    assert (data['task'], data['num_images'], data['input_size']) == ('backbone', 1, '64x64')
    assert data['params'] == sum(p.numel() for p in backbone.parameters())  # before fusing
    assert data['rep_convs_fused'] == 2 * 5  # q, k, v, projection, token branch; 2 blocks
    rows = {r['name']: r for r in data['layers']}
    # Both products of every block's linear attention: 4 heads of d = 16 on N = 4 x 4 tokens,
    # k^T v (d x N @ N x d) and q (k^T v) (N x d @ d x d): 4 * 16 * 16 * 16 MACs each, dense.
    for j in range(2):
        for name in ('kv_matmul', 'qkv_matmul'):
            row = rows[f'blocks.{j}.attn.{name}']
            assert row['type'] == 'SpikeMatMul' and row['input_kind'] == 'spike'
            assert row['dense_macs'] == 4 * 16 * 16 * 16
            assert row['sop_exact'] > 0  # q, k and v fire
        # q (k^T v): every q spike adds a row of d_v = 16 accumulated values
        qkv = rows[f'blocks.{j}.attn.qkv_matmul']
        assert qkv['sop_exact'] == pytest.approx(qkv['sop_estimate'], rel=1e-9)
    # fused: the only MACs are the stem's (7x7 conv, 3 -> 8 channels, 32 x 32 outputs)
    assert data['mac_ops'] == 32 * 32 * 8 * 3 * 49
    real = [n for n, r in rows.items() if r['input_kind'] != 'spike']
    assert real == ['downsamples.0.conv']
    assert 'extra_stride32.conv' in rows and rows['extra_stride32.conv']['sop_exact'] > 0


@pytest.mark.slow
def test_unfused_rep_convs_are_charged_as_macs(toy_checkpoint, tmp_path):
    checkpoint, _ = toy_checkpoint
    fused = run_tool(checkpoint, tmp_path / 'fused')
    plain = run_tool(checkpoint, tmp_path / 'plain', '--no-fuse-rep-conv')
    assert plain['rep_convs_fused'] == 0
    real = [r['name'] for r in plain['layers'] if r['input_kind'] == 'real']
    assert 'downsamples.0.conv' in real and len(real) == 1 + 10
    assert all(n.endswith('conv2.conv') for n in real if n != 'downsamples.0.conv')
    assert plain['mac_ops'] > fused['mac_ops']
    # the neurons see the same inputs either way (fusing keeps every output up to float32
    # rounding, which may move a rare value across a rounding boundary)
    a = {n['name']: n['mean_count'] for n in fused['neurons']}
    b = {n['name']: n['mean_count'] for n in plain['neurons']}
    assert a.keys() == b.keys()
    assert sum(a.values()) == pytest.approx(sum(b.values()), rel=1e-3)
    assert fused['total_energy_mj'] < plain['total_energy_mj']
