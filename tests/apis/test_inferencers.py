"""mmdet's DetInferencer and mmseg's MMSegInferencer on every image config of the project, on a real
photograph (matplotlib's sample data) at odd sizes; the configs the inferencers cannot run are
refused with an error saying why."""

from pathlib import Path

import mmcv
import numpy as np
import pytest
from mmengine.config import Config

from sdt_dense.apis.inference import build_inferencer, config_task, inferencer_config, predict
from sdt_dense.checkpoint import CheckpointMismatchError
from sdt_testing import REPO
from sdt_testing.inference import PHOTO, save_random_checkpoint

TOY = REPO / 'configs/toy'
#: every detection / segmentation config on images, model zoo first
ZOO = sorted(
    str(p.relative_to(REPO))
    for d in ('e_spikeformer', 'e_spikeformer_large')
    for p in (REPO / 'configs' / d).glob('*.py')
) + ['configs/mask_rcnn_sdt.py']
TOY_IMAGE = [
    'configs/toy/mask-rcnn_e-spikeformer-t_spike-fpn_toy.py',
    'configs/toy/mask-rcnn_e-spikeformer-large-toy_spike-fpn_toy.py',
    'configs/toy/fpn_e-spikeformer-t_toy.py',
]
EVENTS = (
    sorted(str(p.relative_to(REPO)) for p in (REPO / 'configs/events').glob('*.py'))
    + ['configs/toy/retinanet_e-spikeformer-t_spike-fpn_events_toy.py']
    + sorted(str(p.relative_to(REPO)) for p in TOY.glob('*_rvt-*_toy.py'))
)


def test_every_config_is_covered():
    every = {str(p.relative_to(REPO)) for p in (REPO / 'configs').rglob('*.py') if '_base_' not in p.parts}
    pretraining = {'configs/toy/spike-mae_e-spikeformer-large-toy_toy.py'}
    assert every == set(ZOO) | set(TOY_IMAGE) | set(EVENTS) | pretraining


@pytest.fixture(scope='module')
def photo() -> np.ndarray:
    """The photograph, BGR ``(600, 512, 3)``: a height that is no multiple of 32."""
    img = mmcv.imread(PHOTO)
    assert img.shape == (600, 512, 3)
    return img


def _odd_image(photo: np.ndarray, tmp_path: Path, h: int, w: int) -> Path:
    path = tmp_path / f'photo_{h}x{w}.jpg'
    mmcv.imwrite(mmcv.imresize(photo, (w, h)), str(path))
    return path


def _check_prediction(task: str, sample, h: int, w: int, num_classes: int) -> None:
    """Predictions are in the input image's own pixels."""
    assert tuple(sample.ori_shape) == (h, w)
    if task == 'seg':
        seg = sample.pred_sem_seg.data
        assert seg.shape == (1, h, w)
        assert 0 <= seg.min() and seg.max() < num_classes
        assert sample.seg_logits.data.shape == (num_classes, h, w)
        return
    inst = sample.pred_instances
    assert len(inst) > 0  # the score threshold is 0: the box checks below are not vacuous
    boxes = inst.bboxes
    assert boxes.shape == (len(inst), 4)
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
    assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()
    assert ((0 <= inst.labels) & (inst.labels < num_classes)).all()
    if 'masks' in inst:
        assert tuple(inst.masks.shape) == (len(inst), h, w)


def _keep_every_box(cfg: Config) -> None:
    """Score threshold 0, so that a randomly initialised detector still returns boxes."""
    test_cfg = cfg.model.test_cfg
    if 'rcnn' in test_cfg:
        test_cfg.rcnn.score_thr = 0.0
    else:
        test_cfg.score_thr = 0.0


def _num_classes(cfg: Config) -> int:
    model = cfg.model
    if 'decode_head' in model:
        return model.decode_head.num_classes
    if 'bbox_head' in model:
        return model.bbox_head.num_classes
    head = model.roi_head.bbox_head
    return (head[0] if isinstance(head, list) else head).num_classes


# ------------------------------------------------------------------------------------------------
# Model zoo: the stock inferencers, straight from the config (at a small test scale)


