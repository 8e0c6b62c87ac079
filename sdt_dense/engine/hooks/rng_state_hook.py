"""Random-number-generator state in checkpoints, so that a resumed run continues the same stream."""

from __future__ import annotations

import logging
import random
from typing import Any, Dict, Iterator, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

#: key of the RNG states in a checkpoint dict (those of the saving process, rank 0)
RNG_KEY = 'rng_state'
#: key of the list of every rank's states (distributed runs saved by ``AtomicCheckpointHook``)
RNG_RANKS_KEY = 'rng_state_per_rank'


def get_rng_state() -> Dict[str, Any]:
    """States of Python's, numpy's and torch's (CPU and CUDA) global generators, as builtins and
    tensors only (they load under ``torch.load(weights_only=True)``)."""
    np_state = np.random.get_state(legacy=False)
    state = dict(
        python=random.getstate(),
        numpy=dict(
            bit_generator=np_state['bit_generator'],
            key=torch.from_numpy(np_state['state']['key'].astype(np.int64)),
            pos=int(np_state['state']['pos']),
            has_gauss=int(np_state['has_gauss']),
            gauss=float(np_state['gauss']),
        ),
        torch=torch.get_rng_state(),
    )
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Inverse of :func:`get_rng_state`."""
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    np_state = state['numpy']
    np.random.set_state(
        dict(
            bit_generator=np_state['bit_generator'],
            state=dict(key=np_state['key'].numpy().astype(np.uint32), pos=np_state['pos']),
            has_gauss=np_state['has_gauss'],
            gauss=np_state['gauss'],
        )
    )
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        cuda = state['cuda']
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:  # another number of visible devices: each process restores its own one
            torch.cuda.set_rng_state(cuda[min(torch.cuda.current_device(), len(cuda) - 1)])


class _RestoreBeforeNextFetch:
    """Wraps the train loop's data iterator: passes ``skip`` fetches through, then calls
    ``restore`` right before the next one and unwraps itself.

    ``IterBasedTrainLoop`` re-reads the ``skip`` batches that precede a resume point (to keep the
    data order); with ``num_workers=0`` their transforms draw from the global generators, so the
    saved state can only be restored after them.
    """

    def __init__(self, loop: Any, skip: int, restore) -> None:
        self._loop, self._skip, self._restore = loop, skip, restore
        self._inner = loop.dataloader_iterator

    def __iter__(self) -> Iterator:
        return self

    def __next__(self) -> Any:
        if self._skip > 0:
            self._skip -= 1
            return next(self._inner)
        self._loop.dataloader_iterator = self._inner
        self._restore()
        return next(self._inner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save the global RNG states in every checkpoint and restore them on resume.

    mmengine checkpoints do not hold RNG states: a resumed run re-seeds and its random draws
    (augmentations, RoI sampling, drop path) differ from those of an uninterrupted run. With this
    hook, and ``randomness=dict(seed=..., deterministic=True)``, the losses after a resume equal
    those of an uninterrupted run.

    Invariant (in the uninterrupted run and after a resume alike): the first batch fetched after a
    checkpoint was saved is fetched with the generator states stored in that checkpoint. Anything
    that draws in between (a validation run) therefore does not change the training stream.

    Under distributed training the ranks draw different numbers (``diff_rank_seed``, and draws whose
    count depends on the data, e.g. RoI sampling), so every rank's state is needed: with
    ``AtomicCheckpointHook`` the checkpoint holds them all (gathered from every rank at save time,
    :meth:`gather`) and each rank restores its own. A checkpoint without them (saved by mmengine's
    ``CheckpointHook``, or resumed with another world size) gives every rank the saving rank's
    state, with a warning. The data order is exact in any case (mmengine's sampler is seeded per
    epoch).
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._loaded: Optional[Dict[str, Any]] = None  # state of the last loaded checkpoint
        self._loaded_iter: Optional[int] = None  # its iteration counter
        self._pending: Optional[Dict[str, Any]] = None  # epoch loops: restore at the next epoch
        self._in_loop = False  # the train loop has started (before_train_epoch was called)
        self._gathered: Optional[list] = None  # every rank's state, for the next checkpoint
        self._warning: Optional[str] = None  # about the loaded state, printed if it is restored

    def gather(self, runner, meta: dict) -> None:
        """Collect every rank's RNG state for the checkpoint about to be saved.

        Called on every rank by ``AtomicCheckpointHook`` right before a save (mmengine calls
        ``before_save_checkpoint`` on the saving rank only); collective under distributed
        training. ``meta`` is the checkpoint's meta dict.
        """
        state = get_rng_state()
        states = all_gather_object(state) if get_world_size() > 1 else [state]
        self._gathered = states if get_rank() == 0 else None
        self._pin(runner, state, meta)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = get_rng_state()
        checkpoint[RNG_KEY] = state
        gathered, self._gathered = self._gathered, None
        if gathered is not None:  # gather() ran for this checkpoint and already pinned the state
            checkpoint[RNG_RANKS_KEY] = gathered
            return
        self._pin(runner, state, checkpoint.get('meta', {}))

    def _pin(self, runner, state: Dict[str, Any], meta: dict) -> None:
        """Make the next batch be fetched with ``state`` (the invariant of the class docstring)."""
        if not self._in_loop:
            return
        if self._iter_based(runner) or meta.get('epoch') == runner.epoch + 1:
            # (an epoch loop resumes at epoch boundaries: pin only for end-of-epoch checkpoints)
            self._restore_before_next_batch(runner, state, skip=0)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # Whether this load is a resume is only known in before_train (the iteration counter is
        # restored after this hook runs); a ``load_from`` fine-tuning starts its own stream.
        self._loaded_iter = checkpoint.get('meta', {}).get('iter')
        self._loaded = checkpoint.get(RNG_KEY)
        world_size, per_rank = get_world_size(), checkpoint.get(RNG_RANKS_KEY)
        if per_rank is not None and len(per_rank) == world_size:
            self._loaded = per_rank[get_rank()]
        elif self._loaded is not None and world_size > 1:
            saved = 'another world size' if per_rank is not None else 'the saving rank only'
            self._warning = (
                f'{type(self).__name__}: the checkpoint holds the random state of '
                f'{saved} (world size now {world_size}): every rank restores rank '
                "0's state, so random draws after the resume may differ from an "
                'uninterrupted run (save with AtomicCheckpointHook to keep them all)'
            )

    def before_train(self, runner) -> None:
        state, self._loaded = self._loaded, None
        warning, self._warning = self._warning, None
        if runner.iter == 0 or runner.iter != self._loaded_iter:
            return  # no resume (a fresh run, or load_from fine-tuning)
        if state is None:
            print_log(
                f'{type(self).__name__}: the checkpoint resumed at iteration {runner.iter} '
                'holds no random state (saved without RNGStateHook): random draws from here '
                'on (augmentations, sampling, drop path) differ from an uninterrupted run, '
                'so the resumed run is not exact',
                logger='current',
                level=logging.WARNING,
            )
            return
        if warning:
            print_log(warning, logger='current', level=logging.WARNING)
        print_log(
            f'{type(self).__name__}: restoring the random state saved at iteration {runner.iter}',
            logger='current',
        )
        # An iteration-based loop first re-reads the ``runner.iter`` batches it already trained on.
        self._restore_before_next_batch(runner, state, skip=runner.iter)

    def before_train_epoch(self, runner) -> None:
        self._in_loop = True
        if self._pending is not None:
            set_rng_state(self._pending)
            self._pending = None

    def after_train(self, runner) -> None:
        self._in_loop = False

    @staticmethod
    def _iter_based(runner) -> bool:
        return hasattr(runner.train_loop, 'dataloader_iterator')

    def _restore_before_next_batch(self, runner, state: Dict[str, Any], skip: int) -> None:
        loop = runner.train_loop
        if self._iter_based(runner):  # IterBasedTrainLoop: one endless iterator
            inner = loop.dataloader_iterator
            if isinstance(inner, _RestoreBeforeNextFetch):
                inner = inner._inner
                loop.dataloader_iterator = inner
            loop.dataloader_iterator = _RestoreBeforeNextFetch(loop, skip, lambda: set_rng_state(state))
        else:  # EpochBasedTrainLoop: the next batch comes from a new iterator, after this hook
            self._pending = state
