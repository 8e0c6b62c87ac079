"""Layer-wise learning-rate decay for the E-SpikeFormer Large backbone.

mmdet's ``LearningRateDecayOptimizerConstructor`` only knows ConvNeXt parameter names
(``backbone.downsample_layers`` / ``backbone.stages``), and mmseg's versions know ConvNeXt and
BEiT/MAE ViTs (``backbone.patch_embed`` -> 0, ``backbone.layers.i`` -> i + 1, anything else ->
the top id). Neither fits this backbone: its stem is four conv stages (``downsamples``,
``conv_stages``), which the ViT rule would put at the top id, i.e. at the full learning rate. The
constructor here asks the backbone for each parameter's layer id instead
(``ESpikeFormerLarge.get_layer_id``), so the rule lives next to the module names it depends on.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

__all__ = ['LargeLayerDecayOptimWrapperConstructor', 'find_layered_backbone']


def find_layered_backbone(model: nn.Module) -> Tuple[str, nn.Module]:
    """The one submodule of ``model`` that assigns layer ids (has ``get_layer_id`` and
    ``num_blocks``), with its name prefix (``'backbone.'``, or ``''`` for the model itself)."""
    found = [
        (name, m)
        for name, m in model.named_modules()
        if callable(getattr(m, 'get_layer_id', None)) and hasattr(m, 'num_blocks')
    ]
    if len(found) != 1:
        raise TypeError(
            f'layer-wise lr decay needs exactly one backbone that defines '
            f'get_layer_id() and num_blocks (ESpikeFormerLarge) in '
            f'{type(model).__name__}; found {len(found)}: {[n for n, _ in found]}'
        )
    name, module = found[0]
    return (f'{name}.' if name else ''), module


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LargeLayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Parameter groups with layer-wise lr decay, as the published Large fine-tuning uses.

    Layer ids: the conv trunk (stem, conv stages, stride-16 downsampling) is 0, transformer block
    ``j`` is ``j + 1``, everything else (neck, heads, the added stride-32 layer) is
    ``num_blocks + 1``. A parameter with id ``i`` gets ``lr = base_lr * rate ** (num_blocks + 1 -
    i)``: with 12 blocks and rate 0.75 the stem trains at ``0.75 ** 13 = 0.02376`` of the base lr,
    block 0 at ``0.75 ** 12``, block 11 at ``0.75``, heads at 1. One-dimensional parameters (norm
    weights and biases, conv/linear biases, layer scales) get no weight decay; the others get the
    optimizer's ``weight_decay``. Frozen parameters are left out.

    Config::

        optim_wrapper = dict(
            type='OptimWrapper',
            optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
            constructor='LargeLayerDecayOptimWrapperConstructor',
            paramwise_cfg=dict(layer_decay_rate=0.75))

    ``paramwise_cfg`` accepts only ``layer_decay_rate`` (default 0.75); mmengine's other paramwise
    options are not combined with the layer groups, so they raise instead of being ignored.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None) -> None:
        paramwise_cfg = dict(paramwise_cfg or {})
        unknown = set(paramwise_cfg) - {'layer_decay_rate'}
        if unknown:
            raise KeyError(
                f'{type(self).__name__} supports only paramwise_cfg='
                f'dict(layer_decay_rate=...); got {sorted(unknown)}'
            )
        rate = float(paramwise_cfg.setdefault('layer_decay_rate', 0.75))
        if not 0 < rate <= 1:
            raise ValueError(f'layer_decay_rate must be in (0, 1], got {rate}')
        self.layer_decay_rate = rate
        super().__init__(optim_wrapper_cfg, paramwise_cfg)

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '', **kwargs) -> None:
        """Append one group per (layer id, decay / no decay) to ``params``."""
        backbone_prefix, backbone = find_layered_backbone(module)
        top = backbone.num_blocks + 1
        base_wd = self.base_wd or 0.0
        groups: Dict[Tuple[int, bool], dict] = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            if name.startswith(backbone_prefix):
                layer_id = backbone.get_layer_id(name[len(backbone_prefix) :])
            else:
                layer_id = top
            no_decay = param.ndim <= 1
            key = (layer_id, no_decay)
            if key not in groups:
                scale = self.layer_decay_rate ** (top - layer_id)
                groups[key] = dict(
                    params=[],
                    lr=self.base_lr * scale,
                    lr_scale=scale,
                    layer_id=layer_id,
                    weight_decay=0.0 if no_decay else base_wd,
                )
            groups[key]['params'].append(param)
        for key in sorted(groups):
            params.append(groups[key])
        print_log(
            f'layer-wise lr decay {self.layer_decay_rate}: {len(groups)} parameter groups, '
            f'lr scales {self.layer_decay_rate:g}^{top}..1 over layer ids 0..{top}',
            logger='current',
        )
