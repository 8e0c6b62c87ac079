"""demo/image_demo.py on a real photograph at its own size: detection or segmentation picked from
the config, the usual visualisation, the spike-driven comparison, and clear errors; and the
comparison rule of the demo on hand-made predictions."""

import mmcv
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.structures import InstanceData, PixelData
from mmseg.structures import SegDataSample

from sdt_dense.apis.inference import PIXEL_RTOL, SCORE_ATOL, compare_predictions, float64
from sdt_testing import PYTHON, REPO, run
from sdt_testing.inference import PHOTO, save_random_checkpoint

DET = REPO / 'configs/toy/mask-rcnn_e-spikeformer-t_spike-fpn_toy.py'
SEG = REPO / 'configs/toy/fpn_e-spikeformer-t_toy.py'


def _demo(*args, check=False):
    return run([PYTHON, REPO / 'demo/image_demo.py', *args], check=check)


def _checkpoint(config, path):
    return save_random_checkpoint(Config.fromfile(str(config)), path)


@pytest.mark.slow
@pytest.mark.parametrize('config', [DET, SEG], ids=['det', 'seg'])
def test_demo_spike_driven_equals_integer_on_photo(config, tmp_path):
    ckpt = _checkpoint(config, tmp_path / 'model.pth')
    out = _demo(
        PHOTO,
        config,
        '--weights',
        ckpt,
        '--out-dir',
        tmp_path / 'out',
        '--spike-driven',
        '--device',
        'cpu',
        check=True,
    ).stdout
    line = 'detection on 600x512' if config == DET else 'segmentation 600x512'
    assert f'integer model: {line}' in out and f'spike-driven model: {line}' in out
    assert "spike-driven predictions EQUAL the integer model's (float64;" in out
    vis = mmcv.imread(str(tmp_path / 'out/vis/grace_hopper.jpg'))
    assert vis.shape == (600, 512, 3)  # the photograph's own size
    # the visualisation draws the prediction over the photo: not the photo itself
    assert (vis.astype(int) - mmcv.imread(PHOTO).astype(int)).any()


@pytest.mark.slow
def test_demo_without_weights_runs_random_model(tmp_path):
    out = _demo(PHOTO, SEG, '--out-dir', tmp_path, check=True).stdout
    assert 'integer model: segmentation 600x512' in out and 'spike-driven' not in out
    assert (tmp_path / 'vis/grace_hopper.jpg').is_file()


@pytest.mark.slow
def test_seg_config_classes_without_checkpoint_meta(tmp_path):
    """No dataset_meta: the config's class names (not Cityscapes'), in the form mmseg's
    visualizer accepts."""
    from sdt_dense.apis.inference import build_inferencer, predict

    inferencer, task = build_inferencer(str(SEG))
    assert inferencer.model.dataset_meta['classes'] == ('circle', 'square', 'triangle', 'star')
    assert inferencer.visualizer.dataset_meta['classes'] == ('circle', 'square', 'triangle', 'star')
    predict(inferencer, task, PHOTO, out_dir=str(tmp_path))  # the visualizer takes the meta
    assert (tmp_path / 'vis/grace_hopper.jpg').is_file()


@pytest.mark.slow
@pytest.mark.parametrize(
    'config, message',
    [
        (
            'configs/toy/retinanet_e-spikeformer-t_spike-fpn_events_toy.py',
            "does not load images (it starts with 'LoadPropheseeEvents')",
        ),
        ('configs/toy/spike-mae_e-spikeformer-large-toy_toy.py', "'SpikeMAE' is not a detector"),
    ],
)
def test_demo_refuses_configs_without_image_predictions(config, message, tmp_path):
    proc = _demo(PHOTO, REPO / config, '--out-dir', tmp_path)
    assert proc.returncode != 0 and message in proc.stderr
    assert not (tmp_path / 'vis').exists()


@pytest.mark.slow
def test_demo_refuses_missing_image_and_mismatched_weights(tmp_path):
    proc = _demo(tmp_path / 'nope.jpg', SEG)
    assert proc.returncode != 0 and f'image not found: {tmp_path / "nope.jpg"}' in proc.stderr
    ckpt = _checkpoint(SEG, tmp_path / 'seg.pth')
    proc = _demo(PHOTO, DET, '--weights', ckpt, '--out-dir', tmp_path)
    assert proc.returncode != 0 and 'CheckpointMismatchError' in proc.stderr
    assert ' missing ' in proc.stderr and ' unexpected ' in proc.stderr  # the mismatch table
    if not torch.cuda.is_available():
        proc = _demo(PHOTO, SEG, '--device', 'cuda')
        assert proc.returncode != 0 and 'CUDA is not available' in proc.stderr


