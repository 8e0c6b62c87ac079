"""Broken dataset files name themselves: annotation JSON (file, line, column), COCO structure (key,
entry), segmentation label maps (file, values, size) and a num_classes that disagrees with the
dataset's classes (both numbers). Each case is a hand-made broken file; nothing is written."""

import copy
import hashlib
import json
from types import SimpleNamespace

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope
from PIL import Image
from torch import nn

from sdt_dense.datasets import annotation_errors, check_annotation_files
from sdt_dense.engine.hooks.num_classes_check_hook import NumClassesCheckHook, check_num_classes
from sdt_dense.errors import (
    BrokenAnnotationError,
    BrokenFileError,
    BrokenLabelMapError,
    ClassCountMismatchError,
)
from sdt_testing import REPO, make_toy_data, run_tool

SEG_CFG = REPO / 'configs/toy/fpn_e-spikeformer-t_toy.py'
DET_CFG = REPO / 'configs/toy/mask-rcnn_e-spikeformer-t_spike-fpn_toy.py'


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _coco_cfg(path, split='train_dataloader'):
    return {split: dict(dataset=dict(type='CocoDataset', data_root=str(path.parent), ann_file=path.name))}


def _valid_coco():
    return {
        'images': [
            {'id': 1, 'file_name': 'a.jpg', 'width': 64, 'height': 48},
            {'id': 2, 'file_name': 'b.jpg', 'width': 64, 'height': 48},
        ],
        'annotations': [
            {'id': 1, 'image_id': 1, 'category_id': 3, 'bbox': [1, 2, 10, 12], 'area': 120, 'iscrowd': 0},
            {'id': 2, 'image_id': 2, 'category_id': 3, 'bbox': [0, 0, 5.5, 4], 'area': 22, 'iscrowd': 0},
        ],
        'categories': [{'id': 3, 'name': 'circle'}],
    }


# ------------------------------------------------------------------------------------------------
# Annotation JSON


def test_valid_coco_passes_and_pycocotools_agrees(tmp_path):
    """Control: a correct hand-made file passes, and pycocotools reads it."""
    from pycocotools.coco import COCO

    path = tmp_path / 'ok.json'
    path.write_text(json.dumps(_valid_coco()))
    assert check_annotation_files(_coco_cfg(path)) == [str(path)]
    assert sorted(COCO(str(path)).getImgIds()) == [1, 2]


def test_truncated_json_names_file_line_and_column(tmp_path):
    # cut after the second line: the value the '[' opened never comes (line 2 has 13 characters,
    # so the text ends at line 2, column 14)
    path = tmp_path / 'instances.json'
    path.write_text('{\n  "images": [')
    digest = _digest(path)
    with pytest.raises(BrokenAnnotationError) as err:
        check_annotation_files(_coco_cfg(path))
    assert str(err.value) == (
        f'{path}: invalid JSON at line 2, column 14: Expecting value (the file ends early: truncated?)'
    )
    assert isinstance(err.value, BrokenFileError) and isinstance(err.value, ValueError)
    assert _digest(path) == digest and sorted(p.name for p in tmp_path.iterdir()) == ['instances.json']


def test_invalid_json_inside_the_file(tmp_path):
    path = tmp_path / 'instances.json'
    path.write_text('{"images": [],\n "categories": [,]}')  # the ',' at line 2, column 17
    with pytest.raises(BrokenAnnotationError, match=r'invalid JSON at line 2, column 17: Expecting value$'):
        check_annotation_files(_coco_cfg(path, 'test_dataloader'))


def test_not_json_at_all(tmp_path):
    path = tmp_path / 'instances.json'
    path.write_bytes(b'\x89PNG\r\n\x1a\n\x00\x00')
    with pytest.raises(BrokenAnnotationError, match=rf'^{path}: not UTF-8 text \(byte 0\)'):
        check_annotation_files(_coco_cfg(path))


def _break(data, section, index, key, value):
    data = copy.deepcopy(data)
    if value is KeyError:
        del data[section][index][key]
    else:
        data[section][index][key] = value
    return data


COCO_CASES = {
    'missing top-level key': (
        lambda d: {k: v for k, v in d.items() if k != 'categories'},
        "not a COCO annotation file: missing top-level key(s) ['categories'] "
        "(it has ['annotations', 'images'])",
    ),
    'missing bbox': (
        lambda d: _break(d, 'annotations', 1, 'bbox', KeyError),
        "annotations[1] (id 2) has no 'bbox' (needs a list of 4 numbers [x, y, w, h])",
    ),
    'bbox of 3 numbers': (
        lambda d: _break(d, 'annotations', 0, 'bbox', [1, 2, 3]),
        "annotations[0] (id 1): 'bbox' must be a list of 4 numbers [x, y, w, h], got [1, 2, 3]",
    ),
    'width as a string': (
        lambda d: _break(d, 'images', 1, 'width', '64'),
        "images[1] (id 2): 'width' must be a positive integer, got '64'",
    ),
    'category id as a float': (
        lambda d: _break(d, 'categories', 0, 'id', 3.0),
        "categories[0] (id 3.0): 'id' must be an integer, got 3.0",
    ),
    'unknown image id': (
        lambda d: _break(d, 'annotations', 1, 'image_id', 7),
        "annotations[1] (id 2): 'image_id' 7 is not the id of any entry of images",
    ),
    'images not a list': (lambda d: {**d, 'images': {'id': 1}}, "'images' must be a list, got a dict"),
}


