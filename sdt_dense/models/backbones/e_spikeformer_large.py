"""E-SpikeFormer "Large" family (83M / 173M) of Spike-Driven Transformer V3, for dense prediction.

Layout (strides relative to the input, ``[C0, C1, C2]`` = ``embed_dims``)::

    index 0  stem conv k7/s2 on pixels (bias) + BN, 1 conv block (C0/2)           stride 2
    index 1  SFA -> conv k3/s2 + BN, 1 conv block (C0)                            stride 4
    index 2  SFA -> conv k3/s2 + BN, 2 conv blocks (C1)                           stride 8
    index 3  SFA -> conv k3/s2 + BN -> tokens, ``depth`` transformer blocks (C2)  stride 16
    index 4  SFA -> conv k3/s2 + BN on the stride-16 map (added here, C2)         stride 32

Conv blocks are ``x + BN(conv3x3(SFA(BN(conv3x3(SFA(x))))))`` (hidden width ``mlp_ratio * C``,
convs with bias). Transformer blocks (on the ``N = H/16 * W/16`` tokens) are::

    x = x + RepConv(SFA(x))                               (83M only: ``rep_branch=True``)
    x = x + DropPath(gamma_1 * SpikeLinearAttention(x))
    x = x + DropPath(gamma_2 * TokenMLP(x))

All features are the real-valued residual streams; the stride-16 feature is the token sequence
reshaped row-major to ``(B, C2, H/16, W/16)``, taken after the last block or any chosen block.

Index 4 (``extra_stride32``, new and randomly initialised parameters) is built only when it is in
``out_indices``; why it exists: docs/differences.md, row L5.

Module names differ from the released checkpoints; :data:`sdt_dense.checkpoint.LARGE_FORMAT`
converts released files at load time.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from timm.layers import LayerScale2d
from torch import Tensor, nn

from ...checkpoint import LARGE_FORMAT
from ...registry import register_model
from ..layers import RepConv, SpikeConvBN, SpikeLinearAttention, TokenMLP, build_drop_path
from ..neurons import build_neuron, neuron_class, neuron_time_steps
from .base import Arch, SpikeBackbone, SpikeClassifierMixin

#: The neuron rules of the published Large family (``D`` comes from the arch).
LARGE_NEURON_RULES = dict(type='SFA', rounding='half_up', window='exclusive')


def large_neuron_cfg(D: int = 4, neuron_cfg: Optional[dict] = None) -> dict:
    """The neuron config of a Large model: the published rules with ``D``, updated by
    ``neuron_cfg`` (e.g. ``dict(D=8)`` or ``dict(rounding='half_even')``). A ``neuron_cfg`` naming
    another neuron type is used as it is."""
    cfg = dict(neuron_cfg or {})
    if neuron_class(cfg) is not neuron_class(LARGE_NEURON_RULES):
        return cfg
    return {**LARGE_NEURON_RULES, 'D': D, **cfg}


class LargeConvBlock(nn.Module):
    """Conv block of the Large family, ``(B, C, H, W) -> (B, C, H, W)``:
    ``x + BN(conv3x3(SFA(BN(conv3x3(SFA(x))))))``, hidden width ``mlp_ratio * C``, convs with bias
    (no separable conv, unlike the Base family)."""

    def __init__(
        self,
        dim: int,
        mlp_ratio: float = 4,
        neuron_cfg: Optional[dict] = None,
        norm_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.conv1 = SpikeConvBN(
            dim, hidden, 3, padding=1, bias=True, neuron_cfg=neuron_cfg, norm_cfg=norm_cfg
        )
        self.conv2 = SpikeConvBN(
            hidden, dim, 3, padding=1, bias=True, neuron_cfg=neuron_cfg, norm_cfg=norm_cfg
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.conv1(x))


class LargeTransformerBlock(nn.Module):
    """Transformer block of the Large family on token maps, ``(B, C, H, W) -> (B, C, H, W)``.

    Branches: the optional RepConv token branch (``rep_branch``; no layer scale, no drop path, as
    published), spike-driven linear attention and the token MLP, the last two with per-channel
    layer scale (``layer_scale_init_value``; ``None`` disables it) and drop path.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        mlp_ratio: float = 4,
        rep_branch: bool = False,
        drop_path: float = 0.0,
        drop_path_mode: str = 'sample',
        layer_scale_init_value: Optional[float] = 1e-6,
        attn_token_scale: Optional[int] = None,
        neuron_cfg: Optional[dict] = None,
        norm_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__()
        self.rep_conv = (
            RepConv(dim, dim, hidden_ratio=1, neuron_cfg=neuron_cfg, norm_cfg=norm_cfg)
            if rep_branch
            else None
        )
        self.attn = SpikeLinearAttention(
            dim, num_heads, token_scale=attn_token_scale, neuron_cfg=neuron_cfg, norm_cfg=norm_cfg
        )
        self.mlp = TokenMLP(dim, mlp_ratio, neuron_cfg=neuron_cfg, norm_cfg=norm_cfg)
        self.drop_path = build_drop_path(drop_path, drop_path_mode)
        if layer_scale_init_value is not None:
            self.ls1 = LayerScale2d(dim, layer_scale_init_value)
            self.ls2 = LayerScale2d(dim, layer_scale_init_value)
        else:
            self.ls1 = self.ls2 = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        if self.rep_conv is not None:
            # Flatten before the branch's neuron (spike-driven mode feeds its output to the conv).
            x = x + self.rep_conv(x.flatten(2)).view_as(x)
        x = x + self.drop_path(self.ls1(self.attn(x)))
        return x + self.drop_path(self.ls2(self.mlp(x)))


