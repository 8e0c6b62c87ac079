"""The contract every backbone family keeps, and what the image classifiers on top share.

A backbone maps an image ``(B, in_channels, H, W)`` to a tuple of real-valued feature maps
``(B, C_i, ceil(H / s_i), ceil(W / s_i))``, one per level ``i`` in ``out_indices``. Levels are
numbered ``0 .. num_levels - 1`` from the stem; ``stage_channels[i]`` and ``stage_strides[i]``
declare ``C_i`` and ``s_i``, and :attr:`~SpikeBackbone.out_channels` /
:attr:`~SpikeBackbone.out_strides` are their values in ``out_indices`` order (what necks read).

A family is one subclass that sets the class attributes ``arch_zoo`` (the published sizes by the
paper's names), ``arch_aliases``, ``arch_defaults`` and ``released_format``, builds its layers,
and implements ``_forward_levels`` and ``_level_modules``. Everything else — arch names,
``out_indices`` validation, ``frozen_stages`` / ``norm_eval``, ``with_cp``, ``save_counts`` and
``init_cfg=dict(type='Pretrained', ...)`` — is here, the same for every family.
"""

from __future__ import annotations

from typing import ClassVar, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from timm.models._features import feature_take_indices  # private module: timm is pinned below 1.1
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ...checkpoint import (
    ReleasedFormat,
    extract_state_dict,
    load_pretrained,
    match_state_dict,
    pretrained_to_init_cfg,
    safe_load,
)
from ..neurons.saved_counts import check_save_counts, saving_context

Arch = Union[str, dict]


