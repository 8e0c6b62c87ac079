"""Spike slices as a tensor subclass: layout ops keep their tag, every other op marks its result.

In spike-driven mode an SFA neuron emits binary slices ``(D * B, *S)`` (slice-major in front of the
batch) tagged with a :class:`~sdt_dense.models.neurons.SpikeSlices`. A plain attribute would be
dropped silently by the first op applied to the tensor, and an untagged ``(D * B, ...)`` tensor
reaching a synaptic layer runs as a batch of ``D * B`` unrelated samples; at batch size 1 that batch
then broadcasts silently in residual additions. :class:`SpikeTensor` closes that hole:

* **layout ops that keep the leading dimension** (``view``/``reshape``/``flatten``/``unflatten``/
  ``squeeze``/``unsqueeze`` keeping ``shape[0]``, ``transpose``/``permute`` of the other dims,
  ``mT``, ``split``/``chunk`` and ``cat`` along another dim, basic indexing with ``[:, ...]``,
  ``contiguous``/``clone``/``detach``/dtype and device moves) return a tagged :class:`SpikeTensor`:
  each of the ``D * B`` rows is rearranged on its own, so the result is still ``D`` binary slices
  of the same rearrangement applied in integer mode, and the synaptic layer downstream stays exact;
* **any other op** (arithmetic, reductions, a reshape that mixes the leading dim with others, ...)
  returns a *spike-derived* tensor: a :class:`SpikeTensor` without tag that remembers the op
  (:func:`spikes_lost`). Its value is computed normally (analysis hooks may compute statistics
  from spikes), but :mod:`sdt_dense.deploy.spike_driven` raises :class:`SpikeDrivenError`, naming
  the module, when such a tensor reaches a module or the model's output; in-place ops that write
  spikes into an ordinary tensor raise at once (the target cannot be marked).

Only spike-driven mode creates these tensors, so integer mode (training and evaluation) runs
exactly as before, with no per-op overhead. The checks run in eager mode, op by op, in
``__torch_function__`` (a few microseconds per op on a spike tensor; a neuron's output normally
sees one or two layout ops and its synaptic layers).
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import torch
from torch import Tensor

__all__ = ['SpikeTensor', 'SpikeDrivenError', 'make_spike_tensor', 'spikes_lost', 'plain_tensor']

# Attribute names under which a SpikeTensor carries its SpikeSlices tag, or the op that lost it.
SLICES_ATTR = '_sfa_slices'
LOST_ATTR = '_sdt_spikes_lost'


class SpikeDrivenError(RuntimeError):
    """A model breaks the spike-driven convention: something other than a synaptic layer received
    binary spike slices, a layer received values computed from spikes by an op that does not keep
    their slice structure, or a layer got an unsupported input layout."""


# -- op tables ------------------------------------------------------------------------------------
# Reshapes keep the flat (row-major) order, so row i of the result is row i of the input exactly
# when the leading dim is unchanged.
_RESHAPES = frozenset(
    {
        Tensor.view,
        Tensor.view_as,
        Tensor.reshape,
        Tensor.reshape_as,
        torch.reshape,
        Tensor.flatten,
        torch.flatten,
        Tensor.unflatten,
        torch.unflatten,
        Tensor.squeeze,
        torch.squeeze,
        Tensor.unsqueeze,
        torch.unsqueeze,
    }
)
# Swap two dims (dim0, dim1): rows are kept when neither is dim 0.
_TRANSPOSES = frozenset(
    {Tensor.transpose, torch.transpose, Tensor.swapaxes, torch.swapaxes, Tensor.swapdims, torch.swapdims}
)
_PERMUTES = frozenset({Tensor.permute, torch.permute})
# Pieces along a dim: rows are kept when every piece keeps the leading dim.
_SPLITS = frozenset(
    {Tensor.split, torch.split, Tensor.chunk, torch.chunk, Tensor.tensor_split, torch.tensor_split}
)
_CATS = frozenset({torch.cat, torch.concat, torch.concatenate})
# Same shape and values (0/1 is exact in every dtype).
_COPIES = frozenset(
    {
        Tensor.contiguous,
        Tensor.clone,
        torch.clone,
        Tensor.detach,
        torch.detach,
        Tensor.to,
        Tensor.float,
        Tensor.double,
        Tensor.half,
        Tensor.bfloat16,
        Tensor.cpu,
        Tensor.cuda,
        Tensor.type_as,
    }
)
_MATRIX_TRANSPOSE = Tensor.mT.__get__
_LAYOUT_OPS = (
    _RESHAPES | _TRANSPOSES | _PERMUTES | _SPLITS | _CATS | _COPIES | {_MATRIX_TRANSPOSE, Tensor.__getitem__}
)
# In-place ops that do not change values.
_SAFE_IN_PLACE = frozenset({'requires_grad_', 'share_memory_'})


def _is_in_place(name: str, kwargs: dict) -> bool:
    return (
        (name.endswith('_') and not name.startswith('__'))
        or name == '__setitem__'
        or kwargs.get('out') is not None
    )


def _dim(d: int, ndim: int) -> int:
    return d % ndim if ndim else 0


def _index_keeps_rows(index: Any, ndim: int) -> bool:
    """Basic indexing that leaves dim 0 alone: ``x[:, ...]`` or ``x[..., j]`` not reaching dim 0.
    Advanced (tensor / list / bool) indices are refused: they may move dims to the front."""
    items = index if isinstance(index, tuple) else (index,)
    if any(isinstance(i, (Tensor, list, bool)) for i in items):
        return False
    if not items:
        return True
    if items[0] == slice(None):
        return True
    if items[0] is Ellipsis:  # the Ellipsis covers dim 0 unless the other indices fill every dim
        return sum(1 for i in items[1:] if i is not None and i is not Ellipsis) < ndim
    return False


def _keeps_rows(func, src: Tensor, args: tuple, kwargs: dict, out: Any) -> bool:
    """Whether ``out = func(*args, **kwargs)`` is ``src`` with each leading row rearranged on its
    own (``src`` is a tagged spike tensor, ``args[0]`` or the first tensor of ``args[0]``)."""
    if isinstance(out, Tensor):
        same_rows = out.dim() >= 1 and out.shape[0] == src.shape[0]
    elif isinstance(out, (tuple, list)) and out and all(isinstance(o, Tensor) for o in out):
        same_rows = all(o.dim() >= 1 and o.shape[0] == src.shape[0] for o in out)
    else:
        return False
    if not same_rows:
        return False
    if func in _RESHAPES:
        return out.dtype == src.dtype  # view(dtype) reinterprets bits
    if func in _SPLITS or func in _COPIES:
        return True
    if func in _CATS:
        tensors = args[0] if args else kwargs.get('tensors', ())
        tag = getattr(src, SLICES_ATTR)
        # every piece must be slices of the same kind; along dim 0 the leading dim would grow
        return all(getattr(t, SLICES_ATTR, None) == tag for t in tensors)
    ndim = src.dim()
    if func in _TRANSPOSES:
        dims = list(args[1:3]) + [kwargs[k] for k in ('dim0', 'dim1', 'axis0', 'axis1') if k in kwargs]
        return len(dims) == 2 and all(_dim(d, ndim) != 0 for d in dims)
    if func in _PERMUTES:
        dims = args[1:] if len(args) > 1 else (kwargs.get('dims'),)
        if len(dims) == 1 and isinstance(dims[0], (tuple, list, torch.Size)):
            dims = tuple(dims[0])
        return bool(dims) and dims[0] is not None and _dim(dims[0], ndim) == 0
    if func == _MATRIX_TRANSPOSE:
        return ndim >= 3
    if func is Tensor.__getitem__:
        return _index_keeps_rows(args[1], ndim)
    return False


def _tensors(obj: Any) -> Iterable[Tensor]:
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            yield from _tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors(o)


def _map_tensors(obj: Any, fn) -> Any:
    """``obj`` with ``fn`` applied to every tensor (in tuples, named tuples and lists)."""
    if isinstance(obj, Tensor):
        return fn(obj)
    if isinstance(obj, list):
        return [_map_tensors(o, fn) for o in obj]
    if isinstance(obj, tuple):
        items = [_map_tensors(o, fn) for o in obj]
        if type(obj) is tuple:
            return tuple(items)
        if hasattr(obj, '_fields'):  # collections.namedtuple
            return type(obj)(*items)
        return type(obj)(items)  # torch.return_types
    return obj


class SpikeTensor(Tensor):
    """Binary spike slices ``(steps * B, *S)`` of an SFA neuron in spike-driven mode (tagged), or a
    tensor computed from them by an op that does not keep the slice structure (untagged, with the
    op in :func:`spikes_lost`). See the module docstring for the rules."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        with torch._C.DisableTorchFunctionSubclass():
            out = func(*args, **kwargs)
        inputs = [t for t in _tensors((args, kwargs)) if isinstance(t, SpikeTensor)]
        name = getattr(func, '__name__', repr(func))
        if _is_in_place(name, kwargs):
            if name not in _SAFE_IN_PLACE:
                _mark_in_place(args, kwargs, name)
            return out
        if not any(True for _ in _tensors(out)):
            return out  # shapes, sizes, Python numbers
        first = args[0] if args else None
        src = first[0] if isinstance(first, (tuple, list)) and first else first
        tag = getattr(src, SLICES_ATTR, None) if isinstance(src, SpikeTensor) else None
        if tag is not None:
            if out is src:  # returned unchanged (contiguous on a contiguous tensor, eval dropout)
                return out
            if _keeps_rows(func, src, args, kwargs, out):
                return _map_tensors(out, lambda t: make_spike_tensor(t, tag))
        # the structure is gone: keep the first cause, else name this op
        cause = next((getattr(t, LOST_ATTR) for t in inputs if hasattr(t, LOST_ATTR)), None)
        if cause is None:
            cause = name
            if tag is not None and func in _LAYOUT_OPS:
                cause += ' (it moves or mixes the leading slice x batch dim)'
        return _map_tensors(out, lambda t: t if any(t is i for i in inputs) else _lost_tensor(t, cause))


def _mark_in_place(args: tuple, kwargs: dict, name: str) -> None:
    target = kwargs.get('out')
    if target is None:
        target = args[0] if args else None
    for t in _tensors(target):
        if isinstance(t, SpikeTensor):
            # the object itself now holds other values: it is no longer a set of slices
            t.__dict__.pop(SLICES_ATTR, None)
            t.__dict__.setdefault(LOST_ATTR, f'{name} (in place)')
        else:
            raise SpikeDrivenError(
                f'in-place {name} writes values computed from binary spike slices into an '
                f'ordinary tensor; spike-driven mode cannot track them there. Apply the op before '
                f'the neuron, or out of place.'
            )


def _lost_tensor(t: Tensor, cause: str) -> Tensor:
    lost = t.as_subclass(SpikeTensor)
    setattr(lost, LOST_ATTR, cause)
    return lost


def make_spike_tensor(x: Tensor, tag: Any) -> SpikeTensor:
    """``x`` (binary slices ``(steps * B, *S)``) as a :class:`SpikeTensor` carrying ``tag`` (a
    :class:`~sdt_dense.models.neurons.SpikeSlices`). Shares ``x``'s data."""
    out = x.as_subclass(SpikeTensor)
    out.__dict__.pop(LOST_ATTR, None)
    setattr(out, SLICES_ATTR, tag)
    return out


def spikes_lost(x: Any) -> Optional[str]:
    """For a tensor computed from spike slices by an op that dropped their slice structure, the op
    (e.g. ``'mul'``); ``None`` for spike slices and ordinary tensors."""
    return getattr(x, LOST_ATTR, None) if isinstance(x, SpikeTensor) else None


def plain_tensor(x: Tensor) -> Tensor:
    """``x`` as an ordinary ``torch.Tensor`` (same data, no tag, no op tracking)."""
    return x.as_subclass(Tensor) if isinstance(x, SpikeTensor) else x
