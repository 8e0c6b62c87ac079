"""E-SDSA, the spike-driven linear self-attention of the Base family."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from ..neurons import build_neuron
from ..neurons.saved_counts import note_recompute
from .spike_conv_bn import SpikeConvBN
from .spike_matmul import SpikeMatMul


class SpikeDrivenSelfAttention(nn.Module):
    """E-SDSA: spike-driven linear attention, ``(B, C, H, W) -> (B, C, H, W)``.

    ``q, k = SFA(BN(W x))`` (width ``C``), ``v = SFA(BN(W_v x))`` (width ``value_ratio * C``),
    split into ``num_heads`` heads; ``out = q (k^T v) * scale`` with ``scale = 2 / sqrt(C / heads)``
    and no softmax, so the cost is linear in the number of tokens ``N = H * W``; then
    ``SFA -> 1x1 conv -> BN``.
    Heads are concatenated head-major (channel ``h * dv + j``) as in the published network.

    Spike-driven mode: both products run on the binary spike slices of q, k and v (see
    :func:`~sdt_dense.models.layers.spike_matmul.spike_slices_matmul`); the output equals integer
    mode.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        value_ratio: int = 4,
        neuron_cfg: Optional[dict] = None,
        norm_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim {dim} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.scale = 2 * (dim // num_heads) ** -0.5
        value_dim = dim * value_ratio
        self.in_neuron = build_neuron(neuron_cfg)
        self.q = SpikeConvBN(dim, dim, 1, norm_cfg=norm_cfg, with_neuron=False)
        self.k = SpikeConvBN(dim, dim, 1, norm_cfg=norm_cfg, with_neuron=False)
        self.v = SpikeConvBN(dim, value_dim, 1, norm_cfg=norm_cfg, with_neuron=False)
        self.q_neuron = build_neuron(neuron_cfg)
        self.k_neuron = build_neuron(neuron_cfg)
        self.v_neuron = build_neuron(neuron_cfg)
        self.kv_matmul = SpikeMatMul()  # k^T v: (B, h, d, N) @ (B, h, N, dv)
        self.qkv_matmul = SpikeMatMul()  # q (k^T v): (B, h, N, d) @ (B, h, d, dv)
        self.proj = SpikeConvBN(value_dim, dim, 1, neuron_cfg=neuron_cfg, norm_cfg=norm_cfg)

    def _heads(self, x: Tensor) -> Tensor:
        # (B', C, H, W) -> (B', heads, N, C / heads)
        return x.flatten(2).unflatten(1, (self.num_heads, -1)).transpose(-1, -2)

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        x = self.in_neuron(x)
        q = self.q_neuron(self.q(x))
        k = self.k_neuron(self.k(x))
        v = self.v_neuron(self.v(x))
        # Spike-driven mode: q, k, v are binary slices (D * B, C', H, W). The head split and the
        # transpose are layout ops on the non-leading dims, so the slices reach the products
        # tagged and SpikeMatMul multiplies them slice by slice (binary x binary for k^T v).
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        k_t = k.transpose(-1, -2)
        kv = self.kv_matmul(k_t, v)
        # save_counts='recompute': q (k^T v) keeps a recipe of k^T v, read from the codes of k, v
        note_recompute(kv, torch.matmul, (k_t, v))
        out = self.qkv_matmul(q, kv) * self.scale  # (B, h, N, dv)
        out = out.transpose(-1, -2).reshape(B, -1, H, W)
        return self.proj(out)
