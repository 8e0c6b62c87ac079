"""Bad datasets and awkward inputs: missing paths are named, corrupt images are skipped or named
(as configured), odd sizes and images without annotations work end to end on the toy models."""

import copy
import json

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope
from PIL import Image

from sdt_dense.datasets import EmptyDatasetError, ImageLoadError, check_not_empty
from sdt_testing import REPO, make_toy_data, run_tool
from sdt_testing.toy_runner import toy_runner_cfg

SEG_CFG = REPO / 'configs/toy/fpn_e-spikeformer-t_toy.py'
DET_CFG = REPO / 'configs/toy/mask-rcnn_e-spikeformer-t_spike-fpn_toy.py'


def _registries(scope):
    if scope == 'mmdet':
        from mmdet.registry import DATASETS, MODELS
    else:
        from mmseg.registry import DATASETS, MODELS
    return DATASETS, MODELS


def _build_dataset(scope, cfg):
    DATASETS, _ = _registries(scope)
    with DefaultScope.overwrite_default_scope(scope):
        return DATASETS.build(cfg)


def _paths(ds):
    return [ds.get_data_info(i)['img_path'] for i in range(len(ds))]


def _safe_pipeline(pipeline, on_error='raise'):
    pipeline = copy.deepcopy(pipeline)
    assert pipeline[0]['type'] in ('LoadImageFromFile', 'SafeLoadImageFromFile')
    pipeline[0] = dict(type='SafeLoadImageFromFile', on_error=on_error)
    return pipeline


# ------------------------------------------------------------------------------------------------
# Missing paths


def test_missing_annotation_file_is_named(tmp_path):
    cfg = dict(
        type='CocoDataset',
        data_root=str(tmp_path),
        ann_file='annotations/nope.json',
        data_prefix=dict(img='train2017/'),
        pipeline=[],
    )
    with pytest.raises(FileNotFoundError, match=str(tmp_path / 'annotations/nope.json')):
        _build_dataset('mmdet', cfg)


def test_missing_image_directory_is_named(tmp_path):
    cfg = dict(
        type='BaseSegDataset',
        data_root=str(tmp_path / 'no_data'),
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        pipeline=[],
    )
    with pytest.raises(FileNotFoundError, match=str(tmp_path / 'no_data/images/training')):
        _build_dataset('mmseg', cfg)


# ------------------------------------------------------------------------------------------------
# Empty datasets: an error naming the dataset, never a silent no-op or a numpy message


def _toy_runner(tmp_path, hooks):
    from mmengine.runner import Runner

    cfg = toy_runner_cfg(str(tmp_path), by_epoch=True, hooks=hooks)
    cfg['train_dataloader']['dataset']['n'] = 0
    return Runner.from_cfg(cfg)


def test_empty_train_dataset_stops_before_training(tmp_path):
    runner = _toy_runner(tmp_path, [dict(type='NonEmptyDatasetHook')])
    with pytest.raises(EmptyDatasetError, match=r'the train dataset has no samples: RelToyDataset'):
        runner.train()
    assert not list(tmp_path.glob('*.pth'))


def test_control_without_hook_mmengine_fails_obscurely(tmp_path):
    runner = _toy_runner(tmp_path, [])
    with pytest.raises(ZeroDivisionError):  # inside DefaultSampler.__iter__
        runner.train()


@pytest.mark.parametrize('split', ['val', 'test'])
def test_empty_val_and_test_datasets_are_named(split):
    from types import SimpleNamespace

    from sdt_dense.engine import NonEmptyDatasetHook

    loop = SimpleNamespace(dataloader=SimpleNamespace(dataset=[]))
    runner = SimpleNamespace(**{f'{split}_loop': loop})
    with pytest.raises(EmptyDatasetError, match=f'the {split} dataset has no samples: list'):
        getattr(NonEmptyDatasetHook(), f'before_{split}')(runner)
    loop.dataloader.dataset = [0]
    getattr(NonEmptyDatasetHook(), f'before_{split}')(runner)


def test_empty_dataset_message_names_paths_and_wrapped_datasets():
    cfg = dict(
        type='RepeatDataset',
        times=2,
        dataset=dict(
            type='CocoDataset',
            data_root='data/coco/',
            ann_file='a/b.json',
            data_prefix=dict(img='train2017/'),
            filter_cfg=dict(filter_empty_gt=True),
        ),
    )
    with pytest.raises(EmptyDatasetError) as err:
        check_not_empty(_Sized(0, cfg), 'val')
    msg = str(err.value)
    assert msg.startswith(
        "the val dataset has no samples: RepeatDataset(dataset=CocoDataset(data_root='data/coco/', "
        "ann_file='a/b.json', data_prefix={'img': 'train2017/'}, "
        "filter_cfg={'filter_empty_gt': True}))"
    )
    check_not_empty(_Sized(1, cfg))  # one sample is enough
    check_not_empty(iter([]))  # no length (iterable-style): not checked


class _Sized(dict):
    """A dataset config dict that also has a length."""

    def __init__(self, n, cfg):
        super().__init__(cfg)
        self.n = n

    def __len__(self):
        return self.n