class SpikeBackbone(BaseModule):
    """Base class of the E-SpikeFormer backbone families.

    Args:
        in_channels: input channels.
        out_indices: levels returned by :meth:`forward`, a non-empty subset of
            ``0 .. num_levels - 1``.
        frozen_stages: levels ``0 .. frozen_stages`` are frozen (eval mode, no gradients); -1
            freezes nothing.
        norm_eval: keep every BatchNorm in eval mode during training (frozen statistics).
        with_cp: activation checkpointing of each block (saves memory, costs a recomputation).
        save_counts: what backward keeps of the spiking units: ``'recompute'`` (default) the
            neurons' outputs as count codes, the gradient windows as bits, and the conv and BN
            outputs as recipes run again in backward; ``True`` codes and bits only; ``False``
            float tensors (see :class:`~sdt_dense.models.neurons.SavedCounts`). Gradients are the
            same bits in all three (on CPU).
        init_cfg: mmengine init config; ``dict(type='Pretrained', checkpoint=PATH[, prefix=...])``
            loads a released classification checkpoint or one of our detectors/segmentors
            strictly (:func:`~sdt_dense.checkpoint.load_pretrained`).
        pretrained: deprecated spelling of that ``init_cfg`` (mmseg's ``EncoderDecoder`` passes
            ``model.pretrained`` this way); not together with ``init_cfg``.
    """

    #: published sizes by the paper's names -> the arch settings that differ from the defaults
    arch_zoo: ClassVar[Dict[str, dict]] = {}
    #: other accepted names -> a key of ``arch_zoo``
    arch_aliases: ClassVar[Dict[str, str]] = {}
    #: settings an arch dict may override (``embed_dims`` is always required)
    arch_defaults: ClassVar[dict] = {}
    #: number of ``embed_dims`` an arch has
    num_embed_dims: ClassVar[int] = 0
    #: layout of the released classification files (converted at load time)
    released_format: ClassVar[Optional[ReleasedFormat]] = None
    #: feature levels ``0 .. num_levels - 1``
    num_levels: ClassVar[int] = 5
    #: a small arch of the family for quick checks (the backbone contract test, examples)
    example_arch: ClassVar[Optional[Arch]] = None

    #: every class that defines its own ``arch_zoo``, to say which family owns a name
    _families: ClassVar[List[type]] = []

    stage_channels: List[int]
    stage_strides: List[int]

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if 'arch_zoo' in cls.__dict__:
            SpikeBackbone._families.append(cls)

    def __init__(
        self,
        in_channels: int,
        out_indices: Sequence[int],
        frozen_stages: int = -1,
        norm_eval: bool = False,
        with_cp: bool = False,
        save_counts: Union[bool, str] = 'recompute',
        init_cfg: Optional[dict] = None,
        pretrained: Optional[str] = None,
    ) -> None:
        super().__init__(init_cfg=pretrained_to_init_cfg(pretrained, init_cfg))
        self.in_channels = in_channels
        self.out_indices = self.check_out_indices(out_indices)
        if not -1 <= frozen_stages < self.num_levels:
            raise ValueError(f'frozen_stages must be -1 .. {self.num_levels - 1}, got {frozen_stages}')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.save_counts = check_save_counts(save_counts)

    # ---- arch names ---------------------------------------------------------------------------

    @classmethod
    def _arch_lookup(cls) -> Dict[str, str]:
        """Lower-cased accepted name -> zoo key."""
        names = {k.lower(): k for k in cls.arch_zoo}
        names.update({alias.lower(): key for alias, key in cls.arch_aliases.items()})
        return names

    @classmethod
    def canonical_arch(cls, name: str) -> str:
        """The zoo key of an arch name or alias (case-insensitive), e.g. ``'19m'`` -> ``'19M'``.

        Raises:
            KeyError: the name is not one of this family's; the message lists the valid ones and
                names the family that owns it, if another one does.
        """
        key = cls._arch_lookup().get(str(name).lower())
        if key is not None:
            return key
        owners = [
            f.__name__
            for f in SpikeBackbone._families
            if f is not cls and str(name).lower() in f._arch_lookup()
        ]
        owner = f' ({", ".join(owners)} has an arch of that name)' if owners else ''
        raise KeyError(
            f'unknown arch {name!r} for {cls.__name__}{owner}; valid: '
            f'{list(cls.arch_zoo)}, aliases {list(cls.arch_aliases)}, or a dict with '
            f'embed_dims'
        )

    @classmethod
    def resolve_arch(cls, arch: Arch) -> dict:
        """Full arch settings from a name (see :meth:`canonical_arch`) or a dict with at least
        ``embed_dims`` (``num_embed_dims`` widths) and any of the keys of ``arch_defaults``."""
        if isinstance(arch, str):
            arch = cls.arch_zoo[cls.canonical_arch(arch)]
        if not isinstance(arch, dict) or 'embed_dims' not in arch:
            raise TypeError(f'arch must be a name or a dict with embed_dims, got {arch!r}')
        valid = set(cls.arch_defaults) | {'embed_dims'}
        unknown = set(arch) - valid
        if unknown:
            raise KeyError(f'unknown arch keys {sorted(unknown)}; valid: {sorted(valid)}')
        settings = {**cls.arch_defaults, **arch}
        settings['embed_dims'] = list(settings['embed_dims'])
        if len(settings['embed_dims']) != cls.num_embed_dims:
            raise ValueError(f'arch needs {cls.num_embed_dims} embed_dims, got {settings["embed_dims"]}')
        if settings['embed_dims'][0] % 2:
            raise ValueError('embed_dims[0] must be even (level 0 has embed_dims[0] / 2 channels)')
        cls._check_arch(settings)
        return settings

    @classmethod
    def _check_arch(cls, settings: dict) -> None:
        """Family-specific checks of resolved arch settings (raise ``ValueError``)."""

    # ---- levels -------------------------------------------------------------------------------

    @classmethod
    def check_out_indices(cls, out_indices: Sequence[int]) -> Tuple[int, ...]:
        out_indices = tuple(out_indices)
        if not out_indices or any(i not in range(cls.num_levels) for i in out_indices):
            raise ValueError(
                f'out_indices must be a non-empty subset of 0..{cls.num_levels - 1}, got {out_indices}'
            )
        return out_indices

    def example_input(self, batch: int = 2, height: int = 64, width: int = 64) -> Tensor:
        """A random input of the shape :meth:`forward` takes, ``(B, in_channels, H, W)``."""
        return torch.randn(batch, self.in_channels, height, width)

    @property
    def out_channels(self) -> List[int]:
        """Channels of the returned feature maps, in ``out_indices`` order."""
        return [self.stage_channels[i] for i in self.out_indices]

    @property
    def out_strides(self) -> List[int]:
        """True strides of the returned feature maps, in ``out_indices`` order."""
        return [self.stage_strides[i] for i in self.out_indices]

    def forward(self, x: Tensor, out_indices: Optional[Sequence[int]] = None) -> Tuple[Tensor, ...]:
        """``(B, C_in, H, W)`` -> the levels ``out_indices`` (default: the constructor's), each
        ``(B, C_i, H_i, W_i)``; nothing after the last requested level is run."""
        out_indices = self.out_indices if out_indices is None else self.check_out_indices(out_indices)
        with saving_context(self.save_counts):
            feats = self._forward_levels(x, out_indices)
        return tuple(feats[i] for i in out_indices)

    def _forward_levels(self, x: Tensor, out_indices: Tuple[int, ...]) -> Dict[int, Tensor]:
        """``{level: map}`` for at least the levels ``out_indices``."""
        raise NotImplementedError

    def _level_modules(self, level: int) -> List[nn.Module]:
        """The modules that compute ``level`` from the level before (frozen together)."""
        raise NotImplementedError

    def _run_block(self, block: nn.Module, x: Tensor) -> Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(block, x, use_reentrant=False)
        return block(x)

    # ---- training state and weights -----------------------------------------------------------

    def _freeze_stages(self) -> None:
        for level in range(self.frozen_stages + 1):
            for module in self._level_modules(level):
                module.eval()
                for p in module.parameters():
                    p.requires_grad = False

    def train(self, mode: bool = True) -> 'SpikeBackbone':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def init_weights(self) -> None:
        """Load ``init_cfg=dict(type='Pretrained', checkpoint=...)`` strictly (tensors the
        released files lack keep their init); any other init_cfg is handled by mmengine. Without
        init_cfg, layers keep PyTorch's default init (as published)."""
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            load_pretrained(self, cfg['checkpoint'], prefix=cfg.get('prefix'))
            self._is_init = True
            return
        super().init_weights()


