"""Stop before the first iteration when a head's ``num_classes`` disagrees with the dataset."""

from __future__ import annotations

from typing import Any, Iterator, List, Optional, Sequence, Tuple

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from torch import nn

from ...datasets.empty_dataset import describe_dataset
from ...errors import ClassCountMismatchError

#: module names of class-specific heads (mmdet: RoI bbox/mask heads, one-stage ``bbox_head``;
#: mmseg: decode and auxiliary heads). The RPN head (``num_classes=1``, object vs background) is
#: not class-specific and is skipped.
CLASS_HEADS = ('bbox_head', 'mask_head', 'decode_head', 'auxiliary_head')


def class_heads(model: nn.Module) -> Iterator[Tuple[str, int]]:
    """``(module path, num_classes)`` of every class-specific head of ``model``."""
    for path, module in model.named_modules():
        n = getattr(module, 'num_classes', None)
        parts = path.split('.')
        if (
            isinstance(n, int)
            and not isinstance(n, bool)
            and any(p in CLASS_HEADS for p in parts)
            and not any('rpn' in p for p in parts)
        ):
            yield path, n


def dataset_classes(dataset: Any) -> Optional[Sequence[str]]:
    """The ``metainfo['classes']`` of a built dataset (wrappers expose their inner one), or None."""
    metainfo = getattr(dataset, 'metainfo', None)
    classes = metainfo.get('classes') if isinstance(metainfo, dict) else None
    return list(classes) if classes else None


def check_num_classes(model: nn.Module, dataset: Any, split: str) -> None:
    """Raise :class:`~sdt_dense.errors.ClassCountMismatchError` when a class-specific head of
    ``model`` has another ``num_classes`` than ``dataset`` has classes (datasets without
    ``metainfo['classes']`` are not checked).
    """
    classes = dataset_classes(dataset)
    if classes is None:
        return
    wrong: List[str] = [f'{path}.num_classes = {n}' for path, n in class_heads(model) if n != len(classes)]
    if wrong:
        shown = ', '.join(repr(c) for c in classes[:8]) + (', ...' if len(classes) > 8 else '')
        raise ClassCountMismatchError(
            f'the model and the {split} dataset disagree on the number of classes: '
            f'{"; ".join(wrong)}, but the dataset has {len(classes)} classes ({shown}) '
            f'[{describe_dataset(dataset)}]. Set model.{wrong[0].split(" = ")[0]} = {len(classes)} '
            "in the config, or the dataset's metainfo=dict(classes=...) to the model's classes."
        )


@HOOKS.register_module()
class NumClassesCheckHook(Hook):
    """Compare every class-specific head's ``num_classes`` with the classes of the train, val and
    test datasets, before the first iteration of each loop.

    A mismatch otherwise trains silently (more outputs than classes) or fails deep in a loss or a
    metric ("index out of bounds", a device-side assert). Raises
    :class:`~sdt_dense.errors.ClassCountMismatchError` naming both numbers. The val dataset is also
    checked in ``before_train``, so a wrong validation split stops the run before training.
    """

    priority = 'VERY_HIGH'

    @staticmethod
    def _model(runner) -> nn.Module:
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    @staticmethod
    def _built_loop_dataset(runner, name: str) -> Any:
        loop = getattr(runner, f'_{name}_loop', None)  # a dict (config) until the runner builds it
        loader = getattr(loop, 'dataloader', None)
        return getattr(loader, 'dataset', None)

    def before_train(self, runner) -> None:
        check_num_classes(self._model(runner), runner.train_dataloader.dataset, 'train')
        val = self._built_loop_dataset(runner, 'val')
        if val is not None:
            check_num_classes(self._model(runner), val, 'val')

    def before_val(self, runner) -> None:
        check_num_classes(self._model(runner), runner.val_loop.dataloader.dataset, 'val')

    def before_test(self, runner) -> None:
        check_num_classes(self._model(runner), runner.test_loop.dataloader.dataset, 'test')
