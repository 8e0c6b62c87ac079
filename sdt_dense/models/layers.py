"""Spiking building blocks of E-SpikeFormer: neuron -> synaptic layer -> BN units, SepConv, MLPs and
the spike-driven linear self-attention (E-SDSA).

Every synaptic layer (conv / linear) that follows an SFA neuron sits in the same unit as that neuron,
so the spike-driven conversion and the operation counters can find every (neuron, synapse) pair.
Residual streams between blocks are real-valued ("membrane potentials").
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .neuron import build_neuron, merge_spike_slices


def build_norm(norm_cfg: Optional[dict], num_features: int, dim: int = 2) -> nn.Module:
    """BatchNorm from a config: ``dict(type='BN')`` (default), ``'SyncBN'`` or ``None`` (identity).

    ``dim`` selects BatchNorm1d (Conv1d units) or BatchNorm2d.
    """
    cfg = dict(norm_cfg or dict(type='BN'))
    typ = cfg.pop('type', 'BN')
    cfg.pop('requires_grad', None)
    if typ in ('BN', 'BN2d', 'BN1d'):
        return (nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d)(num_features, **cfg)
    if typ in ('SyncBN', 'MMSyncBN'):
        return nn.SyncBatchNorm(num_features, **cfg)
    raise KeyError(f'unsupported norm type {typ!r}; use BN or SyncBN')


class SpikeConvBN(nn.Module):
    """``neuron -> Conv{1,2}d -> BN``: the unit every spiking layer is made of.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, groups, bias: of the conv.
        neuron_cfg: neuron config (``None`` disables the neuron: the stem on real pixels).
        norm_cfg: norm config; ``False`` disables the norm.
        conv_dim: 2 (Conv2d, ``(B, C, H, W)``) or 1 (Conv1d, ``(B, C, N)``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1,
                 stride: int = 1, padding: int = 0, groups: int = 1, bias: bool = False,
                 neuron_cfg: Optional[dict] = dict(type='SFA'),
                 norm_cfg: Optional[dict] = None, conv_dim: int = 2,
                 with_neuron: bool = True) -> None:
        super().__init__()
        self.neuron = build_neuron(neuron_cfg) if with_neuron else None
        conv = nn.Conv1d if conv_dim == 1 else nn.Conv2d
        self.conv = conv(in_channels, out_channels, kernel_size, stride, padding,
                         groups=groups, bias=bias)
        self.bn = build_norm(norm_cfg, out_channels, conv_dim)

    def forward(self, x: Tensor) -> Tensor:
        if self.neuron is not None:
            x = self.neuron(x)
        return self.bn(self.conv(x))


class SpikingLayer(nn.Module):
    """``SFA neuron -> layer``: feeds a synaptic unit with spikes.

    Args:
        layer: an ``nn.Conv{1,2}d`` / ``nn.Linear``, or an mmcv ``ConvModule`` whose first operation
            is its conv (so the neuron's output reaches the conv directly).
        neuron_cfg: neuron config for :func:`~sdt_dense.models.neuron.build_neuron`.

    Shape: whatever ``layer`` takes and returns; the neuron is element-wise.
    """

    def __init__(self, layer: nn.Module, neuron_cfg: Optional[dict] = None) -> None:
        super().__init__()
        try:
            from mmcv.cnn import ConvModule
        except ImportError:  # pragma: no cover - mmcv not installed
            ConvModule = ()
        if ConvModule and isinstance(layer, ConvModule):
            if layer.order[0] != 'conv' or layer.with_explicit_padding:
                raise ValueError(
                    f'a neuron must feed the conv directly, but this ConvModule runs '
                    f'{"explicit padding" if layer.with_explicit_padding else layer.order[0]} '
                    f'first (order={layer.order}); use order=("conv", "norm", "act") and '
                    f'zero padding')
        elif not isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            raise TypeError(f'SpikingLayer needs a conv, linear or ConvModule, got '
                            f'{type(layer).__name__}')
        self.neuron = build_neuron(neuron_cfg)
        self.layer = layer

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(self.neuron(x))


class SepConv(nn.Module):
    """Spiking separable conv (the V3 token mixer), ``(B, C, H, W) -> (B, C, H, W)``:
    pointwise ``C -> 2C``, depthwise ``k x k``, pointwise ``2C -> C``, each ``neuron -> conv -> BN``."""

    def __init__(self, dim: int, kernel_size: int = 7, expansion: int = 2,
                 neuron_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None) -> None:
        super().__init__()
        hidden = dim * expansion
        self.pwconv1 = SpikeConvBN(dim, hidden, 1, neuron_cfg=neuron_cfg, norm_cfg=norm_cfg)
        self.dwconv = SpikeConvBN(hidden, hidden, kernel_size, padding=kernel_size // 2,
                                  groups=hidden, neuron_cfg=neuron_cfg, norm_cfg=norm_cfg)
        self.pwconv2 = SpikeConvBN(hidden, dim, 1, neuron_cfg=neuron_cfg, norm_cfg=norm_cfg)

    def forward(self, x: Tensor) -> Tensor:
        return self.pwconv2(self.dwconv(self.pwconv1(x)))


