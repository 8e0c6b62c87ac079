"""Annotation files checked before a run: invalid JSON names its line and column, a COCO file its
missing key or wrong entry, instead of a bare ``JSONDecodeError`` or ``KeyError`` from deep inside
pycocotools or mmengine.

``tools/train.py`` and ``tools/test.py`` call :func:`check_annotation_files` on the config before
the runner is built; :func:`annotation_errors` is the fallback around dataset building (e.g. for an
annotation file that changed in between).
"""

from __future__ import annotations

import contextlib
import json
import os
import os.path as osp
from numbers import Number
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..errors import BrokenAnnotationError

#: what every entry of each COCO list needs: key -> (type(s), description). ``bool`` is excluded
#: from the integers explicitly (it is an ``int`` in Python).
_INT = (int,)
COCO_ENTRY_KEYS: Dict[str, Dict[str, tuple]] = {
    'images': {
        'id': (_INT, 'an integer'),
        'file_name': ((str,), 'a string'),
        'width': (_INT, 'a positive integer'),
        'height': (_INT, 'a positive integer'),
    },
    'annotations': {
        'id': (_INT, 'an integer'),
        'image_id': (_INT, 'an integer'),
        'category_id': (_INT, 'an integer'),
        'bbox': ((list,), 'a list of 4 numbers [x, y, w, h]'),
    },
    'categories': {'id': (_INT, 'an integer'), 'name': ((str,), 'a string')},
}
#: top-level keys a COCO file must have. ``annotations`` may be absent (test-dev image lists).
COCO_REQUIRED_KEYS = ('images', 'categories')


def load_json(path: str) -> Any:
    """``json.load`` whose failure names the file, line and column.

    Raises:
        BrokenAnnotationError: invalid or truncated JSON, or not UTF-8 text.
    """
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except UnicodeDecodeError as err:
        raise BrokenAnnotationError(path, f'not UTF-8 text (byte {err.start}): not a JSON file') from err
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        # the error is at the very end, or a string that never closes: the file was cut short
        ends_early = err.pos >= len(text.rstrip()) or err.msg.startswith('Unterminated string')
        raise BrokenAnnotationError(
            path,
            f'invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}'
            + (' (the file ends early: truncated?)' if ends_early else ''),
        ) from err


def _bad_value(key: str, value: Any, kinds: tuple) -> bool:
    if isinstance(value, bool) or not isinstance(value, kinds):
        return True
    if key in ('width', 'height'):
        return value <= 0
    if key == 'bbox':
        return len(value) != 4 or not all(isinstance(v, Number) and not isinstance(v, bool) for v in value)
    return False


def check_coco(data: Any, path: str) -> None:
    """Check the structure mmdet's ``CocoDataset`` relies on.

    Checks the top-level keys, every entry of ``images``, ``annotations`` and ``categories``
    (:data:`COCO_ENTRY_KEYS`), and that each annotation's ``image_id`` and ``category_id`` exist.

    Raises:
        BrokenAnnotationError: naming the key and the entry (list name, index and ``id``).
    """
    if not isinstance(data, dict):
        raise BrokenAnnotationError(path, f'a COCO file holds a JSON object, got a {type(data).__name__}')
    missing = [k for k in COCO_REQUIRED_KEYS if k not in data]
    if missing:
        raise BrokenAnnotationError(
            path,
            f'not a COCO annotation file: missing top-level key(s) {missing} (it has {sorted(data)[:8]})',
        )
    ids: Dict[str, set] = {}
    for section, fields in COCO_ENTRY_KEYS.items():
        entries = data.get(section, [])
        if not isinstance(entries, list):
            raise BrokenAnnotationError(path, f"'{section}' must be a list, got a {type(entries).__name__}")
        for i, entry in enumerate(entries):
            where = f'{section}[{i}]'
            if not isinstance(entry, dict):
                raise BrokenAnnotationError(path, f'{where} must be an object, got {entry!r:.60}')
            if 'id' in entry:
                where += f' (id {entry["id"]!r:.30})'
            for key, (kinds, what) in fields.items():
                if key not in entry:
                    raise BrokenAnnotationError(path, f"{where} has no '{key}' (needs {what})")
                if _bad_value(key, entry[key], kinds):
                    raise BrokenAnnotationError(
                        path, f"{where}: '{key}' must be {what}, got {entry[key]!r:.60}"
                    )
        ids[section] = {e['id'] for e in entries}
    for i, ann in enumerate(data.get('annotations', [])):
        for key, section in (('image_id', 'images'), ('category_id', 'categories')):
            if ann[key] not in ids[section]:
                raise BrokenAnnotationError(
                    path,
                    f"annotations[{i}] (id {ann['id']}): '{key}' {ann[key]} is not the id of "
                    f'any entry of {section}',
                )


