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
on pixels, predictors on real values) run unchanged. Modules that declare
``consumes_spike_slices = True`` take spike slices and sum them themselves: the attention's
:class:`~sdt_dense.models.layers.SpikeMatMul` multiplies the binary slices of q, k and v (binary x
binary for ``k^T v``; binary spikes selecting rows of the accumulated ``k^T v`` for ``q (k^T v)``).

Convention required from every model: a neuron's output goes into the synaptic layer(s) or spike
consumers it feeds, through layout ops at most. The slices travel as a
:class:`~sdt_dense.models.neurons.SpikeTensor`: layout ops that keep the leading (slice x batch)
dim (reshape/flatten keeping ``shape[0]``, transposes of other dims, head splits, ...) keep the tag;
any other op marks its result as *spike-derived*. A leaf module other than a synaptic layer that
receives spike slices, and any module (synaptic layers included) or model output that receives a
spike-derived tensor, raises :class:`SpikeDrivenError` naming the module: a lost tag is never a
silently wrong result (only shape-preserving pass-throughs such as ``nn.Identity`` and eval-mode
dropout take slices as they are).

Cost: each synaptic layer after a neuron runs on ``D`` times as many rows, ``k^T v`` on ``D^2``
slice pairs and ``q (k^T v)`` on ``D`` slices (measured in ``benchmarks/spike_driven_cost.py``,
stated in ``docs/spike_driven.md``). Inference only: binary slices carry no gradient.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterable, Iterator, List, Tuple

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from ..models.neurons import (
    SFANeuron,
    SpikeDrivenError,
    SpikeSlices,
    get_spike_slices,
    plain_tensor,
    spikes_lost,
)

__all__ = ['spike_driven', 'convert_to_spike_driven', 'is_spike_driven', 'SpikeDrivenError', 'SYNAPTIC_TYPES']

#: Layers that may directly follow a neuron: linear in their input, so they distribute over slices.
SYNAPTIC_TYPES: Tuple[type, ...] = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.Linear)
# Leaf modules that return their input object unchanged (the tag survives); anything else that
# receives spike slices would compute on the folded (D * B) batch, so it is an error.
_PASS_THROUGH_TYPES: Tuple[type, ...] = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d)

# Attributes kept on a synaptic module during one spike-driven call.
_STASHED_BIAS = '_sdt_stashed_bias'
_STASHED_TAG = '_sdt_stashed_tag'
# The module's name in the converted model, for error messages (set while converted).
_NAME = '_sdt_spike_driven_name'


# ---------------------------------------------------------------------------------------------
# Hooks. Module-level functions (no closures), so converted models deep-copy and pickle.


def _restore_bias(module: nn.Module):
    bias = module.__dict__.pop(_STASHED_BIAS, None)
    if bias is not None:
        module._parameters['bias'] = bias
    return bias


def _describe(module: nn.Module) -> str:
    name = module.__dict__.get(_NAME)
    kind = type(module).__name__
    return f'{name!r} ({kind})' if name else kind


def _tensors(obj: Any) -> Iterable[Tensor]:
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            yield from _tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors(o)


def _check_not_lost(module: nn.Module, values: Any, where: str = 'received') -> None:
    """Raise if a tensor in ``values`` was computed from spike slices by an op that dropped
    their slice structure (the tag is lost: its leading dim is no longer a plain batch)."""
    for t in _tensors(values):
        cause = spikes_lost(t)
        if cause is not None:
            raise SpikeDrivenError(
                f'{_describe(module)} {where} a tensor of shape {tuple(t.shape)} computed from '
                f'binary spike slices by {cause}, which does not keep their slice structure (D '
                f'slices x batch folded into the leading dim), so it would be computed on (or '
                f'broadcast) as if it were an ordinary batch. Between a neuron and its synaptic '
                f'layer only layout ops that keep the leading dim are allowed (reshape/flatten '
                f'keeping shape[0], transposes of other dims, ...); apply other ops before the '
                f'neuron.'
            )


def _synaptic_pre_hook(module: nn.Module, args: tuple) -> None:
    """Before a synaptic layer: on spike slices, run the layer without its bias."""
    _restore_bias(module)  # a previous call that raised mid-forward left its bias stashed
    module.__dict__.pop(_STASHED_TAG, None)
    _check_not_lost(module, args)
    tag = get_spike_slices(args[0]) if args else None
    if tag is None:
        return None
    x = args[0]
    if isinstance(module, nn.Linear):
        if x.dim() < 2:
            raise SpikeDrivenError(
                f'{_describe(module)} got an unbatched spike input of shape '
                f'{tuple(x.shape)}; spike-driven mode needs a batch dimension'
            )
    else:
        spatial = len(module.kernel_size)
        if x.dim() != spatial + 2:
            raise SpikeDrivenError(
                f'{_describe(module)} got a spike input of shape {tuple(x.shape)}; '
                f'spike-driven mode needs a batched {spatial + 2}-d input'
            )
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
    # the layer ran on spike slices, so its raw output is marked spike-derived; summing the
    # slices is exactly what makes it an ordinary (integer-mode) output again
    out = plain_tensor(output).unflatten(0, (tag.steps, -1)).sum(0)
    if tag.norm != 1:
        out = out / tag.norm
    if bias is not None:
        if isinstance(module, nn.Linear):
            out = out + bias
        else:  # channels are dim 1 of (B, C, *spatial)
            out = out + bias.view(-1, *([1] * (out.dim() - 2)))
    return out