# ------------------------------------------------------------------------------------------------
# The comparison rule, on hand-made predictions


def _det(scores, labels, boxes, masks=None):
    sample = DetDataSample(metainfo=dict(ori_shape=(10, 8)))
    inst = InstanceData(scores=torch.tensor(scores), labels=torch.tensor(labels), bboxes=torch.tensor(boxes))
    if masks is not None:
        inst.masks = masks
    sample.pred_instances = inst
    return sample


def test_compare_detections():
    boxes = [[0.0, 0.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0]]
    masks = torch.zeros(2, 10, 8, dtype=torch.bool)
    masks[0, :5, :4] = True
    ref = _det([0.9, 0.5], [0, 2], boxes, masks)
    assert compare_predictions('det', ref, ref)['equal']
    near = _det([0.9 + SCORE_ATOL / 2, 0.5], [0, 2], [[0.0, 0.0, 4.005, 5.0], boxes[1]], masks)
    res = compare_predictions('det', ref, near)
    assert res['equal'] and res['max_box_diff'] == pytest.approx(0.005, abs=1e-6)
    assert not compare_predictions('det', ref, _det([0.9 + 2 * SCORE_ATOL, 0.5], [0, 2], boxes, masks))[
        'equal'
    ]
    assert not compare_predictions('det', ref, _det([0.9, 0.5], [0, 1], boxes, masks))['equal']
    assert not compare_predictions('det', ref, _det([0.9], [0], boxes[:1], masks[:1]))['equal']
    flipped = masks.clone()
    flipped[1, 9, 7] = True  # 1 of 160 pixels: far above PIXEL_RTOL
    res = compare_predictions('det', ref, _det([0.9, 0.5], [0, 2], boxes, flipped))
    assert not res['equal'] and res['mask_pixels_diff'].startswith('1 (')


def _seg(labels, logits):
    sample = SegDataSample()
    sample.pred_sem_seg = PixelData(data=labels)
    sample.seg_logits = PixelData(data=logits)
    return sample


def test_compare_segmentations():
    logits = torch.randn(3, 20, 30, generator=torch.Generator().manual_seed(0))
    labels = logits.argmax(0, keepdim=True)
    ref = _seg(labels, logits)
    assert compare_predictions('seg', ref, _seg(labels.clone(), logits + SCORE_ATOL / 2))['equal']
    assert not compare_predictions('seg', ref, _seg(labels, logits + 2 * SCORE_ATOL))['equal']
    other = labels.clone()
    other[0, 0, 0] = (other[0, 0, 0] + 1) % 3  # 1 of 600 pixels > PIXEL_RTOL
    assert 1 / 600 > PIXEL_RTOL
    res = compare_predictions('seg', ref, _seg(other, logits))
    assert not res['equal'] and res['pixels_diff'].startswith('1 (')
    assert not compare_predictions('seg', ref, _seg(labels[:, :10], logits[:, :10]))['equal']


@pytest.mark.slow
def test_float64_context_detector_backbone_neck_only():
    """Inside: backbone and neck in float64, heads fed float32; outside: float32 again."""
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope

    from sdt_dense.apis.inference import config_task

    cfg = Config.fromfile(str(DET))
    config_task(cfg)  # registers the modules
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model).eval()
    seen = {}
    model.neck.register_forward_hook(lambda m, a, o: seen.update(neck_in=a[0][0].dtype))
    model.rpn_head.register_forward_pre_hook(lambda m, a: seen.update(head_in=a[0][0].dtype))
    x = torch.rand(1, 3, 64, 48)
    with float64(model, 'det'):
        assert next(model.backbone.parameters()).dtype == torch.float64
        assert next(model.rpn_head.parameters()).dtype == torch.float32
        with torch.no_grad():
            model.rpn_head(model.extract_feat(x))
    assert seen == dict(neck_in=torch.float64, head_in=torch.float32)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
