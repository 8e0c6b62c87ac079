"""E-SpikeFormer (Spike-Driven Transformer V3), the published 5M / 10M / 19M sizes.

Layout (strides relative to the input, ``[C0, C1, C2, C3]`` = ``embed_dims``)::

    stage 0  stem conv k7/s2 on pixels (bias) + BN, 1 conv block (C0/2)         stride 2
    stage 1  SFA -> conv k3/s2 + BN, 1 conv block (C0)                          stride 4
    stage 2  SFA -> conv k3/s2 + BN, 2 conv blocks (C1)                         stride 8
    stage 3  SFA -> conv k3/s2 + BN, 6 transformer blocks (C2)                  stride 16
    stage 4  SFA -> conv k3/s(last_stride) + BN, 2 transformer blocks (C3)      stride 16 (published,
                                                                                last_stride=1) or 32

Outputs are the real-valued residual streams ``(B, C_i, H_i, W_i)`` after the stages in
``out_indices``. Module names differ from the released checkpoints; :data:`sdt_dense.checkpoint.BASE_FORMAT`
converts released files at load time.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from timm.layers import DropPath, LayerScale2d, trunc_normal_
from torch import Tensor, nn

from ...checkpoint import BASE_FORMAT
from ...registry import register_model
from ..layers import ConvMLP, SepConv, SpikeConvBN, SpikeDrivenSelfAttention, TokenMLP
from ..neurons import build_neuron, neuron_time_steps, repeat_over_time
from .base import Arch, SpikeBackbone, SpikeClassifierMixin


class ConvBlock(nn.Module):
    """Conv-based SNN block, ``(B, C, H, W) -> (B, C, H, W)``:
    ``x + SepConv_k7(x)``, then ``x + ConvMLP(x)``."""

    def __init__(
        self,
        dim: int,
        mlp_ratio: float = 4,
        drop_path: float = 0.0,
        neuron_cfg: Optional[dict] = None,
        norm_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__()
        self.sepconv = SepConv(dim, 7, neuron_cfg=neuron_cfg, norm_cfg=norm_cfg)
        self.mlp = ConvMLP(dim, mlp_ratio, neuron_cfg=neuron_cfg, norm_cfg=norm_cfg)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.sepconv(x))
        return x + self.drop_path(self.mlp(x))


class TransformerBlock(nn.Module):
    """Transformer-based SNN block, ``(B, C, H, W) -> (B, C, H, W)``: three residual branches,
    SepConv k3, spike-driven self-attention, token MLP; optional layer scale on each branch."""

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        mlp_ratio: float = 4,
        value_ratio: int = 4,
        drop_path: float = 0.0,
        layer_scale_init_value: Optional[float] = None,
        neuron_cfg: Optional[dict] = None,
        norm_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__()
        self.sepconv = SepConv(dim, 3, neuron_cfg=neuron_cfg, norm_cfg=norm_cfg)
        self.attn = SpikeDrivenSelfAttention(dim, num_heads, value_ratio, neuron_cfg, norm_cfg)
        self.mlp = TokenMLP(dim, mlp_ratio, neuron_cfg=neuron_cfg, norm_cfg=norm_cfg)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        if layer_scale_init_value is not None:
            self.ls1 = LayerScale2d(dim, layer_scale_init_value)
            self.ls2 = LayerScale2d(dim, layer_scale_init_value)
            self.ls3 = LayerScale2d(dim, layer_scale_init_value)
        else:
            self.ls1 = self.ls2 = self.ls3 = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.ls1(self.sepconv(x)))
        x = x + self.drop_path(self.ls2(self.attn(x)))
        return x + self.drop_path(self.ls3(self.mlp(x)))


@register_model()
class ESpikeFormer(SpikeBackbone):
    """E-SpikeFormer backbone for dense prediction.

    Args:
        arch: ``'5M'``, ``'10M'``, ``'19M'`` (the paper's sizes; aliases ``'s'``, ``'m'``,
            ``'l'``), ``'t'`` (a 2.7M size for tests, not published) or a dict with
            ``embed_dims`` (and optionally ``depths`` (5 ints), ``num_heads``, ``mlp_ratio``,
            ``value_ratio``).
        in_channels: input image channels.
        out_indices: stages whose outputs are returned, a subset of ``{0, 1, 2, 3, 4}`` (strides
            2, 4, 8, 16, 16-or-32; widths C0/2, C0, C1, C2, C3).
        last_stride: stride of the stage-4 downsampling conv. 1 is the published network (stage 4 at
            stride 16); 2 gives a true stride-32 level.
        neuron_cfg: neuron config, default ``dict(type='SFA', D=4)`` (normalised by D).
            ``dict(type='LIF', T=4)`` selects binary LIF neurons over T real timesteps: the input is
            repeated T times (folded into the batch) and each output is averaged over T.
        norm_cfg: ``dict(type='BN')`` or ``dict(type='SyncBN')``.
        drop_path_rate: stochastic depth, linearly increasing over all 12 blocks.
        layer_scale_init_value: per-channel layer scale on each transformer branch (``None``: off, as
            the published Base; the published segmentation backbone uses ``1e-6``).
        **contract: ``frozen_stages``, ``norm_eval``, ``with_cp``, ``save_counts``, ``init_cfg``,
            ``pretrained``, as :class:`~sdt_dense.models.backbones.base.SpikeBackbone` takes them.

    Shape:
        input ``(B, in_channels, H, W)`` with any ``H, W``; output a tuple of ``(B, C_i, H_i, W_i)``
        with ``H_i = ceil(H / stride_i)`` (each stride-2 conv rounds up).
    """

    # Published sizes: the embed dims are the only difference (heads 8, MLP ratio 4, blocks
    # 1+1/2/6/2). Parameter counts with the classifier: 2.7M, 5.1M, 10.0M, 19.0M.
    arch_zoo = {
        't': dict(embed_dims=[24, 48, 96, 128]),
        '5M': dict(embed_dims=[32, 64, 128, 192]),
        '10M': dict(embed_dims=[48, 96, 192, 240]),
        '19M': dict(embed_dims=[64, 128, 256, 360]),
    }
    arch_aliases = {'s': '5M', 'm': '10M', 'l': '19M', '5.1M': '5M'}
    arch_defaults = dict(depths=[1, 1, 2, 6, 2], num_heads=8, mlp_ratio=4, value_ratio=4)
    num_embed_dims = 4
    released_format = BASE_FORMAT
    example_arch = 't'

    def __init__(
        self,
        arch: Arch = '19M',
        in_channels: int = 3,
        out_indices: Sequence[int] = (1, 2, 3, 4),
        last_stride: int = 1,
        neuron_cfg: Optional[dict] = None,
        norm_cfg: Optional[dict] = None,
        drop_path_rate: float = 0.0,
        layer_scale_init_value: Optional[float] = None,
        **contract,
    ) -> None:
        super().__init__(in_channels, out_indices, **contract)
        self.arch_settings = self.resolve_arch(arch)
        C0, C1, C2, C3 = self.arch_settings['embed_dims']
        depths = self.arch_settings['depths']
        if last_stride not in (1, 2):
            raise ValueError(f'last_stride must be 1 (published) or 2, got {last_stride}')
        self.last_stride = last_stride
        self.neuron_cfg = dict(neuron_cfg or dict(type='SFA', D=4))
        #: real timesteps the neurons need the input repeated over (1 for SFA, T for LIF)
        self.neuron_T = neuron_time_steps(self.neuron_cfg)
        self.layer_scale_init_value = layer_scale_init_value

        #: widths and strides of all five stages
        self.stage_channels: List[int] = [C0 // 2, C0, C1, C2, C3]
        self.stage_strides: List[int] = [2, 4, 8, 16, 16 * last_stride]

        n = dict(neuron_cfg=self.neuron_cfg, norm_cfg=norm_cfg)
        widths = [in_channels] + self.stage_channels
        self.downsamples = nn.ModuleList()
        for i in range(5):
            k, s = (7, 2) if i == 0 else (3, last_stride if i == 4 else 2)
            self.downsamples.append(
                SpikeConvBN(widths[i], widths[i + 1], k, s, k // 2, bias=True, with_neuron=i > 0, **n)
            )  # the stem sees real pixels: no neuron

        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        mlp, heads = self.arch_settings['mlp_ratio'], self.arch_settings['num_heads']
        self.stages = nn.ModuleList()
        for i in range(len(depths)):
            dim, rates = self.stage_channels[i], dpr[sum(depths[:i]) : sum(depths[: i + 1])]
            if i < 3:
                blocks = [ConvBlock(dim, mlp, r, **n) for r in rates]
            else:
                blocks = [
                    TransformerBlock(
                        dim, heads, mlp, self.arch_settings['value_ratio'], r, layer_scale_init_value, **n
                    )
                    for r in rates
                ]
            self.stages.append(nn.Sequential(*blocks))
        self._freeze_stages()

    @classmethod
    def _check_arch(cls, settings: dict) -> None:
        if len(settings['depths']) != 5:
            raise ValueError(f'arch needs 5 depths (stage 0..4), got {settings["depths"]}')

    def _forward_levels(self, x: Tensor, out_indices: Tuple[int, ...]) -> Dict[int, Tensor]:
        T = self.neuron_T
        if T > 1:  # multi-step neurons: time folded into the batch, (T * B, C, H, W)
            x = repeat_over_time(x, T)
        outs = {}
        for i in range(max(out_indices) + 1):
            x = self.downsamples[i](x)
            for block in self.stages[i]:
                x = self._run_block(block, x)
            if i in out_indices:
                outs[i] = x if T == 1 else x.unflatten(0, (T, -1)).mean(0)
        return outs

    def _level_modules(self, level: int) -> List[nn.Module]:
        return [self.downsamples[level], self.stages[level]]


# ---------------------------------------------------------------------------------------------
# ImageNet classifier (to evaluate released weights and check the reference logits)


class ESpikeFormerClassifier(SpikeClassifierMixin, nn.Module):
    """E-SpikeFormer image classifier: backbone -> global average pool -> SFA (norm 1, integer
    counts 0..D) -> Linear.

    Shape: ``(B, 3, H, W) -> (B, num_classes)``. ``load_pretrained`` of a released checkpoint loads
    the head too (use :meth:`from_pretrained`). timm's feature API offers levels 0-4 (strides
    2, 4, 8, 16, 16).
    """

    num_feature_levels = 5
    output_level = 4

    def __init__(
        self,
        arch: Arch = '19M',
        num_classes: int = 1000,
        neuron_cfg: Optional[dict] = None,
        **backbone_kwargs,
    ) -> None:
        super().__init__()
        self.backbone = ESpikeFormer(arch, out_indices=(4,), neuron_cfg=neuron_cfg, **backbone_kwargs)
        self.head_neuron = build_neuron(self.backbone.neuron_cfg, norm=1)
        self.head = nn.Linear(self.backbone.stage_channels[4], num_classes)
        trunc_normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def _feature_module(self, level: int) -> str:
        return f'backbone.stages.{level}'

    def _output(self, last: Tensor) -> Tensor:
        """Logits ``(B, num_classes)`` from the level-4 map ``(B, C3, H/16, W/16)``."""
        x = last.mean((2, 3))
        T = self.backbone.neuron_T
        if T > 1:  # multi-step head neuron: fire over T steps, average the logits
            return self.head(self.head_neuron(x.repeat(T, 1))).unflatten(0, (T, -1)).mean(0)
        return self.head(self.head_neuron(x))
