"""Stop with a clear error when a dataset the run needs has no samples."""

from __future__ import annotations

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ...datasets.empty_dataset import check_not_empty


@HOOKS.register_module()
class NonEmptyDatasetHook(Hook):
    """Raise :class:`~sdt_dense.datasets.EmptyDatasetError` naming the dataset (type, data_root,
    ann_file, data_prefix) when the train, val or test dataset has no samples.

    It runs before the first batch is drawn. mmengine itself stops in ``DefaultSampler`` with a
    ``ZeroDivisionError`` (or, with ``round_up=False``, trains zero iterations without a word), and
    an empty validation or test set yields metrics over nothing. Serialised datasets (mmengine's
    default) fail earlier, while being built, with a numpy message; ``tools/train.py`` and
    ``tools/test.py`` turn that into the same error
    (:func:`~sdt_dense.datasets.empty_dataset_errors`). A non-serialised empty dataset with an
    ``InfiniteSampler`` and ``num_workers > 0`` would hang inside mmengine's loop construction,
    before any hook runs; ``tools/train.py`` therefore builds the train dataloader first and checks
    it (:func:`sdt_dense.cli.train.build_train_dataloader_early`), with the same error.
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        check_not_empty(runner.train_dataloader.dataset, 'train')

    def before_val(self, runner) -> None:
        check_not_empty(runner.val_loop.dataloader.dataset, 'val')

    def before_test(self, runner) -> None:
        check_not_empty(runner.test_loop.dataloader.dataset, 'test')