@pytest.mark.slow
def test_tools_train_names_an_empty_image_directory(tmp_path):
    """Serialised mmengine datasets fail while being built; tools/train.py names the dataset."""
    root = tmp_path / 'empty_ade'
    for sub in ('images/training', 'annotations/training', 'images/validation', 'annotations/validation'):
        (root / sub).mkdir(parents=True)
    proc = run_tool(
        [
            'train.py',
            SEG_CFG,
            '--work-dir',
            tmp_path / 'work',
            '--cfg-options',
            f'train_dataloader.dataset.data_root={root}',
        ],
        timeout=300,
    )
    assert proc.returncode != 0
    assert 'EmptyDatasetError: a dataset has no samples: BaseSegDataset(' in proc.stderr
    assert f"'img_path': '{root}/images/training'" in proc.stderr
    assert 'need at least one array to concatenate' in proc.stderr  # the cause, kept in the chain
    assert not list((tmp_path / 'work').rglob('*.pth'))


# ------------------------------------------------------------------------------------------------
# A corrupt image inside a dataset: skipped (training) or named, as configured


@pytest.fixture(scope='module')
def seg_cfg():
    return Config.fromfile(str(SEG_CFG))


@pytest.fixture
def seg_data_with_corrupt_image(tmp_path):
    root = make_toy_data('seg', tmp_path / 'toy_ade', num_train=3, num_val=1)
    bad = root / 'images/training/toy_000001.jpg'
    bad.write_bytes(bad.read_bytes()[:300])  # truncated
    return root, bad


def _seg_dataset(seg_cfg, root, on_error, test_mode=False):
    cfg = copy.deepcopy(seg_cfg.train_dataloader.dataset)
    cfg.update(
        data_root=str(root), test_mode=test_mode, pipeline=_safe_pipeline(seg_cfg.test_pipeline, on_error)
    )
    return _build_dataset('mmseg', cfg)


def test_corrupt_image_is_skipped_in_training(seg_cfg, seg_data_with_corrupt_image):
    root, bad = seg_data_with_corrupt_image
    ds = _seg_dataset(seg_cfg, root, 'skip')
    index = _paths(ds).index(str(bad))
    sample = ds[index]  # mmengine draws another index when a transform returns None
    assert sample['data_samples'].img_path != str(bad)
    assert sample['inputs'].shape == (3, 64, 64)


def test_corrupt_image_raises_naming_it(seg_cfg, seg_data_with_corrupt_image):
    root, bad = seg_data_with_corrupt_image
    ds = _seg_dataset(seg_cfg, root, 'raise')
    index = _paths(ds).index(str(bad))
    with pytest.raises(ImageLoadError, match=f'corrupt image {bad}: truncated JPEG'):
        ds[index]


def test_corrupt_image_at_test_time_stops(seg_cfg, seg_data_with_corrupt_image):
    """The evaluation set must stay complete: even with on_error='skip', a test run stops."""
    root, bad = seg_data_with_corrupt_image
    ds = _seg_dataset(seg_cfg, root, 'skip', test_mode=True)
    index = _paths(ds).index(str(bad))
    with pytest.raises(Exception, match='Test time pipline should not get `None`'):
        ds[index]


# ------------------------------------------------------------------------------------------------
# Odd sizes, grayscale/RGBA files and images without annotations through the toy models


def _model(cfg, scope):
    _, MODELS = _registries(scope)
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    return model