class SpikeClassifierMixin:
    """What the ImageNet classifiers of every family share: strict loading of released files and
    timm's feature API. A classifier sets ``backbone`` (a :class:`SpikeBackbone`),
    ``num_feature_levels``, ``output_level`` (the level its head reads) and implements
    ``_output`` (that level's map -> what ``forward`` returns) and ``_feature_module``."""

    backbone: SpikeBackbone
    #: levels timm's feature API offers (``0 .. num_feature_levels - 1``)
    num_feature_levels: ClassVar[int] = 5
    #: the backbone level the classification head reads
    output_level: ClassVar[int] = 4

    def _output(self, last: Tensor):
        raise NotImplementedError

    def _feature_module(self, level: int) -> str:
        """Name of the module whose output is ``level`` (timm's ``feature_info``)."""
        raise NotImplementedError

    def forward(self, x: Tensor):
        return self._output(self.backbone(x, (self.output_level,))[0])

    @property
    def feature_info(self) -> List[dict]:
        """timm's description of the dense taps (levels ``0 .. num_feature_levels - 1``)."""
        bb = self.backbone
        return [
            dict(num_chs=bb.stage_channels[i], reduction=bb.stage_strides[i], module=self._feature_module(i))
            for i in range(self.num_feature_levels)
        ]

    def forward_intermediates(
        self,
        x: Tensor,
        indices: Union[int, Sequence[int], None] = None,
        norm: bool = False,
        output_fmt: str = 'NCHW',
        intermediates_only: bool = False,
        stop_early: bool = False,
    ):
        """timm's feature API (``features_only=True``): the levels ``indices`` (level numbers,
        negative from the end, or an int ``n`` for the last ``n``; default all), in ascending
        order, each ``(B, C_i, H_i, W_i)``.

        With ``intermediates_only=False`` returns ``(output, features)``, ``output`` being what
        :meth:`forward` returns (the whole network is run). ``norm`` and ``stop_early`` change
        nothing: there is no final norm, and nothing after the last requested level is run.
        """
        if output_fmt != 'NCHW':
            raise ValueError(f'output_fmt {output_fmt!r} is not supported (only NCHW)')
        num = self.num_feature_levels
        if isinstance(indices, int):
            if not 0 < indices <= num:
                raise ValueError(f'indices must be levels 0..{num - 1} or a count 1..{num}, got {indices}')
        elif indices is not None and (not list(indices) or any(not -num <= i < num for i in indices)):
            raise ValueError(f'indices must be levels 0..{num - 1} (negative: from the end), got {indices}')
        take = sorted(feature_take_indices(num, indices)[0])
        run = take if intermediates_only else sorted({*take, self.output_level})
        taps = dict(zip(run, self.backbone(x, run)))
        feats = [taps[i] for i in take]
        if intermediates_only:
            return feats
        return self._output(taps[self.output_level]), feats

    def load_pretrained(self, path: str) -> None:
        """Strictly and safely load a released classification checkpoint (backbone and heads)
        or a state dict of this class."""
        state_dict = extract_state_dict(safe_load(path))
        fmt = self.backbone.released_format
        if fmt is not None and fmt.detect(state_dict):
            state_dict = fmt.to_classifier(state_dict)
        self.load_state_dict(match_state_dict(self, state_dict))

    @classmethod
    def from_pretrained(cls, path: str, arch: Arch, **kwargs) -> nn.Module:
        """``cls(arch, **kwargs)`` with the weights of ``path`` (see :meth:`load_pretrained`)."""
        model = cls(arch, **kwargs)
        model.load_pretrained(path)
        return model