class ConvMLP(nn.Module):
    """3x3-conv MLP of the conv blocks, ``(B, C, H, W) -> (B, C, H, W)``, hidden width ``ratio * C``."""

    def __init__(self, dim: int, mlp_ratio: float = 4, neuron_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.conv1 = SpikeConvBN(dim, hidden, 3, padding=1, neuron_cfg=neuron_cfg,
                                 norm_cfg=norm_cfg)
        self.conv2 = SpikeConvBN(hidden, dim, 3, padding=1, neuron_cfg=neuron_cfg,
                                 norm_cfg=norm_cfg)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.conv1(x))


class TokenMLP(nn.Module):
    """Channel MLP of the transformer blocks on tokens: ``(B, C, H, W) -> (B, C, H, W)``, computed as
    Conv1d (with bias) on ``(B, C, N)``, hidden width ``ratio * C``."""

    def __init__(self, dim: int, mlp_ratio: float = 4, neuron_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.fc1 = SpikeConvBN(dim, hidden, 1, bias=True, neuron_cfg=neuron_cfg,
                               norm_cfg=norm_cfg, conv_dim=1)
        self.fc2 = SpikeConvBN(hidden, dim, 1, bias=True, neuron_cfg=neuron_cfg,
                               norm_cfg=norm_cfg, conv_dim=1)

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        return self.fc2(self.fc1(x.flatten(2))).reshape(B, C, H, W)


class SpikeMatMul(nn.Module):
    """Matrix product ``a @ b`` of spike-count matrices (values ``count / norm``).

    A module of its own so that analysis tools can hook both operands. The operands are always in
    integer form (spike-driven slices are merged before the call): a product of spike counts
    ``a_ij * b_jk`` stands for as many AND + accumulate operations on binary spikes (see
    :mod:`sdt_dense.models.spike_driven` for the counting convention).
    """

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return a @ b


class SpikeDrivenSelfAttention(nn.Module):
    """E-SDSA: spike-driven linear attention, ``(B, C, H, W) -> (B, C, H, W)``.

    ``q, k = SFA(BN(W x))`` (width ``C``), ``v = SFA(BN(W_v x))`` (width ``value_ratio * C``), split into
    ``num_heads`` heads; ``out = q (k^T v) * scale`` with ``scale = 2 / sqrt(C / heads)`` and no softmax,
    so the cost is linear in the number of tokens ``N = H * W``; then ``SFA -> 1x1 conv -> BN``.
    Heads are concatenated head-major (channel ``h * dv + j``) as in the published network.
    """

    def __init__(self, dim: int, num_heads: int = 8, value_ratio: int = 4,
                 neuron_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim {dim} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.scale = 2 * (dim // num_heads) ** -0.5
        value_dim = dim * value_ratio
        self.head_neuron = build_neuron(neuron_cfg)
        self.q = SpikeConvBN(dim, dim, 1, norm_cfg=norm_cfg, with_neuron=False)
        self.k = SpikeConvBN(dim, dim, 1, norm_cfg=norm_cfg, with_neuron=False)
        self.v = SpikeConvBN(dim, value_dim, 1, norm_cfg=norm_cfg, with_neuron=False)
        self.q_neuron = build_neuron(neuron_cfg)
        self.k_neuron = build_neuron(neuron_cfg)
        self.v_neuron = build_neuron(neuron_cfg)
        self.kv_matmul = SpikeMatMul()   # k^T v: (B, h, d, N) @ (B, h, N, dv)
        self.qkv_matmul = SpikeMatMul()  # q (k^T v): (B, h, N, d) @ (B, h, d, dv)
        self.proj = SpikeConvBN(value_dim, dim, 1, neuron_cfg=neuron_cfg, norm_cfg=norm_cfg)

    def _heads(self, x: Tensor) -> Tensor:
        # (B', C, H, W) -> (B', heads, N, C / heads)
        return x.flatten(2).unflatten(1, (self.num_heads, -1)).transpose(-1, -2)

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        x = self.head_neuron(x)
        q = self.q_neuron(self.q(x))
        k = self.k_neuron(self.k(x))
        v = self.v_neuron(self.v(x))
        # Spike-driven mode: merge the binary slices into integer form for the spike-matrix
        # products (their AND + accumulate count is reported by the counters).
        q, k, v = (merge_spike_slices(t) for t in (q, k, v))
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        kv = self.kv_matmul(k.transpose(-1, -2), v)
        out = self.qkv_matmul(q, kv) * self.scale  # (B, h, N, dv)
        out = out.transpose(-1, -2).reshape(B, -1, H, W)
        return self.proj(out)


class LayerScale(nn.Module):
    """Per-channel scale ``gamma`` of a residual branch, ``(B, C, H, W)``."""

    def __init__(self, dim: int, init_value: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim, 1, 1), float(init_value)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma
