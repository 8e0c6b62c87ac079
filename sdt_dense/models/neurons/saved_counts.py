"""Saved activations at the size of the spike representation.

An SFA neuron emits ``k / norm`` with an integer count ``0 <= k <= ceiling``, but every synaptic
layer after it (conv, Conv1d, linear, the attention's matrix products) keeps that input for its
weight gradient as a float tensor: 4 bytes per element in fp32 for what is 3 bits of information at
``D = 4``. Inside :class:`SavedCounts`, autograd's saved-tensor hooks store such an input as its
count code instead -- one byte per element, or two codes per byte (a nibble each) when
``ceiling < 15`` -- and rebuild the float tensor in backward with the very operation the neuron's
forward used (``float(k) / norm`` in the same dtype), so the rebuilt tensor is bit-identical and so
is every gradient. The straight-through window masks (``bool``, 1 byte each) are stored as bits.

How a saved tensor is recognised: while the context is active, the SFA quantiser registers each
output it creates (:func:`note_counts`), keyed by its storage; the pack hook accepts a saved tensor
only if its storage is a registered output that is still alive, with the same dtype and an
unchanged version counter (no in-place write since the neuron), so views (head split, transposes)
are recognised too and every other tensor passes through unchanged. Codes of one output are stored
once, however many layers save it (the attention's q, k and v convs share their input).

Exactness: the code of ``k`` is ``k`` itself, except a count of negative zero (``clamp`` keeps the
sign of an input ``-0.0``), which gets the extra code ``ceiling + 1`` so that its sign bit is
restored too; the rebuild ``code.to(dtype) / norm`` repeats the forward's division, the same
elementwise operation on the same values.

Recomputation (``recompute=True``, the switch value ``save_counts='recompute'``): a layer that
computes a tensor from registered tensors with no side effect -- the conv after a neuron, the BN
after that conv, a product of spike matrices -- registers its output with :func:`note_recompute`
and the function that made it. Whoever saves that output (BN saves its input, a layer scale or a
second conv saves a BN output, ``q (k^T v)`` saves ``k^T v``) then keeps nothing but the recipe;
backward runs the same function on the rebuilt inputs, under the autocast state of the forward, and
gets the same bits (the same deterministic kernel on the same values; on CUDA, cuDNN may choose
another algorithm, so there the result is equal within float tolerance). Parameters and buffers the
function reads are checked unchanged (version counters) when it runs again.

Bypassed (saved as today) where it cannot compose: under other saved-tensor hooks already in force
(activation checkpointing of an outer region, profilers that count saved tensors), inside
``torch.compile`` tracing, and for anything but the SFA neuron's outputs (LIF spikes, real-valued
residual streams). Activation checkpointing inside the region (``with_cp``) installs its own hooks
on top, which win there: checkpointed blocks save nothing and recompute as before.
"""

from __future__ import annotations

import threading
import weakref
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from .bitwise import count_codes, pack_bits, unpack_bits

__all__ = [
    'SAVE_COUNTS_MODES',
    'SavedCounts',
    'check_save_counts',
    'saving_context',
    'set_save_counts',
    'note_counts',
    'note_recompute',
    'recompute_active',
    'saving_active',
    'observe_saved',
    'saved_storage',
    'saved_storages',
    'PackedCounts',
    'PackedBits',
    'PackedRecompute',
    'CountsView',
    'RecomputedView',
]

#: values of the models' ``save_counts`` switch: float tensors, count codes, codes + recomputation
SAVE_COUNTS_MODES = (False, True, 'recompute')

_state = threading.local()
# Largest ceiling whose codes (0..ceiling, plus the negative-zero code) fit a nibble / a byte.
_NIBBLE_MAX_CEILING = 14
_BYTE_MAX_CEILING = 254
# Masks smaller than this stay bytes: packing costs more than it saves.
_MIN_BITS = 64


def _top_hooks() -> Optional[tuple]:
    return torch._C._autograd._top_saved_tensors_default_hooks(False)


def _active() -> Optional['SavedCounts']:
    """The :class:`SavedCounts` whose hooks are the innermost in force now, else ``None``."""
    ctx = getattr(_state, 'ctx', None)
    if ctx is None or torch.compiler.is_compiling():  # dynamo cannot trace the hook query
        return None
    top = _top_hooks()
    return ctx if top is not None and top[0] is ctx._pack_fn else None


class PackedCounts:
    """The count codes of one neuron output, stored once for all layers that save it.

    Attributes:
        codes: ``uint8`` ``(ceil(n / 2),)`` two codes per byte (low nibble first) or ``(n,)`` one
            code per byte, in the output's storage order; ``n`` is its number of elements.
    """

    def __init__(
        self, codes: Tensor, numel: int, nibbles: bool, ceiling: int, norm: float, dtype: torch.dtype
    ) -> None:
        self.codes = codes
        self.numel = numel
        self.nibbles = nibbles
        self.ceiling = ceiling
        self.norm = norm
        self.dtype = dtype
        # the last rebuilt tensor, while backward still holds it (q, k, v convs share one input)
        self._rebuilt: Optional[weakref.ref] = None

    @property
    def nbytes(self) -> int:
        return self.codes.numel()

    def rebuild(self) -> Tensor:
        """The neuron's output, flat ``(n,)`` in its dtype, bit-identical."""
        cached = self._rebuilt() if self._rebuilt is not None else None
        if cached is not None:
            return cached
        table = _decode_table(self.ceiling, self.norm, self.nibbles, self.dtype, self.codes.device)
        out = table.index_select(0, self.codes.int()).flatten()[: self.numel]
        self._rebuilt = weakref.ref(out)
        return out


_TABLES: Dict[tuple, Tensor] = {}


def _decode_table(
    ceiling: int, norm: float, nibbles: bool, dtype: torch.dtype, device: torch.device
) -> Tensor:
    """``(256, 2)`` (nibbles: low, high) or ``(256, 1)``: the values a stored byte stands for.

    The values are computed by the neuron's own operation, ``float(k) / norm`` (a tensor divided by
    a Python number, same dtype and device), which is elementwise and so gives each ``k`` exactly
    the value the forward gave it; code ``ceiling + 1`` is ``-0.0``."""
    key = (ceiling, norm, nibbles, dtype, device)
    if key not in _TABLES:
        levels = torch.arange(ceiling + 1, device=device).to(dtype)
        values = levels / norm if norm != 1 else levels
        width = 16 if nibbles else 256
        values = torch.cat(
            (values, values.new_full((1,), -0.0), values.new_zeros(width - ceiling - 2))
        )  # unused codes
        if nibbles:  # byte b holds codes (b & 15, b >> 4)
            table = torch.stack((values.repeat(16), values.repeat_interleave(16)), -1)
        else:
            table = values.view(-1, 1)
        _TABLES[key] = table
    return _TABLES[key]


class CountsView:
    """What a layer saved: a view ``(size, stride, offset)`` of a registered tensor's storage, kept
    as the packed form of that tensor (:class:`PackedCounts` or :class:`PackedRecompute`)."""

    def __init__(self, source: Union['PackedCounts', 'PackedRecompute'], t: Tensor) -> None:
        self.source = source
        self.size, self.stride, self.offset = t.size(), t.stride(), t.storage_offset()

    def unpack(self) -> Tensor:
        return self.source.rebuild().as_strided(self.size, self.stride, self.offset)


class RecomputedView(CountsView):
    """A saved view of a tensor that backward recomputes (see :class:`PackedRecompute`)."""


def _autocast_state(device: torch.device) -> Tuple[str, bool, torch.dtype]:
    kind = device.type if device.type in ('cpu', 'cuda') else 'cpu'
    return kind, torch.is_autocast_enabled(kind), torch.get_autocast_dtype(kind)


class PackedRecompute:
    """The recipe of a registered tensor: ``fn(*sources)``, run again in backward.

    Attributes:
        sources: ``(packed, size, stride, offset)`` per argument: a :class:`PackedCounts` or another
            :class:`PackedRecompute` and the view of it that ``fn`` read.
        guards: ``(tensor, version)`` of the parameters and buffers ``fn`` reads; they must be
            unchanged when it runs again.
    """

    nbytes = 0  # keeps no tensor data of its own: its sources are what the layers save anyway

    def __init__(
        self,
        fn: Callable[..., Tensor],
        sources: list,
        guards: Sequence[tuple],
        numel: int,
        shape: torch.Size,
        dtype: torch.dtype,
        autocast: tuple,
    ) -> None:
        self.fn, self.sources, self.guards = fn, sources, guards
        self.numel, self.shape, self.dtype, self.autocast = numel, shape, dtype, autocast
        self._rebuilt: Optional[weakref.ref] = None

    def rebuild(self) -> Tensor:
        """The tensor, flat ``(n,)`` in its storage order, from the same function on the same
        inputs."""
        cached = self._rebuilt() if self._rebuilt is not None else None
        if cached is not None:
            return cached
        for t, version in self.guards:
            if t._version != version:
                raise RuntimeError(
                    'a parameter or buffer read by a recomputed layer was modified in place between '
                    'forward and backward; set save_counts=True (no recomputation) for this model'
                )
        args = [src.rebuild().as_strided(size, stride, offset) for src, size, stride, offset in self.sources]
        kind, enabled, dtype = self.autocast
        with torch.no_grad(), torch.autocast(kind, dtype=dtype, enabled=enabled):
            out = self.fn(*args)
        if out.shape != self.shape or out.dtype != self.dtype:
            raise RuntimeError(
                f'recomputation gave {tuple(out.shape)} {out.dtype}, the forward '
                f'gave {tuple(self.shape)} {self.dtype}'
            )
        out = out.contiguous().view(-1)
        self._rebuilt = weakref.ref(out)
        return out


class PackedBits:
    """A saved ``bool`` tensor, 8 elements per byte (values only; unpacked contiguous)."""

    def __init__(self, t: Tensor) -> None:
        self.shape = t.shape
        self.numel = t.numel()
        self.bits = pack_bits(t)

    @property
    def nbytes(self) -> int:
        return self.bits.numel()

    def unpack(self) -> Tensor:
        return unpack_bits(self.bits, self.numel).view(self.shape)


class _Entry:
    """A registered neuron output: its packed codes and identity checks."""

    def __init__(self, out: Tensor, counts: Tensor, ceiling: int, norm: float, nibbles: bool) -> None:
        self.dtype, self.device, self.version = out.dtype, out.device, out._version
        self.shape = out.shape
        self.packed = PackedCounts(
            count_codes(counts, ceiling, nibbles), out.numel(), nibbles, ceiling, norm, out.dtype
        )

    def pack(self) -> PackedCounts:
        return self.packed


class _RecomputeEntry:
    """A registered tensor that backward recomputes: ``fn`` of views of registered tensors."""

    def __init__(
        self, out: Tensor, fn: Callable[..., Tensor], sources: list, guards: Sequence[Tensor]
    ) -> None:
        self.dtype, self.device, self.version = out.dtype, out.device, out._version
        self.shape = out.shape
        self.fn, self.sources = fn, sources
        self.guards = tuple((g, g._version) for g in guards)
        self.autocast = _autocast_state(out.device)
        self.packed: Optional[PackedRecompute] = None

    def pack(self) -> PackedRecompute:
        if self.packed is None:
            sources = [(entry.pack(), size, stride, offset) for entry, size, stride, offset in self.sources]
            self.packed = PackedRecompute(
                self.fn, sources, self.guards, self.shape.numel(), self.shape, self.dtype, self.autocast
            )
            self.sources = None
        return self.packed


class SavedCounts:
    """Context manager: within it, saved neuron outputs are kept as count codes, masks as bits.

    Args:
        enabled: ``False`` makes the context a no-op (today's saving, for comparison).
        nibbles: two codes per byte when the neuron's ceiling is at most 14 (``D = 4``: yes).
        bits: store saved ``bool`` tensors (the neurons' gradient windows) 8 per byte.
        observer: called with each object the pack hook returns (a tensor passed through, or a
            :class:`CountsView` / :class:`RecomputedView` / :class:`PackedBits`), for measuring
            what autograd keeps.
        recompute: also keep the outputs registered with :func:`note_recompute` as recipes, run
            again in backward, instead of float tensors.

    Use it around the forward pass of a training step; backward may run after it has exited (the
    packed activations live in the autograd graph). Re-entrant use nests (the inner one wins).
    """

    def __init__(
        self,
        enabled: bool = True,
        nibbles: bool = True,
        bits: bool = True,
        observer: Optional[Callable[[object], None]] = None,
        recompute: bool = False,
    ) -> None:
        self.enabled = enabled
        self.recompute = recompute
        self.nibbles = nibbles
        self.bits = bits
        self.observer = observer
        self._registry: Dict[int, tuple] = {}
        self._pack_fn = self._pack  # one bound method: identifies our hooks on the stack
        self._hooks: Optional[torch.autograd.graph.saved_tensors_hooks] = None
        self._outer: Optional[SavedCounts] = None
        self._outer_observer: Optional[Callable[[object], None]] = None

    def __enter__(self) -> 'SavedCounts':
        if not self.enabled or torch.compiler.is_compiling():
            # compiled graphs save what they need themselves; querying the hooks would break
            # the graph (dynamo cannot trace it)
            self._hooks = None
            return self
        top = _top_hooks()
        observing = getattr(_state, 'observing', None)
        self._outer_observer = None
        if top is not None and observing is not None and top[0] is observing[0]:
            self._outer_observer = observing[1]  # an observe_saved() counter: report to it
        elif top is not None:
            # other hooks in force (checkpointing): composing would change their meaning
            self._hooks = None
            return self
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack_fn, _unpack)
        self._hooks.__enter__()
        self._outer = getattr(_state, 'ctx', None)
        _state.ctx = self
        return self

    def __exit__(self, *exc) -> None:
        if self._hooks is None:
            return
        _state.ctx = self._outer
        self._hooks.__exit__(*exc)
        self._hooks = None
        self._registry.clear()  # the packed codes live on in the graph; the lookup is done

    @property
    def active(self) -> bool:
        """Whether this context installed its hooks (``False`` when disabled or bypassed)."""
        return self._hooks is not None

    # -- registration (the layers' side) ---------------------------------------------------------
    @staticmethod
    def _mirrorable(out: Tensor) -> bool:
        """Whether a flat rebuild of ``out`` can stand for its storage one to one."""
        return (
            out.numel() > 0
            and out.is_contiguous()
            and out.storage_offset() == 0
            and out.untyped_storage().nbytes() == out.numel() * out.element_size()
        )

    def _add(self, out: Tensor, entry: Union[_Entry, _RecomputeEntry]) -> None:
        key = out.untyped_storage().data_ptr()
        registry = self._registry

        def forget(_, key=key, entry=entry) -> None:
            # the output died (and with it any view): its address may now be reused
            if registry.get(key, (None,))[0] is entry:
                del registry[key]

        registry[key] = (entry, weakref.ref(out, forget))

    def _lookup(self, t: Tensor) -> Optional[Union[_Entry, _RecomputeEntry]]:
        """The live entry whose storage ``t`` views, unchanged since it was registered."""
        found = self._registry.get(t.untyped_storage().data_ptr())
        if found is None:
            return None
        entry, ref = found
        # alive (so the address is still its storage), same dtype, no in-place write
        if (
            ref() is not None
            and t.dtype == entry.dtype
            and t.device == entry.device
            and t._version == entry.version
        ):
            return entry
        return None

    def register(self, out: Tensor, counts: Tensor, ceiling: int, norm: float) -> None:
        if ceiling > _BYTE_MAX_CEILING or not self._mirrorable(out):
            return  # the codes could not mirror the storage one to one
        self._add(out, _Entry(out, counts, ceiling, norm, self.nibbles and ceiling <= _NIBBLE_MAX_CEILING))

    def register_recompute(
        self, out: Tensor, fn: Callable[..., Tensor], inputs: Sequence[Tensor], guards: Sequence[Tensor]
    ) -> bool:
        """Register ``out == fn(*inputs)`` if every input views a registered tensor; returns
        whether it did."""
        if not self.recompute or not self._mirrorable(out):
            return False
        sources = []
        for t in inputs:
            entry = self._lookup(t)
            if entry is None:
                return False
            sources.append((entry, t.size(), t.stride(), t.storage_offset()))
        self._add(out, _RecomputeEntry(out, fn, sources, guards))
        return True

    # -- hooks ------------------------------------------------------------------------------------
    def _pack(self, t: Tensor) -> Union[Tensor, CountsView, PackedBits]:
        packed: Union[Tensor, CountsView, PackedBits] = t
        if t.dtype == torch.bool:
            if self.bits and t.numel() >= _MIN_BITS:
                packed = PackedBits(t)
        elif t.is_floating_point() and t.numel():
            entry = self._lookup(t)
            if isinstance(entry, _Entry):
                packed = CountsView(entry.pack(), t)
            elif entry is not None:
                packed = RecomputedView(entry.pack(), t)
        if self.observer is not None:
            self.observer(packed)
        if self._outer_observer is not None:
            self._outer_observer(packed)
        return packed


def _unpack(packed: Union[Tensor, CountsView, PackedBits]) -> Tensor:
    return packed if isinstance(packed, Tensor) else packed.unpack()


def note_counts(out: Tensor, counts: Tensor, ceiling: int, norm: float) -> None:
    """Called by the SFA quantiser: ``out`` (``counts / norm``, or ``counts`` itself when
    ``norm == 1``) holds integer counts ``counts`` (same shape and dtype, values ``0..ceiling``).
    A no-op unless a :class:`SavedCounts` context is the innermost saved-tensor hook."""
    ctx = _active()
    if ctx is not None:
        ctx.register(out, counts, ceiling, norm)


def check_save_counts(value: Union[bool, str]) -> Union[bool, str]:
    """Validate a model's ``save_counts`` switch (one of :data:`SAVE_COUNTS_MODES`)."""
    if not any(value is m or (isinstance(m, str) and value == m) for m in SAVE_COUNTS_MODES):
        raise ValueError(
            f'save_counts must be one of {SAVE_COUNTS_MODES} (False: float tensors, '
            f'True: count codes, "recompute": codes and recomputed conv/BN outputs), '
            f'got {value!r}'
        )
    return value


def set_save_counts(model: torch.nn.Module, save_counts: Union[bool, str]) -> torch.nn.Module:
    """Set the ``save_counts`` switch of every module of ``model`` that has one (backbone, neck,
    heads, their spiking layers); returns ``model``."""
    check_save_counts(save_counts)
    for module in model.modules():
        if hasattr(module, 'save_counts'):
            module.save_counts = save_counts
    return model


def saving_context(save_counts: Union[bool, str]) -> 'SavedCounts':
    """The :class:`SavedCounts` context a model's forward opens for its ``save_counts`` switch;
    a no-op without gradients (eval, inference)."""
    return SavedCounts(bool(save_counts) and torch.is_grad_enabled(), recompute=save_counts == 'recompute')


