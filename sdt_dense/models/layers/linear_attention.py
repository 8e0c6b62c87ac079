"""Spike-driven linear attention of the Large family: RepConv projections, fixed scale 0.125."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from ..neurons import build_neuron
from ..neurons.saved_counts import note_recompute
from .norm import build_norm
from .rep_conv import RepConv
from .spike_matmul import SpikeMatMul


class SpikeLinearAttention(nn.Module):
    """Spike-driven linear attention of the Large family, ``(B, C, H, W) -> (B, C, H, W)``.

    On the ``N = H * W`` tokens ``(B, C, N)``::

        u = SFA(x)
        q = SFA(BN(RepConv_q(u))),  k = SFA(BN(RepConv_k(u))),  v = SFA(BN(RepConv_v(u)))
        A_h = scale * q_h (k_h^T v_h)            per head, no softmax, no division by N
        out = BN(RepConv_p(SFA(concat_h A_h)))

    ``q, k, v`` all have width ``C``; heads are contiguous channel blocks (channel ``h * d + j``),
    merged back in the same order. ``scale`` is the constant 0.125 whatever the head width, as
    published. ``k^T v`` (``d x d`` per head) is formed first, so the cost is linear in ``N``.
    Because q, k and v are multiples of ``1 / D``, the products are exact dyadic rationals: the
    attention neuron sees exact rounding ties, which is why the neuron's tie rule matters.

    Spike-driven mode: both products run on the binary spike slices of q, k and v (see
    :func:`~sdt_dense.models.layers.spike_matmul.spike_slices_matmul`); the output equals integer
    mode.

    Args:
        dim: token width ``C``.
        num_heads: number of heads (``C`` must be divisible by it).
        scale: constant factor of ``q (k^T v)``.
        token_scale: ``None`` (published) or a training token count ``N_train``: the attention
            output is then multiplied by ``N_train / N``. The sum over tokens grows linearly with
            ``N``, so at detection resolutions (e.g. ``N = 4096`` at 1024x1024 against ``196`` at
            224x224) the attention neuron would saturate at ``D``; this keeps its input on the
            scale it was trained at.
        neuron_cfg, norm_cfg: neuron and norm configs.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        scale: float = 0.125,
        token_scale: Optional[int] = None,
        neuron_cfg: Optional[dict] = None,
        norm_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim {dim} is not divisible by num_heads {num_heads}')
        if token_scale is not None and token_scale <= 0:
            raise ValueError(f'token_scale must be a positive token count, got {token_scale!r}')
        self.num_heads = num_heads
        self.scale = scale
        self.token_scale = token_scale
        self.in_neuron = build_neuron(neuron_cfg)
        # One shared neuron output feeds the first conv of q, k and v directly.
        self.q_conv = RepConv(dim, dim, norm_cfg=norm_cfg, with_neuron=False)
        self.q_bn = build_norm(norm_cfg, dim, 1)
        self.k_conv = RepConv(dim, dim, norm_cfg=norm_cfg, with_neuron=False)
        self.k_bn = build_norm(norm_cfg, dim, 1)
        self.v_conv = RepConv(dim, dim, norm_cfg=norm_cfg, with_neuron=False)
        self.v_bn = build_norm(norm_cfg, dim, 1)
        self.q_neuron = build_neuron(neuron_cfg)
        self.k_neuron = build_neuron(neuron_cfg)
        self.v_neuron = build_neuron(neuron_cfg)
        self.kv_matmul = SpikeMatMul()  # k^T v: (B, h, d, N) @ (B, h, N, d)
        self.qkv_matmul = SpikeMatMul()  # q (k^T v): (B, h, N, d) @ (B, h, d, d)
        self.proj_conv = RepConv(dim, dim, neuron_cfg=neuron_cfg, norm_cfg=norm_cfg)
        self.proj_bn = build_norm(norm_cfg, dim, 1)

    def _heads(self, x: Tensor) -> Tensor:
        # (B, C, N) -> (B, heads, N, C / heads)
        return x.unflatten(1, (self.num_heads, -1)).transpose(-1, -2)

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        N = H * W
        # Flatten before the neuron: in spike-driven mode its output must reach the convs as is.
        u = self.in_neuron(x.flatten(2))
        q = self.q_neuron(self.q_bn(self.q_conv(u)))
        k = self.k_neuron(self.k_bn(self.k_conv(u)))
        v = self.v_neuron(self.v_bn(self.v_conv(u)))
        # Spike-driven mode: q, k, v are binary slices (D * B, C, N). The head split and the
        # transpose are layout ops on the non-leading dims, so the slices reach the products
        # tagged and SpikeMatMul multiplies them slice by slice (binary x binary for k^T v).
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        k_t = k.transpose(-1, -2)
        kv = self.kv_matmul(k_t, v)
        # save_counts='recompute': q (k^T v) keeps a recipe of k^T v, read from the codes of k, v
        note_recompute(kv, torch.matmul, (k_t, v))
        out = self.qkv_matmul(q, kv) * self.scale  # (B, h, N, d)
        if self.token_scale is not None:
            out = out * (self.token_scale / N)
        out = out.transpose(-1, -2).reshape(B, C, N)
        return self.proj_bn(self.proj_conv(out)).reshape(B, C, H, W)

    def extra_repr(self) -> str:
        s = f'num_heads={self.num_heads}, scale={self.scale:g}'
        if self.token_scale is not None:
            s += f', token_scale={self.token_scale}'
        return s
