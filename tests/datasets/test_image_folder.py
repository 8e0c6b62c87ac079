"""The ImageNet-style folder dataset, the pretraining transforms and the toy folder writer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mmengine.registry import DATASETS, TRANSFORMS
from PIL import Image

from sdt_dense.cli.make_toy_data import main as make_toy_data_main
from sdt_dense.datasets import ImageFolderDataset
from sdt_dense.toy_data import SHAPE_CLASSES, make_cls_dataset

PIPELINE = [
    dict(type='SafeLoadImageFromFile'),
    dict(type='RandomResizedCropImage', scale=32, crop_ratio_range=(0.2, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackImageInputs'),
]


def test_toy_folders_load_through_the_pipeline(tmp_path):
    meta = make_cls_dataset(tmp_path, num_train=6, num_val=2, image_size=48, num_classes=3)
    assert meta['classes'] == list(SHAPE_CLASSES[:3])
    assert sum(meta['counts']['train'].values()) == 6
    (tmp_path / 'train' / 'circle' / 'notes.txt').write_text('not an image')  # ignored
    Image.new('RGB', (40, 30)).save(tmp_path / 'train' / 'square' / 'extra.PNG')  # any case

    dataset = DATASETS.build(
        dict(
            type='ImageFolderDataset',
            data_root=str(tmp_path),
            data_prefix=dict(img_path='train'),
            pipeline=PIPELINE,
        )
    )
    assert isinstance(dataset, ImageFolderDataset)
    assert len(dataset) == 7 and dataset.metainfo['classes'] == ('circle', 'square', 'triangle')
    info = dataset.get_data_info(0)
    assert info['img_path'].endswith('.JPEG')
    assert SHAPE_CLASSES[info['gt_label']] in info['img_path']
    sample = dataset[0]
    assert sample['inputs'].shape == (3, 32, 32) and sample['inputs'].dtype == torch.uint8
    assert sample['data_samples'].img_path == info['img_path']

    with pytest.raises(FileNotFoundError, match='image folder not found'):
        ImageFolderDataset(data_root=str(tmp_path), data_prefix=dict(img_path='missing'))


def test_random_resized_crop_stays_inside_and_resizes():
    crop = TRANSFORMS.build(dict(type='RandomResizedCropImage', scale=(24, 16), crop_ratio_range=(0.2, 1.0)))
    np.random.seed(0)
    for shape in [(40, 60, 3), (100, 20, 3), (7, 7, 3)]:
        out = crop(dict(img=np.zeros(shape, np.uint8)))
        x1, y1, x2, y2 = out['crop_bbox']
        assert 0 <= x1 < x2 <= shape[1] and 0 <= y1 < y2 <= shape[0]
        assert out['img'].shape == (16, 24, 3) and out['img_shape'] == (16, 24)


def test_make_toy_data_cls_command(tmp_path, capsys):
    # The CLI's main() in-process (tools/misc/make_toy_data.py only calls it).
    make_toy_data_main(
        ['--task', 'cls', '--out', str(tmp_path), '--num-train', '4', '--num-val', '1', '--image-size', '32']
    )
    assert 'wrote cls toy dataset' in capsys.readouterr().out
    assert len(list((tmp_path / 'train').glob('*/*.JPEG'))) == 4