@pytest.mark.parametrize('case', sorted(COCO_CASES))
def test_coco_structure_names_key_and_entry(tmp_path, case):
    make, expected = COCO_CASES[case]
    path = tmp_path / 'instances.json'
    path.write_text(json.dumps(make(_valid_coco())))
    with pytest.raises(BrokenAnnotationError) as err:
        check_annotation_files(_coco_cfg(path))
    assert str(err.value) == f'{path}: {expected}'


def test_wrapped_datasets_are_checked(tmp_path):
    path = tmp_path / 'b.json'
    path.write_text('{"images": [}')
    cfg = {
        'val_dataloader': dict(
            dataset=dict(
                type='ConcatDataset',
                datasets=[
                    dict(type='RepeatDataset', times=2, dataset=dict(type='CocoDataset', ann_file=str(path)))
                ],
            )
        )
    }
    with pytest.raises(BrokenAnnotationError, match=f'{path}: invalid JSON at line 1, column 13'):
        check_annotation_files(cfg)


def test_non_coco_json_is_only_parsed(tmp_path):
    """A dataset of another format only needs valid JSON (no COCO keys)."""
    path = tmp_path / 'ann.json'
    path.write_text('{"metainfo": {}, "data_list": []}')
    assert check_annotation_files(
        {'train_dataloader': dict(dataset=dict(type='BaseSegDataset', ann_file=str(path)))}
    ) == [str(path)]


def test_dataset_build_fallback_names_the_file(tmp_path):
    """Control and fix: mmdet's CocoDataset alone fails with a bare JSONDecodeError; inside
    annotation_errors() (tools/train.py, tools/test.py) the same failure names the file."""
    from mmdet.registry import DATASETS

    path = tmp_path / 'instances.json'
    path.write_text('{\n  "images": [')
    cfg = dict(
        type='CocoDataset', data_root=str(tmp_path), ann_file=path.name, data_prefix=dict(img=''), pipeline=[]
    )
    with DefaultScope.overwrite_default_scope('mmdet'):
        with pytest.raises(json.JSONDecodeError) as bare:
            DATASETS.build(cfg)
        assert str(path) not in str(bare.value)
        with pytest.raises(BrokenAnnotationError, match=f'^{path}: invalid JSON at line 2, column 14'):
            with annotation_errors():
                DATASETS.build(cfg)


# ------------------------------------------------------------------------------------------------
# Segmentation label maps


@pytest.fixture(scope='module')
def seg_cfg():
    return Config.fromfile(str(SEG_CFG))


def _seg_dataset(seg_cfg, root):
    from mmseg.registry import DATASETS

    cfg = copy.deepcopy(seg_cfg.val_dataloader.dataset)
    cfg.update(
        data_root=str(root), data_prefix=dict(img_path='images/training', seg_map_path='annotations/training')
    )
    with DefaultScope.overwrite_default_scope('mmseg'):
        return DATASETS.build(cfg)


@pytest.mark.slow
def test_toy_config_checks_label_maps(seg_cfg):
    types = [t['type'] for t in seg_cfg.train_pipeline]
    assert types.index('CheckSegLabel') == types.index('LoadAnnotations') + 1
    assert [t for t in seg_cfg.test_pipeline if t['type'] == 'CheckSegLabel'] == [
        dict(type='CheckSegLabel', num_classes=len(seg_cfg.classes))
    ]


@pytest.mark.slow
def test_label_values_outside_the_classes_are_named(tmp_path, seg_cfg):
    root = make_toy_data('seg', tmp_path / 'toy_ade', num_train=2, num_val=1)
    ds = _seg_dataset(seg_cfg, root)
    for i in range(len(ds)):  # control: the toy labels (0 = background, 1..4) all pass
        ds[i]
    png = root / 'annotations/training/toy_000001.png'
    label = np.array(Image.open(png))
    label[0, :3] = 9  # 4 classes + background: file values 0..4 are valid, 9 is not
    label[5, 5] = 6
    Image.fromarray(label).save(png)
    digest = _digest(png)
    index = [ds.get_data_info(i)['seg_map_path'] for i in range(len(ds))].index(str(png))
    with pytest.raises(BrokenLabelMapError) as err:
        ds[index]
    # reduce_zero_label shifts by one: the loss would see 5 and 8 with num_classes 4
    assert str(err.value) == (
        f'{png}: label values outside 0..3 and the ignore index 255: '
        '5 (1 px), 8 (3 px) after the reduce_zero_label shift; in the file: 6, 9'
    )
    assert _digest(png) == digest


