"""Swap our SFA neurons for spikingjelly's ``ILIFNode`` (Base rules) and back.

spikingjelly 2.0's ``ILIFNode`` (integer LIF, with a Triton multi-step kernel on GPUs) computes

    H = (1 - 1/tau) V + X,   C = round(clamp(H / V_th, 0, D)),   V <- H - C V_th

and passes the gradient of ``C`` straight through where ``0 <= H / V_th <= D``
(``MultiLevelSpikeCount(D)``). From a zero membrane (``V = 0``) with ``V_th = 1`` this is exactly
our SFA neuron with the **Base rules** (``rounding='half_even'``: ``torch.round``;
``window='inclusive'``) before the division by ``norm``. :class:`ILIFSFA` is that stand-in: it
resets the node before every call (our neurons are memoryless; ``T`` real timesteps are folded
into the batch) and divides the count by ``norm``, so outputs and gradients are equal to the SFA
neuron's, element for element.

The **Large rules** cannot be mapped, and :func:`to_spikingjelly` refuses them with the reason:

* ``rounding='half_up'`` (``floor(x + 0.5)``: 2.5 -> 3) differs from ILIF's ``torch.round``
  (half to even: 2.5 -> 2) on every exact tie, and ties occur (attention inputs are dyadic);
* ``window='exclusive'`` (gradient where ``0 < x < D``) differs from ILIF's closed window
  ``[grad_min, grad_max]`` at ``x = 0`` and ``x = D``.

Neurons with an ``eval_ceiling`` (the published SpikeFPN's binary-at-eval option) are refused as
well: ILIF's forward is the same in train and eval mode. Spike-driven inference is ours
(:mod:`sdt_dense.deploy.spike_driven`), not a spikingjelly module: convert back before it.
"""

from __future__ import annotations

import copy
from typing import Tuple

from torch import Tensor, nn

from ..models.neurons.sfa import SFANeuron

__all__ = ['ILIFSFA', 'to_spikingjelly', 'from_spikingjelly', 'import_spikingjelly', 'UnsupportedNeuronError']


class UnsupportedNeuronError(ValueError):
    """An SFA neuron whose rules ``ILIFNode`` cannot reproduce (the message says which)."""


def import_spikingjelly():
    """``(neuron, surrogate, functional)`` of ``spikingjelly.activation_based``.

    Raises:
        ImportError: naming the package (``pip install spikingjelly==2.0.0``).
    """
    try:
        from spikingjelly.activation_based import functional, neuron, surrogate
    except ImportError as e:
        raise ImportError(
            'the spikingjelly converter needs spikingjelly 2.0 (pip install '
            "'spikingjelly==2.0.0'); spikingjelly is missing"
        ) from e
    if not hasattr(neuron, 'ILIFNode'):
        raise ImportError('spikingjelly has no ILIFNode: version 2.0 or later is needed')
    return neuron, surrogate, functional


class ILIFSFA(nn.Module):
    """spikingjelly's ``ILIFNode`` standing in for an :class:`SFANeuron` with the Base rules.

    Args:
        D: the maximum count (``MultiLevelSpikeCount(D)``).
        norm: the count's divisor (the SFA neuron's ``norm``).

    Shape: input ``(*)``, output ``(*)``, equal to ``SFANeuron(D, norm)(x)``.
    """

    def __init__(self, D: int = 4, norm: float = 4.0) -> None:
        super().__init__()
        neuron, surrogate, _ = import_spikingjelly()
        self.D, self.norm = int(D), float(norm)
        # V_th = 1 and a zero membrane: H = X exactly; tau only scales the (reset) memory
        self.node = neuron.ILIFNode(
            v_threshold=1.0, surrogate_function=surrogate.MultiLevelSpikeCount(self.D), step_mode='s'
        )

    def forward(self, x: Tensor) -> Tensor:
        self.node.reset()  # memoryless, as the SFA neuron: every call starts from V = 0
        counts = self.node(x)
        self.node.reset()  # drop the membrane so that no state outlives the call
        return counts / self.norm if self.norm != 1 else counts

    def extra_repr(self) -> str:
        return f'D={self.D}, norm={self.norm:g}'


def _check_base_rules(name: str, m: SFANeuron) -> None:
    reasons = []
    if m.rounding != 'half_even':
        reasons.append(
            f'rounding={m.rounding!r}: ILIFNode rounds half to even (torch.round, '
            '2.5 -> 2), the Large rules round half up (2.5 -> 3)'
        )
    if m.window != 'inclusive':
        reasons.append(
            f"window={m.window!r}: ILIFNode's gradient window is closed "
            "(0 <= x <= D), the Large rules' is open (0 < x < D)"
        )
    if m.eval_ceiling is not None:
        reasons.append(f'eval_ceiling={m.eval_ceiling}: ILIFNode fires the same in train and eval mode')
    if m.spike_driven:
        reasons.append('the neuron is in spike-driven mode: convert the integer-mode model')
    if reasons:
        raise UnsupportedNeuronError(
            f'SFA neuron {name!r} cannot be swapped for ILIFNode: ' + '; '.join(reasons)
        )


def _swap(model: nn.Module, cls: type, make) -> Tuple[nn.Module, int]:
    count = 0
    for name, child in list(model.named_children()):
        if isinstance(child, cls):
            setattr(model, name, make(child))
            count += 1
        else:
            count += _swap(child, cls, make)[1]
    return model, count


def to_spikingjelly(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Replace every :class:`SFANeuron` by an :class:`ILIFSFA` (outputs and gradients equal).

    Every neuron is checked first, so a refusal leaves the model untouched.

    Raises:
        UnsupportedNeuronError: a neuron uses rules ILIFNode cannot reproduce (the Large rules, an
            ``eval_ceiling``, spike-driven mode); the message names the neuron and the reason.
    """
    for name, m in model.named_modules():
        if isinstance(m, SFANeuron):
            _check_base_rules(name, m)
    if not inplace:
        model = copy.deepcopy(model)
    if isinstance(model, SFANeuron):
        return ILIFSFA(model.D, model.norm)
    return _swap(model, SFANeuron, lambda m: ILIFSFA(m.D, m.norm))[0]


def from_spikingjelly(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Replace every :class:`ILIFSFA` by the equivalent :class:`SFANeuron` (Base rules)."""
    if not inplace:
        model = copy.deepcopy(model)
    if isinstance(model, ILIFSFA):
        return SFANeuron(model.D, norm=model.norm)
    return _swap(model, ILIFSFA, lambda m: SFANeuron(m.D, norm=m.norm))[0]