def _square_image(h, w, box, mode='RGB'):
    """Grey background with a bright square at ``box = (x1, y1, x2, y2)``."""
    img = np.full((h, w, 3), 60, np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = (230, 200, 40)
    if mode == 'L':
        return Image.fromarray(img[..., 0])
    if mode == 'RGBA':
        return Image.fromarray(np.dstack([img, np.full((h, w), 128, np.uint8)]))
    return Image.fromarray(img)


def _write_seg(root, items):
    """ADE-layout folder with ``(name, h, w, box, mode, labelled)`` images."""
    for sub in ('images/training', 'annotations/training'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name, h, w, box, mode, labelled in items:
        _square_image(h, w, box, mode).save(root / 'images/training' / f'{name}.png')
        label = np.zeros((h, w), np.uint8)  # 0 = background (ignored, reduce_zero_label)
        if labelled:
            x1, y1, x2, y2 = box
            label[y1:y2, x1:x2] = 2
        Image.fromarray(label).save(root / 'annotations/training' / f'{name}.png')


SEG_ITEMS = [
    ('odd_rgb', 72, 100, (10, 20, 50, 60), 'RGB', True),
    ('odd_gray', 50, 90, (5, 5, 30, 40), 'L', True),
    ('odd_rgba', 100, 70, (20, 10, 60, 50), 'RGBA', True),
    ('no_labels', 66, 66, (0, 0, 1, 1), 'RGB', False),
]


@pytest.mark.slow
def test_seg_model_odd_sizes_color_layouts_and_empty_labels(tmp_path, seg_cfg):
    _write_seg(tmp_path, SEG_ITEMS)
    model = _model(seg_cfg, 'mmseg')
    base = dict(data_root=str(tmp_path), img_suffix='.png')
    train_cfg = copy.deepcopy(seg_cfg.train_dataloader.dataset)
    train_cfg.update(base, pipeline=_safe_pipeline(seg_cfg.train_pipeline))
    test_cfg = copy.deepcopy(seg_cfg.train_dataloader.dataset)
    test_cfg.update(base, pipeline=_safe_pipeline(seg_cfg.test_pipeline), test_mode=True)
    train_ds, test_ds = _build_dataset('mmseg', train_cfg), _build_dataset('mmseg', test_cfg)
    order = [osp_name(p) for p in _paths(test_ds)]

    model.train()
    for i in range(len(train_ds)):  # each alone, the unlabelled one included
        data = model.data_preprocessor(pseudo_collate([train_ds[i]]), True)
        losses = model(**data, mode='loss')
        assert all(torch.isfinite(v).all() for k, v in losses.items() if 'loss' in k), losses

    model.eval()
    with torch.no_grad():  # batch 1 (mmseg tests images of different sizes one by one)
        preds = [model.test_step(pseudo_collate([test_ds[i]]))[0] for i in range(len(test_ds))]
    for name, pred in zip(order, preds):
        _, h, w, *_ = next(it for it in SEG_ITEMS if it[0] == name)
        assert pred.seg_logits.data.shape == (4, h, w), name
        assert pred.pred_sem_seg.data.shape == (1, h, w), name


def osp_name(path):
    return path.rsplit('/', 1)[-1].rsplit('.', 1)[0]


@pytest.fixture(scope='module')
def det_cfg():
    return Config.fromfile(str(DET_CFG))


@pytest.mark.slow
def test_det_model_odd_sizes_color_layouts_and_no_annotations(tmp_path, det_cfg):
    items = [  # (file, h, w, box or None, mode)
        ('odd_rgb.png', 72, 100, (10, 20, 50, 60), 'RGB'),
        ('odd_gray.png', 50, 90, (5, 5, 45, 40), 'L'),
        ('odd_rgba.png', 100, 70, (20, 10, 60, 50), 'RGBA'),
        ('empty.png', 90, 50, None, 'RGB'),
    ]
    (tmp_path / 'img').mkdir()
    images, anns = [], []
    for i, (file, h, w, box, mode) in enumerate(items, 1):
        _square_image(h, w, box or (0, 0, 0, 0), mode).save(tmp_path / 'img' / file)
        images.append(dict(id=i, file_name=file, height=h, width=w))
        if box:
            x1, y1, x2, y2 = box
            anns.append(
                dict(
                    id=len(anns) + 1,
                    image_id=i,
                    category_id=1,
                    iscrowd=0,
                    bbox=[x1, y1, x2 - x1, y2 - y1],
                    area=(x2 - x1) * (y2 - y1),
                    segmentation=[[x1, y1, x2, y1, x2, y2, x1, y2]],
                )
            )
    coco = dict(
        images=images,
        annotations=anns,
        categories=[dict(id=k + 1, name=n) for k, n in enumerate(det_cfg.classes)],
    )
    (tmp_path / 'ann.json').write_text(json.dumps(coco))

    def dataset(pipeline, test_mode):
        cfg = copy.deepcopy(det_cfg.train_dataloader.dataset)
        cfg.update(
            data_root=str(tmp_path),
            ann_file='ann.json',
            data_prefix=dict(img='img/'),
            filter_cfg=dict(filter_empty_gt=False),
            test_mode=test_mode,
            pipeline=_safe_pipeline(pipeline),
        )
        return _build_dataset('mmdet', cfg)

    train_ds = dataset(det_cfg.train_pipeline, False)
    test_ds = dataset(det_cfg.test_pipeline, True)
    assert len(train_ds) == 4  # the image without annotations is kept (filter_empty_gt=False)
    model = _model(det_cfg, 'mmdet')
    model.train()
    data = model.data_preprocessor(pseudo_collate([train_ds[i] for i in range(4)]), True)
    with DefaultScope.overwrite_default_scope('mmdet'):
        losses = model(**data, mode='loss')
    flat = {k: (sum(v) if isinstance(v, list) else v) for k, v in losses.items() if 'loss' in k}
    assert flat and all(torch.isfinite(v).all() for v in flat.values()), flat
    model.eval()
    with torch.no_grad(), DefaultScope.overwrite_default_scope('mmdet'):
        preds = model.test_step(pseudo_collate([test_ds[i] for i in range(4)]))
    for (file, h, w, *_), pred in zip(items, preds):
        assert pred.img_path.endswith(file) and pred.ori_shape == (h, w)
        inst = pred.pred_instances
        assert len(inst) > 0  # an untrained head scores every class about equally (> score_thr)
        assert inst.masks.shape[-2:] == (h, w)
        b = inst.bboxes  # in original-image pixels
        assert (b[:, :2] >= 0).all() and (b[:, 2] <= w).all() and (b[:, 3] <= h).all()