def saving_active() -> Optional['SavedCounts']:
    """The :class:`SavedCounts` whose hooks are the innermost in force now, else ``None``."""
    return _active()


def recompute_active() -> Optional['SavedCounts']:
    """The innermost :class:`SavedCounts` if it recomputes, else ``None``: a layer asks this before
    it builds the function it would register (so eval and inference pay nothing)."""
    ctx = _active()
    return ctx if ctx is not None and ctx.recompute else None


def note_recompute(
    out: Tensor, fn: Callable[..., Tensor], inputs: Sequence[Tensor], guards: Sequence[Tensor] = ()
) -> bool:
    """Register ``out``, computed as ``fn(*inputs)`` with no side effect, for recomputation.

    Args:
        out: the result, as the forward computed it.
        fn: a function that gives ``out`` again, bit for bit, from equal inputs (e.g. a conv's
            ``forward`` bound method, which bypasses the module's hooks).
        inputs: tensors that view registered tensors (neuron outputs, or other recomputable
            results); if one does not, nothing is registered and ``out`` is saved as usual.
        guards: the parameters and buffers ``fn`` reads (checked unchanged when it runs again).

    Returns whether ``out`` was registered. A no-op (``False``) unless a recomputing
    :class:`SavedCounts` is the innermost saved-tensor hook.
    """
    ctx = recompute_active()
    return ctx is not None and ctx.register_recompute(out, fn, inputs, guards)


def saved_storages(packed: Union[Tensor, CountsView, PackedBits]) -> list:
    """``[(key, nbytes), ...]``: every allocation one saved object keeps alive (a recomputed view
    keeps the packed codes its recipe reads). Equal keys are one allocation (count it once)."""
    if isinstance(packed, CountsView) and isinstance(packed.source, PackedRecompute):
        out, todo = [], [packed.source]
        while todo:
            recipe = todo.pop()
            out.append((('recompute', id(recipe)), 0))
            for src, *_ in recipe.sources:
                if isinstance(src, PackedRecompute):
                    todo.append(src)
                else:
                    out.append((('codes', id(src)), src.nbytes))
        return out
    return [saved_storage(packed)]


def saved_storage(packed: Union[Tensor, CountsView, PackedBits]) -> tuple:
    """``(key, nbytes)`` of what autograd keeps for one saved object: the storage of a tensor
    (key: its address), the shared codes of a :class:`CountsView`, the bits of a
    :class:`PackedBits`, nothing for a recomputed view (see :func:`saved_storages`). Equal keys
    are one allocation (count it once)."""
    if isinstance(packed, RecomputedView):
        return ('recompute', id(packed.source)), 0
    if isinstance(packed, CountsView):
        return ('codes', id(packed.source)), packed.source.nbytes
    if isinstance(packed, PackedBits):
        return ('bits', id(packed)), packed.nbytes
    storage = packed.untyped_storage()
    return ('tensor', storage.data_ptr()), storage.nbytes()


class observe_saved:  # noqa: N801 - used like a function, as torch's saved_tensors_hooks
    """Context manager that calls ``callback`` with every object autograd saves for backward, in the
    form it is kept: a :class:`SavedCounts` opened inside reports its packed objects here instead of
    stepping aside (see :func:`saved_storage` for their sizes). Saves nothing differently itself.
    """

    def __init__(self, callback: Callable[[object], None]) -> None:
        self.callback = callback

        def pack(t: Tensor) -> Tensor:
            callback(t)
            return t

        self._pack = pack
        self._hooks = torch.autograd.graph.saved_tensors_hooks(pack, _unpack)
        self._outer: Optional[tuple] = None

    def __enter__(self) -> 'observe_saved':
        self._hooks.__enter__()
        self._outer = getattr(_state, 'observing', None)
        _state.observing = (self._pack, self.callback)
        return self

    def __exit__(self, *exc) -> None:
        _state.observing = self._outer
        self._hooks.__exit__(*exc)
