"""E-SpikeFormer (Spike-Driven Transformer V3), the published "Base" family.

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

from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from timm.layers import DropPath, trunc_normal_
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ...checkpoint import (
    BASE_FORMAT,
    extract_state_dict,
    load_pretrained,
    match_state_dict,
    pretrained_to_init_cfg,
    safe_load,
)
from ...registry import register_model
from ..layers import ConvMLP, LayerScale, SepConv, SpikeConvBN, SpikeDrivenSelfAttention, TokenMLP
from ..neurons import build_neuron, neuron_time_steps, repeat_over_time
from ..neurons.saved_counts import check_save_counts, saving_context

# Published sizes: the embed dims are the only difference (heads 8, MLP ratio 4, blocks 1+1/2/6/2).
ARCH_ZOO: Dict[str, dict] = {
    't': dict(embed_dims=[24, 48, 96, 128]),
    's': dict(embed_dims=[32, 64, 128, 192]),   # "5.1M"
    'm': dict(embed_dims=[48, 96, 192, 240]),   # "10M"
    'l': dict(embed_dims=[64, 128, 256, 360]),  # "19M"
}
ARCH_ALIASES = {'5.1M': 's', '10M': 'm', '19M': 'l', 'tiny': 't', 'small': 's',
                'medium': 'm', 'large': 'l'}
_ARCH_DEFAULTS = dict(depths=[1, 1, 2, 6, 2], num_heads=8, mlp_ratio=4, value_ratio=4)


class ConvBlock(nn.Module):
    """Conv-based SNN block, ``(B, C, H, W) -> (B, C, H, W)``:
    ``x + SepConv_k7(x)``, then ``x + ConvMLP(x)``."""

    def __init__(self, dim: int, mlp_ratio: float = 4, drop_path: float = 0.,
                 neuron_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None) -> None:
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

    def __init__(self, dim: int, num_heads: int = 8, mlp_ratio: float = 4,
                 value_ratio: int = 4, drop_path: float = 0.,
                 layer_scale_init_value: Optional[float] = None,
                 neuron_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None) -> None:
        super().__init__()
        self.sepconv = SepConv(dim, 3, neuron_cfg=neuron_cfg, norm_cfg=norm_cfg)
        self.attn = SpikeDrivenSelfAttention(dim, num_heads, value_ratio, neuron_cfg, norm_cfg)
        self.mlp = TokenMLP(dim, mlp_ratio, neuron_cfg=neuron_cfg, norm_cfg=norm_cfg)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        if layer_scale_init_value is not None:
            self.ls1 = LayerScale(dim, layer_scale_init_value)
            self.ls2 = LayerScale(dim, layer_scale_init_value)
            self.ls3 = LayerScale(dim, layer_scale_init_value)
        else:
            self.ls1 = self.ls2 = self.ls3 = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.ls1(self.sepconv(x)))
        x = x + self.drop_path(self.ls2(self.attn(x)))
        return x + self.drop_path(self.ls3(self.mlp(x)))


def resolve_arch(arch: Union[str, dict]) -> dict:
    """Full arch settings from a zoo name (``'t'``, ``'s'``, ``'m'``, ``'l'``, or ``'10M'``-style
    aliases) or a dict with at least ``embed_dims`` (4 widths)."""
    if isinstance(arch, str):
        key = ARCH_ALIASES.get(arch, arch.lower())
        if key not in ARCH_ZOO:
            raise KeyError(f'unknown arch {arch!r}; valid: {sorted(ARCH_ZOO)} '
                           f'(aliases {sorted(ARCH_ALIASES)}) or a dict with embed_dims')
        arch = ARCH_ZOO[key]
    if not isinstance(arch, dict) or 'embed_dims' not in arch:
        raise TypeError(f'arch must be a name or a dict with embed_dims, got {arch!r}')
    unknown = set(arch) - set(_ARCH_DEFAULTS) - {'embed_dims'}
    if unknown:
        raise KeyError(f'unknown arch keys {sorted(unknown)}; valid: '
                       f'{sorted(set(_ARCH_DEFAULTS) | {"embed_dims"})}')
    settings = {**_ARCH_DEFAULTS, **arch}
    if len(settings['embed_dims']) != 4 or len(settings['depths']) != 5:
        raise ValueError('arch needs 4 embed_dims and 5 depths (stage 0..4)')
    if settings['embed_dims'][0] % 2:
        raise ValueError('embed_dims[0] must be even (stage 0 has embed_dims[0] / 2 channels)')
    return settings


@register_model()
class ESpikeFormer(BaseModule):
    """E-SpikeFormer backbone for dense prediction.

    Args:
        arch: ``'t'``, ``'s'`` (5.1M), ``'m'`` (10M), ``'l'`` (19M) or a dict with ``embed_dims``
            (and optionally ``depths`` (5 ints), ``num_heads``, ``mlp_ratio``, ``value_ratio``).
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
        frozen_stages: stages ``0..frozen_stages`` are frozen (eval mode, no gradients); -1 freezes
            nothing.
        norm_eval: keep every BN in eval mode during training (frozen statistics).
        with_cp: activation checkpointing of each block (saves memory, costs a recomputation).
        save_counts: what backward keeps of the spiking units: ``'recompute'`` (default) the
            neurons' outputs as count codes (two per byte at ``D <= 14``), the gradient windows as
            bits, and the conv and BN outputs as recipes run again in backward; ``True`` codes and
            bits only; ``False`` float tensors (see :class:`~sdt_dense.models.neurons.SavedCounts`).
            Gradients are the same bits in all three.
        init_cfg: mmengine init config; ``dict(type='Pretrained', checkpoint=PATH)`` loads a released
            classification checkpoint or one of our detectors/segmentors strictly (see
            :func:`load_pretrained`).
        pretrained: deprecated spelling of ``init_cfg=dict(type='Pretrained', checkpoint=PATH)``
            (mmseg's ``EncoderDecoder`` passes ``model.pretrained`` this way); not with ``init_cfg``.

    Shape:
        input ``(B, in_channels, H, W)`` with any ``H, W``; output a tuple of ``(B, C_i, H_i, W_i)``
        with ``H_i = ceil(H / stride_i)`` (each stride-2 conv rounds up).
    """

    #: Layout of the released classification files (converted at load time).
    released_format = BASE_FORMAT

    def __init__(self, arch: Union[str, dict] = 'l', in_channels: int = 3,
                 out_indices: Sequence[int] = (1, 2, 3, 4), last_stride: int = 1,
                 neuron_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None,
                 drop_path_rate: float = 0., layer_scale_init_value: Optional[float] = None,
                 frozen_stages: int = -1, norm_eval: bool = False, with_cp: bool = False,
                 init_cfg: Optional[dict] = None, pretrained: Optional[str] = None,
                 save_counts: Union[bool, str] = 'recompute') -> None:
        super().__init__(init_cfg=pretrained_to_init_cfg(pretrained, init_cfg))
        self.save_counts = check_save_counts(save_counts)
        self.arch_settings = resolve_arch(arch)
        C0, C1, C2, C3 = self.arch_settings['embed_dims']
        depths = self.arch_settings['depths']
        out_indices = tuple(out_indices)
        if not out_indices or any(i not in range(5) for i in out_indices):
            raise ValueError(f'out_indices must be a non-empty subset of 0..4, got {out_indices}')
        if last_stride not in (1, 2):
            raise ValueError(f'last_stride must be 1 (published) or 2, got {last_stride}')
        self.out_indices = out_indices
        self.last_stride = last_stride
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.neuron_cfg = dict(neuron_cfg or dict(type='SFA', D=4))
        #: real timesteps the input is repeated over (1 for SFA, T for LIF)
        self.time_steps = neuron_time_steps(self.neuron_cfg)
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
                SpikeConvBN(widths[i], widths[i + 1], k, s, k // 2, bias=True,
                            with_neuron=i > 0, **n))  # the stem sees real pixels: no neuron

        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        mlp, heads = self.arch_settings['mlp_ratio'], self.arch_settings['num_heads']
        self.stages = nn.ModuleList()
        for i in range(len(depths)):
            dim, rates = self.stage_channels[i], dpr[sum(depths[:i]):sum(depths[:i + 1])]
            if i < 3:
                blocks = [ConvBlock(dim, mlp, r, **n) for r in rates]
            else:
                blocks = [TransformerBlock(dim, heads, mlp, self.arch_settings['value_ratio'],
                                           r, layer_scale_init_value, **n) for r in rates]
            self.stages.append(nn.Sequential(*blocks))
        self._freeze_stages()

    @property
    def out_channels(self) -> List[int]:
        """Channels of the returned feature maps, in ``out_indices`` order."""
        return [self.stage_channels[i] for i in self.out_indices]

    @property
    def out_strides(self) -> List[int]:
        """True strides of the returned feature maps, in ``out_indices`` order."""
        return [self.stage_strides[i] for i in self.out_indices]

    def _run_stage(self, i: int, x: Tensor) -> Tensor:
        x = self.downsamples[i](x)
        for block in self.stages[i]:
            if self.with_cp and x.requires_grad:
                x = cp.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x

    def forward(self, x: Tensor, out_indices: Optional[Sequence[int]] = None
                ) -> Tuple[Tensor, ...]:
        """``(B, C_in, H, W)`` -> the stage outputs of ``out_indices`` (default: the constructor's),
        each ``(B, C_i, H_i, W_i)``; stages after the last requested one are not run."""
        out_indices = self.out_indices if out_indices is None else tuple(out_indices)
        T = self.time_steps
        if T > 1:  # multi-step neurons: time folded into the batch, (T * B, C, H, W)
            x = repeat_over_time(x, T)
        outs = []
        with saving_context(self.save_counts):
            for i in range(max(out_indices) + 1):
                x = self._run_stage(i, x)
                if i in out_indices:
                    outs.append(x if T == 1 else x.unflatten(0, (T, -1)).mean(0))
        return tuple(outs)

    def _freeze_stages(self) -> None:
        for i in range(self.frozen_stages + 1):
            for module in (self.downsamples[i], self.stages[i]):
                module.eval()
                for p in module.parameters():
                    p.requires_grad = False

    def train(self, mode: bool = True) -> 'ESpikeFormer':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def init_weights(self) -> None:
        """Load ``init_cfg=dict(type='Pretrained', checkpoint=...)`` strictly; any other init_cfg is
        handled by mmengine. Without init_cfg, layers keep PyTorch's default init (as published)."""
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            load_pretrained(self, cfg['checkpoint'], prefix=cfg.get('prefix'))
            self._is_init = True
            return
        super().init_weights()


# ---------------------------------------------------------------------------------------------
# ImageNet classifier (to evaluate released weights and check the reference logits)


class ESpikeFormerClassifier(nn.Module):
    """E-SpikeFormer image classifier: backbone -> global average pool -> SFA (norm 1, integer
    counts 0..D) -> Linear.

    Shape: ``(B, 3, H, W) -> (B, num_classes)``. ``load_pretrained`` of a released checkpoint loads
    the head too (use :meth:`from_pretrained`).
    """

    def __init__(self, arch: Union[str, dict] = 'l', num_classes: int = 1000,
                 neuron_cfg: Optional[dict] = None, **backbone_kwargs) -> None:
        super().__init__()
        self.backbone = ESpikeFormer(arch, out_indices=(4,), neuron_cfg=neuron_cfg,
                                     **backbone_kwargs)
        self.head_neuron = build_neuron(self.backbone.neuron_cfg, norm=1)
        self.head = nn.Linear(self.backbone.stage_channels[4], num_classes)
        trunc_normal_(self.head.weight, std=.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self._classify(self.backbone(x)[0])

    @property
    def feature_info(self) -> List[dict]:
        """timm's description of the dense taps (stages 0-4)."""
        bb = self.backbone
        return [dict(num_chs=c, reduction=r, module=f'backbone.stages.{i}')
                for i, (c, r) in enumerate(zip(bb.stage_channels, bb.stage_strides))]

    def forward_intermediates(self, x: Tensor, indices: Union[int, Sequence[int], None] = None,
                              norm: bool = False, output_fmt: str = 'NCHW',
                              intermediates_only: bool = False, stop_early: bool = False):
        """timm's feature API (``features_only=True``): the stage outputs ``indices`` (stage
        numbers 0-4, or an int ``n`` for the last ``n``), each ``(B, C_i, H_i, W_i)``.

        With ``intermediates_only=False`` also returns the logits (the whole network is run).
        """
        if output_fmt != 'NCHW':
            raise ValueError(f'output_fmt {output_fmt!r} is not supported (only NCHW)')
        num = len(self.backbone.stage_channels)
        if indices is None:
            indices = list(range(num))
        elif isinstance(indices, int):
            indices = list(range(num - indices, num))
        taps = list(self.backbone(x, indices if intermediates_only else sorted({*indices, 4})))
        if intermediates_only:
            return taps
        last = taps[-1]
        feats = [t for i, t in zip(sorted({*indices, 4}), taps) if i in indices]
        return self._classify(last), feats

    def _classify(self, x: Tensor) -> Tensor:
        x = x.mean((2, 3))
        T = self.backbone.time_steps
        if T > 1:  # multi-step head neuron: fire over T steps, average the logits
            return self.head(self.head_neuron(x.repeat(T, 1))).unflatten(0, (T, -1)).mean(0)
        return self.head(self.head_neuron(x))

    def load_pretrained(self, path: str) -> None:
        """Strictly load a released classification checkpoint, or one converted by
        ``tools/model_converters/official2sdt.py`` (backbone and head)."""
        state_dict = extract_state_dict(safe_load(path))
        if BASE_FORMAT.detect(state_dict):
            state_dict = BASE_FORMAT.to_classifier(state_dict)
        self.load_state_dict(match_state_dict(self, state_dict))

    @classmethod
    def from_pretrained(cls, path: str, arch: Union[str, dict], **kwargs) -> 'ESpikeFormerClassifier':
        model = cls(arch, **kwargs)
        model.load_pretrained(path)
        return model
