"""Multi-timestep binary LIF neuron: the baseline that SFA integer training is compared against.

Spike-Driven Transformer V1/V2 (and SpikingJelly's ``MultiStepLIFNode``) train binary spiking
neurons over ``T`` real timesteps. This module gives the same architecture that option
(``neuron_cfg=dict(type='LIF', T=4)`` on :class:`~sdt_dense.models.backbones.ESpikeFormer`) so that
training cost and accuracy can be compared on equal terms.

Dynamics (SpikingJelly's LIF convention, ``decay_input=True``, hard reset), for ``t = 1..T`` with
``v_0 = v_reset``::

    h_t = v_{t-1} + (x_t - (v_{t-1} - v_reset)) / tau     # charge (leaky integration)
    s_t = [h_t >= v_threshold]                            # fire (Heaviside, binary)
    v_t = h_t * (1 - s_t) + v_reset * s_t                 # hard reset

Backward: the Heaviside step gets the sigmoid surrogate
``d s / d h = alpha * sigmoid(alpha u) * (1 - sigmoid(alpha u))`` with ``u = h - v_threshold``
(peak ``alpha / 4`` at the threshold), and gradients flow through time (BPTT). With ``detach_reset``
(default, as the published V2 models) the reset term ``s_t`` is treated as a constant in ``v_t``.

Time is folded into the batch: the neuron receives ``(T * B, *S)`` (timestep-major, as produced by
``x.repeat(T, ...)``), runs the recurrence over the leading ``T`` and returns binary spikes of the
same shape. It is memoryful across timesteps within one call and stateless across calls (no
``reset_net`` needed). Its output carries a :class:`TimeSteps` tag, as does an input repeated with
:func:`repeat_over_time`, so that the analysis tools (:mod:`sdt_dense.analysis`) can tell binary
spikes over ``T`` real timesteps from real values and count per timestep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from .builder import NEURONS

# Attribute under which a time-folded tensor carries its TimeSteps tag.
_TIME_STEPS_ATTR = '_sdt_time_steps'


@dataclass(frozen=True)
class TimeSteps:
    """Tag of a tensor ``(T * B, *S)`` with ``T`` real timesteps folded in front of the batch
    (timestep-major).

    Attributes:
        steps: ``T``.
        repeated: the ``T`` timesteps are copies of one input (an image repeated over time): a
            layer applied to it computes the same result ``T`` times, which hardware computes once.
            ``False`` for binary spikes of a multi-step neuron.
        real: the ``T`` timesteps hold real values that differ between steps (event-camera
            frames, one per time bin): a synaptic layer on them does dense MACs once per timestep.
            ``False`` (with ``repeated=False``): binary spikes.
    """

    steps: int
    repeated: bool = False
    real: bool = False


def get_time_steps(x: Tensor) -> Optional[TimeSteps]:
    """Return the :class:`TimeSteps` tag of ``x``, or ``None``."""
    return getattr(x, _TIME_STEPS_ATTR, None)


def tag_time_steps(x: Tensor, steps: int, repeated: bool = False, real: bool = False) -> Tensor:
    """Tag ``x`` (in place, returned) as ``steps`` real timesteps folded into its leading dim
    (see :class:`TimeSteps` for ``repeated`` and ``real``)."""
    setattr(x, _TIME_STEPS_ATTR, TimeSteps(int(steps), bool(repeated), bool(real)))
    return x


def repeat_over_time(x: Tensor, steps: int) -> Tensor:
    """``(B, *S) -> (steps * B, *S)``: ``x`` repeated over ``steps`` real timesteps, tagged
    ``repeated``."""
    return tag_time_steps(x.repeat(steps, *([1] * (x.dim() - 1))), steps, repeated=True)


class _MultiStepLIF(torch.autograd.Function):
    """Fused multi-step LIF over the leading time axis of ``x_seq`` ``(T, *S)``.

    Only the pre-spike membrane ``h_seq`` (one float per element and timestep) is saved; spikes are
    recomputed from it in backward. This is what SpikingJelly's fused (CuPy) backend keeps, so the
    baseline is not handicapped by autograd's per-op intermediates. Everything that does not depend
    on the recurrence is computed for all timesteps at once; the sequential loops run three small
    kernels per step forward (charge, compare, reset) and one backward.
    """

    @staticmethod
    def forward(
        ctx, x_seq: Tensor, tau: float, v_threshold: float, v_reset: float, detach_reset: bool, alpha: float
    ) -> Tensor:
        decay = 1.0 - 1.0 / tau
        # h_t = decay * v_{t-1} + (x_t + v_reset) / tau; the input term for all t at once
        h_seq = x_seq / tau if v_reset == 0 else (x_seq + v_reset) / tau
        v = torch.full_like(x_seq[0], v_reset)
        for t in range(x_seq.shape[0]):
            h = h_seq[t].add_(v, alpha=decay)
            if t + 1 < x_seq.shape[0]:
                v = h.masked_fill(h >= v_threshold, v_reset)  # fire, hard reset
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(h_seq)
        ctx.params = (tau, v_threshold, v_reset, detach_reset, alpha)
        return (h_seq >= v_threshold).to(x_seq.dtype)

    @staticmethod
    def backward(ctx, grad_spikes: Tensor):
        (h_seq,) = ctx.saved_tensors
        tau, v_threshold, v_reset, detach_reset, alpha = ctx.params
        decay = 1.0 - 1.0 / tau
        # dL/ds_t * surrogate(h_t - v_th), the surrogate as one fused sigmoid-backward kernel
        sig = h_seq.sub(v_threshold).mul_(alpha).sigmoid_()
        grad_h = torch.ops.aten.sigmoid_backward(grad_spikes, sig).mul_(alpha)
        # d v_t / d h_t: 1 - s_t (the reset spike held constant), plus the reset path if attached
        dv_dh = (h_seq < v_threshold).to(h_seq.dtype)
        if not detach_reset:
            sg = torch.ops.aten.sigmoid_backward(torch.full_like(sig, alpha), sig)
            dv_dh = dv_dh.addcmul_(v_reset - h_seq, sg)
        # dL/dh_t = dL/ds_t * sg_t + dL/dv_t * dv_t/dh_t, with dL/dv_t = decay * dL/dh_{t+1}
        for t in range(h_seq.shape[0] - 2, -1, -1):
            grad_h[t].addcmul_(grad_h[t + 1], dv_dh[t], value=decay)
        return grad_h.div_(tau), None, None, None, None, None


@NEURONS.register_module(name='LIF')
class LIFNeuron(nn.Module):
    """Binary leaky integrate-and-fire neuron over ``T`` real timesteps (see the module docstring).

    Args:
        T: number of real timesteps folded into the leading (batch) dimension of the input.
        tau: membrane time constant (> 1 for a leak; SpikingJelly default 2).
        v_threshold: firing threshold.
        v_reset: reset (and initial) membrane potential.
        detach_reset: stop the gradient through the reset spike (published V2 default ``True``).
        alpha: sharpness of the sigmoid surrogate gradient.
        norm: accepted for interface compatibility with :class:`~sdt_dense.models.neurons.SFANeuron`
            (``build_neuron(cfg, norm=1)`` asks for integer counts); a binary spike needs no
            normalisation, so it is ignored.

    Shape:
        input ``(T * B, *S)``, timestep-major; output the same shape with values in ``{0, 1}``,
        tagged :class:`TimeSteps` ``(T)``.
    """

    #: the input must be repeated over ``T`` real timesteps (see :func:`neuron_time_steps`)
    multi_step = True

    def __init__(
        self,
        T: int = 4,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        v_reset: float = 0.0,
        detach_reset: bool = True,
        alpha: float = 4.0,
        norm: Optional[float] = None,
    ) -> None:
        super().__init__()
        if int(T) != T or T < 1:
            raise ValueError(f'T must be a positive integer, got {T!r}')
        if tau <= 1:
            raise ValueError(f'tau must be > 1 (1 / tau is the charging rate), got {tau!r}')
        if v_threshold <= v_reset:
            raise ValueError(f'v_threshold ({v_threshold}) must exceed v_reset ({v_reset})')
        if alpha <= 0:
            raise ValueError(f'alpha must be positive, got {alpha!r}')
        self.T = int(T)
        self.tau = float(tau)
        self.v_threshold = float(v_threshold)
        self.v_reset = float(v_reset)
        self.detach_reset = bool(detach_reset)
        self.alpha = float(alpha)
        # Binary spikes are spike-driven already: the flag exists for parity with SFANeuron and
        # changes nothing.
        self.spike_driven = False
        #: a spike is worth 1 (SFANeuron's output is ``count / norm``), whatever ``norm`` was given
        self.norm = 1.0

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 0 or x.shape[0] % self.T:
            raise ValueError(
                f'LIFNeuron(T={self.T}) expects time folded into the leading dimension, '
                f'(T * B, ...); got shape {tuple(x.shape)}. Repeat the input T times '
                f'(ESpikeFormer does this when neuron_cfg has type LIF).'
            )
        x_seq = x.unflatten(0, (self.T, -1))
        spikes = _MultiStepLIF.apply(
            x_seq, self.tau, self.v_threshold, self.v_reset, self.detach_reset, self.alpha
        )
        return tag_time_steps(spikes.flatten(0, 1), self.T)

    def extra_repr(self) -> str:
        return (
            f'T={self.T}, tau={self.tau:g}, v_threshold={self.v_threshold:g}, '
            f'v_reset={self.v_reset:g}, detach_reset={self.detach_reset}, alpha={self.alpha:g}'
        )