def _guard_pre_hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
    """Before any other leaf module: spike slices (tagged or not) must not reach it."""
    for a in _tensors((args, kwargs)):
        if get_spike_slices(a) is not None:
            raise SpikeDrivenError(
                f'{_describe(module)} received binary spike slices from an SFA neuron, but in '
                f'spike-driven mode a neuron must feed a synaptic layer '
                f'({", ".join(t.__name__ for t in SYNAPTIC_TYPES)}) or a spike consumer such as '
                f'SpikeMatMul, through layout ops at most; move other ops before the neuron'
            )
    _check_not_lost(module, (args, kwargs))
    return None


def _consumer_pre_hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
    """Before a module that takes spike slices itself (``consumes_spike_slices``): tagged slices
    are fine, spike-derived tensors whose tag was lost are not."""
    _check_not_lost(module, (args, kwargs))
    return None


def _output_hook(module: nn.Module, args: tuple, output: Any) -> None:
    """After the converted model: a spike-derived tensor must not leave it unnoticed."""
    _check_not_lost(module, output, where='returned')
    return None


# ---------------------------------------------------------------------------------------------
# Conversion


def _is_leaf(module: nn.Module) -> bool:
    return next(iter(module.children()), None) is None


def _has_hook(hooks: dict, fn) -> bool:
    return any(h is fn for h in hooks.values())


def _install(
    model: nn.Module, require_sfa: bool = True
) -> Tuple[List[RemovableHandle], List[SFANeuron], List[nn.Module]]:
    """Switch neurons to spikes and hook the layers; return what was changed (for undoing): the
    hook handles, the neurons switched and the modules given a name.

    Raises:
        SpikeDrivenError: ``model`` holds no :class:`SFANeuron` (nothing would run on spikes; a
            comparison with the integer model would then be trivially equal).
    """
    if require_sfa and not any(isinstance(m, SFANeuron) for m in model.modules()):
        raise SpikeDrivenError(
            f'{type(model).__name__} has no SFA neuron: there is nothing to run spike-driven '
            '(a LIF or ANN model is not converted; use SFA neurons, neuron_cfg=dict(type="SFA"))'
        )
    handles: List[RemovableHandle] = []
    switched: List[SFANeuron] = []
    named: List[nn.Module] = []
    for name, module in model.named_modules():
        if _NAME not in module.__dict__:
            module.__dict__[_NAME] = name or type(module).__name__
            named.append(module)
        if isinstance(module, SFANeuron):
            if not module.spike_driven:
                module.spike_driven = True
                switched.append(module)
            hooks, fns = module._forward_pre_hooks, [(_guard_pre_hook, 'pre_kw')]
        elif isinstance(module, SYNAPTIC_TYPES):
            hooks = module._forward_pre_hooks
            fns = [(_synaptic_pre_hook, 'pre'), (_synaptic_hook, 'post')]
        elif getattr(module, 'consumes_spike_slices', False):
            hooks, fns = module._forward_pre_hooks, [(_consumer_pre_hook, 'pre_kw')]
        elif _is_leaf(module) and not isinstance(module, _PASS_THROUGH_TYPES):
            hooks, fns = module._forward_pre_hooks, [(_guard_pre_hook, 'pre_kw')]
        else:
            continue
        if _has_hook(hooks, fns[0][0]):  # already converted (nested use)
            continue
        for fn, kind in fns:
            if kind == 'post':
                # prepend: user forward hooks see the accumulated (integer-mode) output
                handles.append(module.register_forward_hook(fn, prepend=True))
            else:
                handles.append(module.register_forward_pre_hook(fn, with_kwargs=kind == 'pre_kw'))
    if not _has_hook(model._forward_hooks, _output_hook):
        handles.append(model.register_forward_hook(_output_hook))
    return handles, switched, named


def is_spike_driven(model: nn.Module) -> bool:
    """Whether every SFA neuron of ``model`` is in spike-driven mode (False if it has none)."""
    neurons = [m for m in model.modules() if isinstance(m, SFANeuron)]
    return bool(neurons) and all(n.spike_driven for n in neurons)


@contextlib.contextmanager
def spike_driven(model: nn.Module, require_sfa: bool = True) -> Iterator[nn.Module]:
    """Run ``model`` spike-driven inside the ``with`` block; everything is restored on exit.

    Works on any model containing :class:`SFANeuron` s (backbone, neck, head, whole detector or
    segmentor). Parameters and the state dict are not touched (outside a running forward call).
    Nested use and use on a model already converted permanently are no-ops.

    Example::

        with spike_driven(model):
            out = model(x)   # equals integer-mode model(x) within float rounding

    ``require_sfa=False`` accepts a model without SFA neurons (e.g. the LIF baseline, whose
    binary spikes need no conversion), for tools that guard every model alike (the op counter).

    Raises:
        SpikeDrivenError: on entry, if ``model`` has no SFA neuron (unless ``require_sfa`` is
            false); during a forward pass, if spike slices reach a module that is not a synaptic
            layer or spike consumer, or a tensor computed from spike slices by an op that does
            not keep their slice structure reaches a module or the model's output.
    """
    handles, switched, named = _install(model, require_sfa)
    try:
        yield model
    finally:
        for h in handles:
            h.remove()
        for neuron in switched:
            neuron.spike_driven = False
        for module in named:
            module.__dict__.pop(_NAME, None)
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
