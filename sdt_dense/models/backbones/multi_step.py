"""E-SpikeFormer over T real timesteps: event-camera inputs ``(B, T, C, H, W)``.

Event representations give ``T`` real timesteps (time bins), each a ``C``-channel frame. Each
timestep runs through the E-SpikeFormer trunk, whose SFA neurons fire up to ``D`` spikes (virtual
timesteps) per element: ``T x D`` binary timesteps in spike-driven inference.

The ``T`` steps run through the network independently (SFA neurons are memoryless; see
docs/events.md), folded into the batch ``(T * B, C, H, W)`` timestep-major and tagged
:class:`~sdt_dense.models.neurons.TimeSteps` (``repeated=False, real=True``: the energy analysis
charges the stem once per real timestep); each returned level is fused over ``T``.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ...registry import register_model
from ..neurons import tag_time_steps
from .e_spikeformer import ESpikeFormer

__all__ = ['MultiStepESpikeFormer', 'FUSIONS']

FUSIONS = ('mean', 'last', 'learned')


@register_model()
class MultiStepESpikeFormer(ESpikeFormer):
    """An :class:`ESpikeFormer` applied to each of ``T`` real timesteps, stage outputs fused over
    ``T``.

    Args:
        fusion: how each returned level is combined over ``T``:

            * ``'mean'`` (default): the average of the ``T`` per-step maps, as the published
              multi-step SDT models do (no parameter, no fixed ``T``; docs/events.md says why).
            * ``'last'``: the last timestep's map (the most recent events only; ablation).
            * ``'learned'``: a softmax-weighted sum with one weight vector over ``T`` per level,
              initialised uniform (so it starts as ``'mean'``); needs ``T``.
        T: the number of real timesteps; required by ``'learned'``, otherwise (if given) checked
            against inputs.
        input_layout: ``'BTCHW'`` (mmdet batches from
            :class:`~sdt_dense.models.data_preprocessors.EventDetDataPreprocessor`) or
            ``'TBCHW'``. A 4-d input ``(B, C, H, W)`` is one timestep.
        **kwargs: arguments of :class:`ESpikeFormer` (``arch``, ``in_channels`` = ``C`` of the
            representation, ``out_indices``, ``last_stride``, ``neuron_cfg`` (single-step neurons
            only), ``norm_cfg``, ``drop_path_rate``, ``init_cfg``, ...).

    Shape:
        input ``(B, T, C, H, W)``; output a tuple of ``(B, C_i, H_i, W_i)`` as
        :class:`ESpikeFormer` (same :attr:`out_channels` / :attr:`out_strides`).
    """

    def __init__(
        self, fusion: str = 'mean', T: Optional[int] = None, input_layout: str = 'BTCHW', **kwargs
    ) -> None:
        if fusion not in FUSIONS:
            raise ValueError(f'fusion must be one of {FUSIONS}, got {fusion!r}')
        if input_layout not in ('BTCHW', 'TBCHW'):
            raise ValueError(f"input_layout must be 'BTCHW' or 'TBCHW', got {input_layout!r}")
        if T is not None and (int(T) != T or T < 1):
            raise ValueError(f'T must be a positive integer, got {T!r}')
        if fusion == 'learned' and T is None:
            raise ValueError("fusion='learned' needs T (one weight per timestep)")
        super().__init__(**kwargs)
        if self.neuron_T != 1:
            raise ValueError(
                'MultiStepESpikeFormer needs single-step neurons (SFA): the real '
                'timesteps come from the input; a multi-step neuron (LIF) would '
                'repeat every one of them again'
            )
        self.fusion = fusion
        self.T = None if T is None else int(T)
        self.input_layout = input_layout
        if fusion == 'learned':
            # logits per (level, timestep); zeros = uniform softmax = 'mean' at initialisation
            self.fusion_logits = nn.Parameter(torch.zeros(len(self.out_indices), self.T))

    def example_input(self, batch: int = 2, height: int = 64, width: int = 64) -> Tensor:
        """A random input over ``T`` (default 2) timesteps, in ``input_layout``."""
        x = torch.randn(self.T or 2, batch, self.in_channels, height, width)
        return x.transpose(0, 1) if self.input_layout == 'BTCHW' else x

    def fusion_weights(self) -> Optional[Tensor]:
        """``(levels, T)`` softmax weights of ``'learned'`` fusion (``None`` otherwise)."""
        if self.fusion != 'learned':
            return None
        return self.fusion_logits.softmax(-1)

    def _fold(self, x: Tensor) -> Tuple[Tensor, int]:
        if x.dim() == 4:
            x = x.unsqueeze(1 if self.input_layout == 'BTCHW' else 0)
        if x.dim() != 5:
            raise ValueError(f'expected a ({", ".join(self.input_layout)}) input, got shape {tuple(x.shape)}')
        if self.input_layout == 'BTCHW':
            x = x.transpose(0, 1)
        steps = x.shape[0]
        if self.T is not None and steps != self.T:
            raise ValueError(f'input has T={steps} timesteps, the model was built for T={self.T}')
        if x.shape[2] != self.in_channels:
            raise ValueError(
                f'input has C={x.shape[2]} channels per timestep, the stem expects '
                f'in_channels={self.in_channels}'
            )
        x = x.flatten(0, 1)  # (T * B, C, H, W), timestep-major as repeat_over_time
        if steps > 1:
            tag_time_steps(x, steps, repeated=False, real=True)
        return x, steps

    def _fuse(self, level: int, y: Tensor) -> Tensor:
        """``(T, B, C, H, W) -> (B, C, H, W)``."""
        if self.fusion == 'mean':
            return y.mean(0)
        if self.fusion == 'last':
            return y[-1]
        if level not in self.out_indices:
            raise ValueError(
                f"fusion='learned' has weights for the levels {self.out_indices} only, got level {level}"
            )
        w = self.fusion_logits[self.out_indices.index(level)].softmax(0).to(y.dtype)
        return torch.einsum('t,tbchw->bchw', w, y)

    def forward(self, x: Tensor, out_indices: Optional[Sequence[int]] = None) -> Tuple[Tensor, ...]:
        """``(B, T, C, H, W)`` (or ``input_layout``) -> the levels ``out_indices``, each fused over
        ``T`` to ``(B, C_i, H_i, W_i)``."""
        x, steps = self._fold(x)
        levels = self.out_indices if out_indices is None else self.check_out_indices(out_indices)
        outs = super().forward(x, levels)
        return tuple(self._fuse(level, o.unflatten(0, (steps, -1))) for level, o in zip(levels, outs))

    def extra_repr(self) -> str:
        return f'fusion={self.fusion!r}, T={self.T}, layout={self.input_layout}'