def _is_coco(dataset_type: Any) -> bool:
    """Whether a dataset type (a class or a registry name) is mmdet's ``CocoDataset`` or derives
    from it; a name that cannot be resolved counts when it says 'Coco'."""
    cls = dataset_type
    if isinstance(dataset_type, str):
        try:
            from mmdet.registry import DATASETS

            cls = DATASETS.get(dataset_type)
        except ImportError:  # pragma: no cover - mmdet not installed
            cls = None
    if isinstance(cls, type):
        try:
            from mmdet.datasets import CocoDataset
        except ImportError:  # pragma: no cover
            return 'Coco' in cls.__name__
        return issubclass(cls, CocoDataset)
    return isinstance(dataset_type, str) and 'Coco' in dataset_type


def _dataset_cfgs(cfg: Any) -> Iterator[Dict[str, Any]]:
    """Every dataset config inside a dataset config (wrappers' ``dataset``/``datasets``)."""
    if isinstance(cfg, dict):
        yield cfg
        yield from _dataset_cfgs(cfg.get('dataset'))
        for inner in cfg.get('datasets', None) or []:
            yield from _dataset_cfgs(inner)


def annotation_path(dataset_cfg: Dict[str, Any]) -> Optional[str]:
    """The local ``ann_file`` of a dataset config, joined with ``data_root`` as mmengine does."""
    ann_file = dataset_cfg.get('ann_file')
    if not ann_file or not isinstance(ann_file, str) or '://' in ann_file:
        return None
    root = dataset_cfg.get('data_root')
    if root and not osp.isabs(ann_file) and '://' not in str(root):
        ann_file = osp.join(root, ann_file)
    return ann_file


def check_annotation_file(path: str, coco: bool) -> None:
    """Check one annotation file: valid JSON (a ``.json`` file), and COCO structure if ``coco``."""
    data = load_json(path)
    if coco:
        check_coco(data, path)


def check_annotation_files(cfg: Any) -> List[str]:
    """Check the JSON annotation files of the train/val/test datasets of a config.

    Files that do not exist are left to the dataset (mmengine names them); files that are not
    ``.json`` are not read. Each file is read once.

    Returns:
        the files checked.

    Raises:
        BrokenAnnotationError: the first broken file, naming what is wrong and where.
    """
    checked: Dict[str, bool] = {}
    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(split) if hasattr(cfg, 'get') else None
        if not isinstance(loader, dict):
            continue
        for ds in _dataset_cfgs(loader.get('dataset')):
            path = annotation_path(ds)
            if path is None or not path.endswith('.json') or not osp.isfile(path):
                continue
            coco = _is_coco(ds.get('type'))
            if checked.get(path) is None or (coco and not checked[path]):
                check_annotation_file(path, coco)
                checked[path] = coco
    return list(checked)


def _ann_file_in(exc: BaseException) -> Tuple[Optional[str], Any]:
    """The ``ann_file`` and the dataset that was loading it when ``exc`` was raised, or None."""
    tb = exc.__traceback__
    found: Tuple[Optional[str], Any] = (None, None)
    while tb is not None:
        owner = tb.tb_frame.f_locals.get('self')
        ann_file = getattr(owner, 'ann_file', None)
        if isinstance(ann_file, str) and ann_file:
            found = (ann_file, owner)  # the innermost dataset
        tb = tb.tb_next
    return found


@contextlib.contextmanager
def annotation_errors() -> Iterator[None]:
    """Turn a ``JSONDecodeError`` (or a COCO ``KeyError``/``TypeError``) raised while a dataset
    loads its annotation file into :class:`BrokenAnnotationError` naming the file.

    The fallback of :func:`check_annotation_files`, used by ``tools/train.py`` and ``tools/test.py``
    around ``runner.train()``/``runner.test()``. Other errors pass through unchanged.
    """
    try:
        yield
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, BrokenAnnotationError):
            raise
        path, dataset = _ann_file_in(exc)
        if path is None or not path.endswith('.json') or not os.path.isfile(path):
            raise
        try:
            check_annotation_file(path, coco=_is_coco(type(dataset)))
        except BrokenAnnotationError as broken:
            raise broken from exc
        raise