@pytest.mark.slow
def test_label_map_of_another_size_is_named(tmp_path, seg_cfg):
    root = make_toy_data('seg', tmp_path / 'toy_ade', num_train=1, num_val=1)
    png = root / 'annotations/training/toy_000000.png'
    Image.open(png).crop((0, 0, 64, 32)).save(png)  # the image stays 64x64
    ds = _seg_dataset(seg_cfg, root)
    with pytest.raises(
        BrokenLabelMapError,
        match=rf'^{png}: label map is 64x32 \(WxH\) but its image '
        rf'\S+toy_000000.jpg is 64x64$',
    ):
        ds[0]


def test_check_seg_label_without_reduce_zero_label():
    from sdt_dense.datasets.transforms import CheckSegLabel

    t = CheckSegLabel(num_classes=3, ignore_index=255)
    ok = np.array([[0, 1, 2, 255]], np.uint8)
    assert t(dict(gt_seg_map=ok, seg_map_path='x.png')) is not None
    with pytest.raises(BrokenLabelMapError, match=r'^x.png: .*0\.\.2 and the ignore index 255: 3 \(2 px\)$'):
        t(dict(gt_seg_map=np.array([[0, 3, 3, 255]], np.uint8), seg_map_path='x.png'))
    with pytest.raises(ValueError, match='num_classes'):
        CheckSegLabel(num_classes=0)


# ------------------------------------------------------------------------------------------------
# num_classes against the dataset's classes


class _Detector(nn.Module):
    def __init__(self, n_bbox, n_mask):
        super().__init__()
        self.rpn_head = nn.Module()
        self.rpn_head.num_classes = 1  # object vs background: never compared
        self.roi_head = nn.Module()
        self.roi_head.bbox_head = nn.Module()
        self.roi_head.bbox_head.num_classes = n_bbox
        self.roi_head.mask_head = nn.Module()
        self.roi_head.mask_head.num_classes = n_mask


def _dataset(classes):
    return SimpleNamespace(metainfo=dict(classes=classes))


def test_num_classes_mismatch_names_both_numbers():
    ds = _dataset(('a', 'b', 'c', 'd'))
    check_num_classes(_Detector(4, 4), ds, 'train')  # control: agreeing heads pass, RPN ignored
    with pytest.raises(ClassCountMismatchError) as err:
        check_num_classes(_Detector(3, 4), ds, 'train')
    msg = str(err.value)
    assert msg.startswith(
        'the model and the train dataset disagree on the number of classes: '
        'roi_head.bbox_head.num_classes = 3, but the dataset has 4 classes '
        "('a', 'b', 'c', 'd')"
    ), msg
    assert 'Set model.roi_head.bbox_head.num_classes = 4' in msg and 'mask_head' not in msg
    check_num_classes(_Detector(3, 3), SimpleNamespace(), 'train')  # no metainfo: not checked


@pytest.mark.parametrize('split', ['val', 'test'])
def test_num_classes_hook_checks_val_and_test(split):
    loop = SimpleNamespace(dataloader=SimpleNamespace(dataset=_dataset(('a', 'b'))))
    runner = SimpleNamespace(model=_Detector(2, 3), **{f'{split}_loop': loop})
    with pytest.raises(
        ClassCountMismatchError, match=rf'{split} dataset.*mask_head.num_classes = 3.* 2 classes'
    ):
        getattr(NumClassesCheckHook(), f'before_{split}')(runner)


@pytest.mark.slow
def test_seg_runner_stops_before_the_first_iteration(tmp_path, seg_cfg):
    """The toy segmentor with num_classes 5 on its 4-class dataset stops before iteration 1."""
    from mmengine.runner import Runner
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    root = make_toy_data('seg', tmp_path / 'toy_ade', num_train=2, num_val=1)
    cfg = copy.deepcopy(seg_cfg)
    cfg.model.decode_head.num_classes = 5
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = str(root)
        cfg[f'{split}_dataloader'].num_workers = 0
        cfg[f'{split}_dataloader'].persistent_workers = False
    cfg.work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ClassCountMismatchError, match=r'decode_head.num_classes = 5, but the dataset has 4 '):
        runner.train()
    assert runner.iter == 0 and not list((tmp_path / 'work').rglob('*.pth'))


@pytest.mark.slow
def test_tools_train_names_a_truncated_annotation_file(tmp_path):
    """End to end: tools/train.py and tools/test.py name the file, line and column before any
    model is built; nothing is written to the work dir but the logs."""
    root = make_toy_data('det', tmp_path / 'toy_coco', num_train=2, num_val=1)
    ann = root / 'annotations/instances_train2017.json'
    full = ann.read_text()
    text = full[: full.index('"annotations"')]  # cut just before a key: the object never ends
    ann.write_text(text)
    line = text.count('\n') + 1
    column = len(text) - (text.rfind('\n') + 1) + 1  # json counts columns from 1
    data = [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')]
    proc = run_tool(
        ['train.py', DET_CFG, '--work-dir', tmp_path / 'work', '--cfg-options'] + data, timeout=600
    )
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f'sdt_dense.errors.BrokenAnnotationError: {ann}: invalid JSON at line {line}, column {column}: '
    ), proc.stderr[-3000:]
    assert last.endswith('(the file ends early: truncated?)')
    assert not [p for p in (tmp_path / 'work').rglob('*') if p.is_file()]
