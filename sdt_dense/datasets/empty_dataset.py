"""A dataset without samples: a clear error naming it, instead of what mmengine does.

mmengine fails obscurely on an empty dataset: with ``serialize_data=True`` (the default) the build
stops in ``BaseDataset._serialize_data`` with "need at least one array to concatenate"; over a
non-serialised one, ``DefaultSampler`` divides by zero and ``InfiniteSampler`` loops forever
(``tools/train.py`` checks the train dataset before mmengine builds its loop for that reason). It
happens when ``data_root``/``data_prefix`` point at an empty directory, when an annotation file
lists no images, or when ``filter_cfg`` drops every image (e.g. ``filter_empty_gt`` on a split
without annotations).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Optional


class EmptyDatasetError(ValueError):
    """A dataset that training, validation or testing needs has no samples."""


def describe_dataset(dataset: Any) -> str:
    """``Type(data_root=..., ann_file=..., data_prefix=..., filter_cfg=...)`` of a dataset or of
    its config dict, for error messages; wrappers (``RepeatDataset``, ...) show their inner one."""
    get = dataset.get if isinstance(dataset, dict) else lambda k: getattr(dataset, k, None)
    kind = get('type') if isinstance(dataset, dict) else type(dataset).__name__
    fields = []
    for key in ('data_root', 'ann_file', 'data_prefix', 'filter_cfg'):
        value = get(key)
        if value:
            fields.append(f'{key}={dict(value) if isinstance(value, dict) else value!r}')
    inner = get('dataset')
    if inner is not None:
        fields.append(f'dataset={describe_dataset(inner)}')
    return f'{kind}({", ".join(fields)})'


def _message(dataset: Any, split: Optional[str]) -> str:
    what = f'the {split} dataset' if split else 'a dataset'
    return (
        f'{what} has no samples: {describe_dataset(dataset)}. Check that data_root and '
        'data_prefix point at the images, that the annotation file lists images, and that '
        'filter_cfg (e.g. filter_empty_gt) does not drop them all.'
    )


def check_not_empty(dataset: Any, split: Optional[str] = None) -> None:
    """Raise :class:`EmptyDatasetError` naming ``dataset`` if it has no samples.

    Args:
        dataset: a built dataset (anything with ``__len__``; others are not checked).
        split: 'train', 'val' or 'test', for the message.
    """
    try:
        size = len(dataset)
    except TypeError:  # an iterable-style dataset: its length is unknown
        return
    if size == 0:
        raise EmptyDatasetError(_message(dataset, split))


def _empty_dataset_in(exc: BaseException) -> Any:
    """The dataset whose ``_serialize_data`` raised ``exc`` because it had no samples, or None."""
    if not (isinstance(exc, ValueError) and 'need at least one array' in str(exc)):
        return None
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == '_serialize_data':
            dataset = frame.f_locals.get('self')
            if dataset is not None and not getattr(dataset, 'data_list', True):
                return dataset
        tb = tb.tb_next
    return None


@contextlib.contextmanager
def empty_dataset_errors() -> Iterator[None]:
    """Turn mmengine's failure to build an empty dataset into :class:`EmptyDatasetError`.

    Used by ``tools/train.py`` and ``tools/test.py`` around ``runner.train()``/``runner.test()``,
    where the datasets are built. Other errors pass through unchanged.
    """
    try:
        yield
    except ValueError as exc:
        dataset = _empty_dataset_in(exc)
        if dataset is None:
            raise
        raise EmptyDatasetError(_message(dataset, None)) from exc