@register_model()
class ESpikeFormerLarge(SpikeBackbone):
    """E-SpikeFormer Large backbone (83M / 173M) for dense prediction.

    Args:
        arch: ``'83M'`` ([128, 256, 512], RepConv token branch), ``'173M'`` ([196, 384, 768], no
            branch), or a dict with ``embed_dims`` [C0, C1, C2] and optionally ``depth`` (number of
            transformer blocks, 12), ``num_heads`` (8), ``mlp_ratio`` (4), ``rep_branch`` (False)
            and ``D`` (4; the neurons' integer ceiling, 8 for the released "1x8" weights).
        in_channels: input image channels.
        out_indices: features returned, a subset of ``{0, 1, 2, 3, 4}`` = strides 2, 4, 8, 16, 32
            (widths C0/2, C0, C1, C2, C2). Index 4 adds the ``extra_stride32`` layer.
        stride16_block: which transformer block's output is the stride-16 feature (negative
            counts from the end; default the last). Later blocks are still built (so released
            weights load strictly) but not run; with DDP, freeze them or set
            ``find_unused_parameters``.
        neuron_cfg: updates the Large neuron rules ``dict(type='SFA', D=arch D,
            rounding='half_up', window='exclusive')``, e.g. ``dict(D=8)``.
        norm_cfg: ``dict(type='BN')`` or ``dict(type='SyncBN')`` (every norm is a BatchNorm).
        drop_path_rate: stochastic depth, linearly increasing over the transformer blocks from 0
            (the published fine-tuning uses 0.1).
        drop_path_mode: ``'sample'`` (default, one draw per sample) or ``'batch'`` (one draw for
            the whole batch, what the published code does).
        layer_scale_init_value: initial per-channel layer scale of the attention and MLP branches
            (1e-6 as published); ``None`` builds no layer scales (the MAE encoder).
        attn_token_scale: ``None`` (published ``0.125 q (k^T v)``) or the training token count
            ``N_train`` (196 at 224x224): attention outputs are multiplied by ``N_train / N`` so
            that the unnormalised sum over ``N`` tokens does not saturate the attention neuron
            at detection resolutions.
        frozen_stages: levels ``0..frozen_stages`` are frozen (eval mode, no gradients); 3
            freezes the trunk up to all transformer blocks; -1 freezes nothing.
        **contract: ``norm_eval``, ``with_cp``, ``save_counts``, ``init_cfg``, ``pretrained``, as
            :class:`~sdt_dense.models.backbones.base.SpikeBackbone` takes them.

    Shape:
        input ``(B, in_channels, H, W)`` with any ``H, W``; outputs ``(B, C_i, H_i, W_i)`` with
        ``H_i = ceil(H / stride_i)`` (each stride-2 layer rounds up).
    """

    # Published sizes. "83M" is the 512-wide model with the extra RepConv token branch (83.02 M
    # parameters with both classifier heads); "173M" is the 768-wide model without it (the
    # authors also call it 171M: 171.74 M with both heads).
    arch_zoo = {
        '83M': dict(embed_dims=[128, 256, 512], rep_branch=True),
        '173M': dict(embed_dims=[196, 384, 768], rep_branch=False),
    }
    arch_aliases = {'171M': '173M'}
    arch_defaults = dict(depth=12, num_heads=8, mlp_ratio=4, rep_branch=False, D=4)
    num_embed_dims = 3
    released_format = LARGE_FORMAT
    example_arch = dict(embed_dims=[16, 32, 64], depth=2, num_heads=4)

    def __init__(
        self,
        arch: Arch = '83M',
        in_channels: int = 3,
        out_indices: Sequence[int] = (1, 2, 3, 4),
        stride16_block: int = -1,
        neuron_cfg: Optional[dict] = None,
        norm_cfg: Optional[dict] = None,
        drop_path_rate: float = 0.0,
        drop_path_mode: str = 'sample',
        layer_scale_init_value: Optional[float] = 1e-6,
        attn_token_scale: Optional[int] = None,
        **contract,
    ) -> None:
        super().__init__(in_channels, out_indices, **contract)
        self.arch_settings = self.resolve_arch(arch)
        C0, C1, C2 = self.arch_settings['embed_dims']
        depth = self.arch_settings['depth']
        if not -depth <= stride16_block < depth:
            raise ValueError(f'stride16_block must index one of the {depth} blocks, got {stride16_block}')
        self.stride16_block = stride16_block % depth
        self.neuron_cfg = large_neuron_cfg(self.arch_settings['D'], neuron_cfg)
        if neuron_time_steps(self.neuron_cfg) != 1:
            raise ValueError(f'the Large backbone runs single-step neurons (SFA); got {self.neuron_cfg}')
        self.layer_scale_init_value = layer_scale_init_value
        self.num_blocks = depth

        #: widths and strides of the five feature levels
        self.stage_channels: List[int] = [C0 // 2, C0, C1, C2, C2]
        self.stage_strides: List[int] = [2, 4, 8, 16, 32]

        n = dict(neuron_cfg=self.neuron_cfg, norm_cfg=norm_cfg)
        widths = [in_channels] + self.stage_channels[:4]
        self.downsamples = nn.ModuleList()
        for i in range(4):
            k = 7 if i == 0 else 3
            self.downsamples.append(  # the stem sees real pixels: no neuron in front of it
                SpikeConvBN(widths[i], widths[i + 1], k, 2, k // 2, bias=True, with_neuron=i > 0, **n)
            )
        mlp = self.arch_settings['mlp_ratio']
        self.conv_stages = nn.ModuleList(
            nn.Sequential(*[LargeConvBlock(self.stage_channels[i], mlp, **n) for _ in range(num)])
            for i, num in enumerate((1, 1, 2))
        )
        # on the CPU explicitly: the model may be built under a meta-device context
        dpr = torch.linspace(0, drop_path_rate, depth, device='cpu').tolist()
        self.blocks = nn.ModuleList(
            LargeTransformerBlock(
                C2,
                self.arch_settings['num_heads'],
                mlp,
                self.arch_settings['rep_branch'],
                rate,
                drop_path_mode,
                layer_scale_init_value,
                attn_token_scale,
                **n,
            )
            for rate in dpr
        )
        # New parameters, absent from the released weights (LARGE_FORMAT.missing_ok).
        self.extra_stride32 = SpikeConvBN(C2, C2, 3, 2, 1, bias=True, **n) if 4 in self.out_indices else None
        self._freeze_stages()

    @classmethod
    def _check_arch(cls, settings: dict) -> None:
        if settings['depth'] < 1:
            raise ValueError(f'depth must be >= 1, got {settings["depth"]}')

    def _forward(
        self, x: Tensor, taps: Optional[Dict[str, Tensor]] = None, last: Optional[int] = None
    ) -> Dict[int, Tensor]:
        """Features up to index ``last`` (default ``max(out_indices)``) as ``{index: map}``;
        with ``taps``, every intermediate feature is recorded there by name as well."""
        last = max(self.out_indices) if last is None else last
        feats: Dict[int, Tensor] = {}
        names = ('stride2', 'stride4', 'stride8')
        for i in range(min(last, 2) + 1):
            x = self.downsamples[i](x)
            for block in self.conv_stages[i]:
                x = self._run_block(block, x)
            feats[i] = x
            if taps is not None:
                taps[names[i]] = x
        if last < 3:
            return feats
        x = self.downsamples[3](x)  # (B, C2, H/16, W/16): tokens kept as a row-major map
        if taps is not None:
            taps['stride16_in'] = x
        for j in range(self.stride16_block + 1):
            x = self._run_block(self.blocks[j], x)
            if taps is not None:
                taps[f'block{j}'] = x
        feats[3] = x
        if last >= 4 and self.extra_stride32 is not None:
            feats[4] = self.extra_stride32(x)
            if taps is not None:
                taps['stride32'] = feats[4]
        return feats

    def _forward_levels(self, x: Tensor, out_indices: Tuple[int, ...]) -> Dict[int, Tensor]:
        if 4 in out_indices and self.extra_stride32 is None:
            raise ValueError(
                "the stride-32 level (index 4) is only built when the constructor's out_indices include 4"
            )
        return self._forward(x, last=max(out_indices))

    def forward_taps(self, x: Tensor) -> Dict[str, Tensor]:
        """Every intermediate feature by name: ``stride2``, ``stride4``, ``stride8``,
        ``stride16_in`` (after the stride-16 downsampling), ``block0`` ... (each transformer
        block's output, up to ``stride16_block``) and ``stride32`` when built. Maps are
        ``(B, C, H_i, W_i)``; token maps are the row-major reshape of the token sequence."""
        taps: Dict[str, Tensor] = {}
        self._forward(x, taps, last=4)
        return taps

    def get_layer_id(self, param_name: str) -> int:
        """Layer id of a parameter (name relative to this module) for layer-wise lr decay:
        the conv trunk up to the stride-16 downsampling is 0, transformer block ``j`` is
        ``j + 1``, anything else (the added stride-32 layer) ``num_blocks + 1``."""
        if param_name.startswith(('downsamples.', 'conv_stages.')):
            return 0
        if param_name.startswith('blocks.'):
            return int(param_name.split('.')[1]) + 1
        return self.num_blocks + 1

    def _level_modules(self, level: int) -> List[nn.Module]:
        if level < 3:
            return [self.downsamples[level], self.conv_stages[level]]
        if level == 3:
            return [self.downsamples[3], self.blocks]
        return [] if self.extra_stride32 is None else [self.extra_stride32]


# ---------------------------------------------------------------------------------------------
# ImageNet classifier (to evaluate released weights and check the reference outputs)


class ESpikeFormerLargeClassifier(SpikeClassifierMixin, nn.Module):
    """E-SpikeFormer Large image classifier, as published.

    ``pooled`` = mean of the last block's tokens ``(B, C2)``; ``head`` is a Linear on that
    real-valued mean (not on spikes); with ``kd``, ``head_kd`` is a Linear on the integer spike
    counts of ``pooled`` (SFA with ``norm=1``, values ``0..D``), the distillation head.

    Returns: without ``kd``, ``logits_cls``; with ``kd``, the pair ``(logits_cls, logits_kd)`` in
    train mode and ``(logits_cls + logits_kd) / 2`` in eval mode. Shape ``(B, num_classes)``.

    Args:
        arch: see :class:`ESpikeFormerLarge`.
        num_classes: classes of both heads.
        kd: build the distillation head.
        neuron_cfg, backbone_kwargs: passed to the backbone (``out_indices`` is fixed to the
            stride-16 feature after the last block).
    """

    #: levels timm's feature API offers: the released trunk's strides 2, 4, 8, 16 (the dense
    #: stride-32 level is new and not part of the classifier)
    num_feature_levels = 4
    output_level = 3

    def __init__(
        self,
        arch: Arch = '83M',
        num_classes: int = 1000,
        kd: bool = False,
        neuron_cfg: Optional[dict] = None,
        **backbone_kwargs,
    ) -> None:
        super().__init__()
        self.backbone = ESpikeFormerLarge(arch, out_indices=(3,), neuron_cfg=neuron_cfg, **backbone_kwargs)
        dim = self.backbone.stage_channels[3]
        self.kd = kd
        self.head = nn.Linear(dim, num_classes)
        self.head_neuron = build_neuron(self.backbone.neuron_cfg, norm=1) if kd else None
        self.head_kd = nn.Linear(dim, num_classes) if kd else None
        for head in (self.head, self.head_kd):
            if head is not None:
                nn.init.xavier_uniform_(head.weight)
                nn.init.zeros_(head.bias)

    def _heads(self, pooled: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        logits = self.head(pooled)
        if not self.kd:
            return logits, None
        return logits, self.head_kd(self.head_neuron(pooled))

    @staticmethod
    def _pool(x: Tensor) -> Tensor:
        return x.flatten(2).mean(-1)  # (B, C2, H, W) -> (B, C2): mean over tokens

    def _output(self, last: Tensor) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """What :meth:`forward` returns, from the stride-16 map ``(B, C2, H/16, W/16)``."""
        logits, logits_kd = self._heads(self._pool(last))
        if logits_kd is None:
            return logits
        return (logits, logits_kd) if self.training else (logits + logits_kd) / 2

    def _feature_module(self, level: int) -> str:
        if level < 3:
            return f'backbone.conv_stages.{level}'
        return f'backbone.blocks.{self.backbone.stride16_block}'

    def forward_taps(self, x: Tensor) -> Dict[str, Tensor]:
        """The backbone's :meth:`~ESpikeFormerLarge.forward_taps` plus ``pooled``,
        ``logits_cls``, ``logits_kd`` (with ``kd``) and ``logits`` (what ``forward`` returns in
        eval mode)."""
        taps = self.backbone.forward_taps(x)
        taps['pooled'] = self._pool(taps[f'block{self.backbone.stride16_block}'])
        taps['logits_cls'], logits_kd = self._heads(taps['pooled'])
        taps['logits'] = taps['logits_cls']
        if logits_kd is not None:
            taps['logits_kd'] = logits_kd
            taps['logits'] = (taps['logits_cls'] + logits_kd) / 2
        return taps