@pytest.mark.slow
@pytest.mark.parametrize('config', ZOO)
def test_zoo_config_stock_inferencer(config, photo, tmp_path):
    raw = Config.fromfile(str(REPO / config))
    cfg = inferencer_config(str(REPO / config))
    # nothing to adapt: the stock inferencer reads the config file as it is
    assert cfg.test_dataloader.dataset.pipeline == raw.test_dataloader.dataset.pipeline
    task = config_task(raw)
    assert task == ('seg' if '_ade20k' in config else 'det')
    pipeline = raw.test_dataloader.dataset.pipeline
    resize = [t for t in pipeline if t['type'] == 'Resize']
    assert len(resize) == 1
    resize[0]['scale'] = (200, 120)  # the configs' (1333, 800) / (2048, 512) is slow on a CPU
    if task == 'det':
        _keep_every_box(raw)
        from mmdet.apis import DetInferencer

        inferencer = DetInferencer(model=raw, weights=None, device='cpu', show_progress=False)
    else:
        from mmseg.apis import MMSegInferencer

        inferencer = MMSegInferencer(model=raw, weights=None, device='cpu')
    h, w = 133, 157
    img = _odd_image(photo, tmp_path, h, w)
    sample = predict(inferencer, task, str(img), out_dir=str(tmp_path / 'out'))
    _check_prediction(task, sample, h, w, _num_classes(raw))
    assert mmcv.imread(str(tmp_path / 'out/vis' / img.name)).shape == (h, w, 3)


# ------------------------------------------------------------------------------------------------
# Toy configs: through inferencer_config (SafeLoadImageFromFile), with a strict checkpoint


@pytest.mark.slow
@pytest.mark.parametrize('config', TOY_IMAGE)
@pytest.mark.parametrize('size', [(600, 512), (47, 33)], ids=['photo', 'tiny'])
def test_toy_config_inferencer(config, size, photo, tmp_path):
    raw = Config.fromfile(str(REPO / config))
    loaders = [t['type'] for t in raw.test_dataloader.dataset.pipeline if 'Load' in t['type']]
    assert 'SafeLoadImageFromFile' in loaders  # what inferencer_config adapts
    cfg = inferencer_config(str(REPO / config))
    assert 'SafeLoadImageFromFile' not in [t['type'] for t in cfg.test_dataloader.dataset.pipeline]
    task = config_task(raw)
    if task == 'det':
        _keep_every_box(cfg)
    ckpt = save_random_checkpoint(raw, tmp_path / 'model.pth')
    inferencer, got_task = build_inferencer(cfg, str(ckpt))
    assert got_task == task
    assert inferencer.model.dataset_meta['classes'] == list(raw.metainfo['classes'])
    h, w = size
    img = PHOTO if size == photo.shape[:2] else _odd_image(photo, tmp_path, h, w)
    sample = predict(inferencer, task, str(img), out_dir=str(tmp_path / 'out'))
    _check_prediction(task, sample, h, w, len(raw.metainfo['classes']))
    assert mmcv.imread(str(tmp_path / 'out/vis' / Path(img).name)).shape == (h, w, 3)


@pytest.mark.slow
def test_config_classes_replace_coco_names_without_checkpoint_meta(tmp_path):
    """A checkpoint without dataset_meta: the config's class names, not COCO's 80."""
    config = str(REPO / TOY_IMAGE[0])
    ckpt = save_random_checkpoint(Config.fromfile(config), tmp_path / 'bare.pth', with_meta=False)
    inferencer, _ = build_inferencer(config, str(ckpt))
    assert inferencer.model.dataset_meta['classes'] == ('circle', 'square', 'triangle')
    assert inferencer.visualizer.dataset_meta['classes'] == ('circle', 'square', 'triangle')


@pytest.mark.slow
def test_checkpoint_of_another_model_is_refused(tmp_path):
    seg = Config.fromfile(str(REPO / 'configs/toy/fpn_e-spikeformer-t_toy.py'))
    ckpt = save_random_checkpoint(seg, tmp_path / 'seg.pth')
    with pytest.raises(CheckpointMismatchError, match=r'missing .*\n(.|\n)*unexpected'):
        build_inferencer(str(REPO / TOY_IMAGE[0]), str(ckpt))


# ------------------------------------------------------------------------------------------------
# Configs the image inferencers cannot run


@pytest.mark.slow
@pytest.mark.parametrize('config', EVENTS)
def test_event_configs_are_refused(config):
    with pytest.raises(
        ValueError, match='does not load images .*(LoadPropheseeEvents|LoadRVTHistogram).*event'
    ):
        inferencer_config(str(REPO / config))


@pytest.mark.slow
def test_pretraining_config_is_refused():
    with pytest.raises(ValueError, match="'SpikeMAE' is not a detector"):
        config_task(str(TOY / 'spike-mae_e-spikeformer-large-toy_toy.py'))
