"""Spike-driven inference of SFA models: integer activations become binary spikes.

An SFA neuron in integer mode emits ``k / norm`` with ``k = round(clamp(x, 0, D))``. In spike-driven
mode (:func:`spike_driven`, :func:`convert_to_spike_driven`) it emits ``D`` binary maps ``s_1..s_D``
(``s_d = [k >= d]``, so ``sum_d s_d = k``), folded in front of the batch dimension:
``(B, *S) -> (D * B, *S)``, tagged with :class:`~sdt_dense.models.neurons.SpikeSlices`.

The synaptic layer that follows (``nn.Conv1d/2d``, ``nn.ConvTranspose1d/2d``, ``nn.Linear`` and
their subclasses, e.g. mmcv's wrappers) receives exactly that binary tensor, so it only ever adds
weights (accumulate, AC). A forward pre-hook takes the layer's bias away for the call; a forward
hook sums the ``D`` partial results, divides by ``norm`` and adds the bias (which holds any folded
BatchNorm shift, see :func:`~sdt_dense.deploy.bn_fold.fold_bn`) exactly once::

    W (k / norm) + b  ==  (sum_d W s_d) / norm + b

so every layer output equals integer mode. Layers whose input is not a spike tensor (the stem conv
on pixels, predictors on real values) run unchanged. The attention's spike-matrix products merge
their operands to integer form (see ``SpikeDrivenSelfAttention`` and :mod:`sdt_dense.analysis.ops`
for their AND + accumulate count).

Convention required from every model: a neuron's output goes directly into the synaptic layer(s) it
feeds. A leaf module of another kind that receives spike slices raises :class:`SpikeDrivenError`
(only shape-preserving pass-throughs such as ``nn.Identity`` and eval-mode dropout are allowed).

Cost: each synaptic layer after a neuron runs on ``D`` times as many rows (measured in
``benchmarks/spike_driven_cost.py``, stated in ``docs/spike_driven.md``). Inference only: binary
slices carry no gradient.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, List, Tuple

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from ..models.neurons import SFANeuron, SpikeSlices, get_spike_slices

__all__ = ['spike_driven', 'convert_to_spike_driven', 'is_spike_driven', 'SpikeDrivenError',
           'SYNAPTIC_TYPES']

#: Layers that may directly follow a neuron: linear in their input, so they distribute over slices.
SYNAPTIC_TYPES: Tuple[type, ...] = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                                    nn.Linear)
# Leaf modules that return their input object unchanged (the tag survives); anything else that
# receives spike slices would compute on the folded (D * B) batch, so it is an error.
_PASS_THROUGH_TYPES: Tuple[type, ...] = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d)

# Attributes kept on a synaptic module during one spike-driven call.
_STASHED_BIAS = '_sdt_stashed_bias'
_STASHED_TAG = '_sdt_stashed_tag'


class SpikeDrivenError(RuntimeError):
    """A model breaks the spike-driven convention (something other than a synaptic layer, or a
    layer with an unsupported input layout, received binary spike slices)."""


# ---------------------------------------------------------------------------------------------
# Hooks. Module-level functions (no closures), so converted models deep-copy and pickle.


def _restore_bias(module: nn.Module):
    bias = module.__dict__.pop(_STASHED_BIAS, None)
    if bias is not None:
        module._parameters['bias'] = bias
    return bias


def _synaptic_pre_hook(module: nn.Module, args: tuple) -> None:
    """Before a synaptic layer: on spike slices, run the layer without its bias."""
    _restore_bias(module)  # a previous call that raised mid-forward left its bias stashed
    module.__dict__.pop(_STASHED_TAG, None)
    tag = get_spike_slices(args[0]) if args else None
    if tag is None:
        return None
    x = args[0]
    if isinstance(module, nn.Linear):
        if x.dim() < 2:
            raise SpikeDrivenError(f'{type(module).__name__} got an unbatched spike input of shape '
                                   f'{tuple(x.shape)}; spike-driven mode needs a batch dimension')
    else:
        spatial = len(module.kernel_size)
        if x.dim() != spatial + 2:
            raise SpikeDrivenError(
                f'{type(module).__name__} got a spike input of shape {tuple(x.shape)}; '
                f'spike-driven mode needs a batched {spatial + 2}-d input')
    bias = module._parameters.get('bias')
    if bias is not None:
        module.__dict__[_STASHED_BIAS] = bias
        module._parameters['bias'] = None
    module.__dict__[_STASHED_TAG] = tag
    return None


def _synaptic_hook(module: nn.Module, args: tuple, output: Tensor):
    """After a synaptic layer: accumulate the ``steps`` slice results, then add the bias once."""
    tag: SpikeSlices = module.__dict__.pop(_STASHED_TAG, None)
    bias = _restore_bias(module)
    if tag is None:
        return None
    out = output.unflatten(0, (tag.steps, -1)).sum(0)
    if tag.norm != 1:
        out = out / tag.norm
    if bias is not None:
        if isinstance(module, nn.Linear):
            out = out + bias
        else:  # channels are dim 1 of (B, C, *spatial)
            out = out + bias.view(-1, *([1] * (out.dim() - 2)))
    return out


def _guard_pre_hook(module: nn.Module, args: tuple) -> None:
    """Before any other leaf module: spike slices must not reach it."""
    for a in args:
        if get_spike_slices(a) is not None:
            raise SpikeDrivenError(
                f'{type(module).__name__} received binary spike slices from an SFA neuron, but in '
                f'spike-driven mode a neuron must feed a synaptic layer '
                f'({", ".join(t.__name__ for t in SYNAPTIC_TYPES)}) directly; move reshapes and '
                f'other ops before the neuron')
    return None


# ---------------------------------------------------------------------------------------------
# Conversion


def _is_leaf(module: nn.Module) -> bool:
    return next(iter(module.children()), None) is None


def _has_hook(hooks: dict, fn) -> bool:
    return any(h is fn for h in hooks.values())


def _install(model: nn.Module) -> Tuple[List[RemovableHandle], List[SFANeuron]]:
    """Switch neurons to spikes and hook the layers; return what was changed (for undoing)."""
    handles: List[RemovableHandle] = []
    switched: List[SFANeuron] = []
    for module in model.modules():
        if isinstance(module, SFANeuron):
            if not module.spike_driven:
                module.spike_driven = True
                switched.append(module)
            hooks, fns = module._forward_pre_hooks, [(_guard_pre_hook, False)]
        elif isinstance(module, SYNAPTIC_TYPES):
            hooks = module._forward_pre_hooks
            fns = [(_synaptic_pre_hook, False), (_synaptic_hook, True)]
        elif _is_leaf(module) and not isinstance(module, _PASS_THROUGH_TYPES):
            hooks, fns = module._forward_pre_hooks, [(_guard_pre_hook, False)]
        else:
            continue
        if _has_hook(hooks, fns[0][0]):  # already converted (nested use)
            continue
        for fn, is_post in fns:
            if is_post:
                # prepend: user forward hooks see the accumulated (integer-mode) output
                handles.append(module.register_forward_hook(fn, prepend=True))
            else:
                handles.append(module.register_forward_pre_hook(fn))
    return handles, switched


def is_spike_driven(model: nn.Module) -> bool:
    """Whether every SFA neuron of ``model`` is in spike-driven mode (False if it has none)."""
    neurons = [m for m in model.modules() if isinstance(m, SFANeuron)]
    return bool(neurons) and all(n.spike_driven for n in neurons)


@contextlib.contextmanager
def spike_driven(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` spike-driven inside the ``with`` block; everything is restored on exit.

    Works on any model containing :class:`SFANeuron` s (backbone, neck, head, whole detector or
    segmentor). Parameters and the state dict are not touched (outside a running forward call).
    Nested use and use on a model already converted permanently are no-ops.

    Example::

        with spike_driven(model):
            out = model(x)   # equals integer-mode model(x) within float rounding

    Raises:
        SpikeDrivenError: during a forward pass, if spike slices reach a module that is not a
            synaptic layer.
    """
    handles, switched = _install(model)
    try:
        yield model
    finally:
        for h in handles:
            h.remove()
        for neuron in switched:
            neuron.spike_driven = False
        for module in model.modules():
            if isinstance(module, SYNAPTIC_TYPES):
                _restore_bias(module)
                module.__dict__.pop(_STASHED_TAG, None)


def convert_to_spike_driven(model: nn.Module) -> nn.Module:
    """Permanently switch ``model`` (in place) to spike-driven inference and return it.

    Idempotent. The hooks are plain functions, so the converted model can be deep-copied and
    pickled; its state dict is unchanged, so checkpoints stay interchangeable with integer mode.
    Modules added to the model afterwards are not converted.
    """
    _install(model)
    return model
