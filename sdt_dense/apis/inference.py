"""Inference with mmdet's ``DetInferencer`` / mmseg's ``MMSegInferencer`` on an sdt-dense config
(the Python API behind ``demo/image_demo.py``).

* :func:`build_inferencer` ``(CONFIG, WEIGHTS)`` -> ``(inferencer, task)``: the task (``'det'`` or
  ``'seg'``) comes from the config's ``default_scope``; the weights are loaded strictly (after the
  inferencer's own lenient load, every tensor is checked against the model and a mismatch raises
  ``CheckpointMismatchError`` with a table). Class names and palette come from the checkpoint's
  ``dataset_meta`` when it has one, else from the config's test dataset.
* :func:`predict` runs one image at its own size through the config's test pipeline.
* :func:`compare_predictions` compares two predictions (integer vs spike-driven model) within
  :data:`SCORE_ATOL`, :data:`BOX_ATOL` and :data:`PIXEL_RTOL`; :func:`float64` runs a model in
  float64 for that comparison (a segmentor entirely, a detector's backbone and neck: mmcv's NMS
  runs float32 only).

The stock inferencers work with any image config of this project; pass :func:`inferencer_config`
``(CONFIG)`` instead of the path for the toy configs, whose test pipeline loads images with
``SafeLoadImageFromFile`` (the inferencers look for ``LoadImageFromFile`` by name). Event-camera
configs (input: event tensors) and the spike-MAE pretraining config are refused with an error that
says why.
"""

from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator, Optional, Tuple, Union

import torch
from mmengine.config import Config

from ..registry import init_scope

#: image loaders of a test pipeline that the inferencers can replace by their array/path loader
_IMAGE_LOADERS = ('LoadImageFromFile', 'SafeLoadImageFromFile')
#: keyword arguments that SafeLoadImageFromFile adds to mmcv's LoadImageFromFile
_SAFE_ONLY_ARGS = ('on_error', 'check_truncation')
#: test-pipeline transforms that check annotations; an inferencer's input has none (mmseg's
#: inferencer removes LoadAnnotations itself, then CheckSegLabel would find no label map)
_ANNOTATION_CHECKS = ('CheckSegLabel',)

#: largest differences (integer vs spike-driven, float32 sums in another order) still "equal"
SCORE_ATOL = 1e-4
BOX_ATOL = 1e-2  # pixels
#: share of mask / label-map pixels allowed to differ: a float32 rounding difference flips a pixel
#: only where a mask probability sits at the 0.5 threshold or two class logits tie
PIXEL_RTOL = 1e-5


def _load(config: Union[str, Config]) -> Config:
    return Config.fromfile(config) if isinstance(config, str) else config.copy()


def config_task(config: Union[str, Config]) -> str:
    """``'det'`` or ``'seg'``: what the inferencers can run from ``config``.

    Raises:
        ValueError: naming the config and why it is not a single-image detector or segmentor
            (event-camera input, a pretraining model, no image loader in the test pipeline).
    """
    cfg = _load(config)
    name = cfg.filename or 'config'
    scope = init_scope(cfg)  # raises for a default_scope other than mmdet / mmseg
    if scope == 'mmdet':
        from mmdet.models.detectors import BaseDetector as Base
        from mmdet.registry import MODELS
    else:
        from mmseg.models.segmentors import BaseSegmentor as Base
        from mmseg.registry import MODELS
    model_cls = MODELS.get(cfg.model['type'])
    if model_cls is None or not issubclass(model_cls, Base):
        kind = 'detector' if scope == 'mmdet' else 'segmentor'
        raise ValueError(
            f'{name}: model type {cfg.model["type"]!r} is not a {kind} (a pretraining '
            'model has no predictions to show); the image demo and the inferencers '
            'need a detection or segmentation config'
        )
    pipeline = _test_pipeline(cfg)
    loaders = [t['type'] for t in pipeline if t['type'] in _IMAGE_LOADERS]
    if not loaders:
        first = pipeline[0]['type'] if pipeline else 'nothing'
        raise ValueError(
            f'{name}: the test pipeline does not load images (it starts with {first!r}); '
            'event-camera configs take event tensors, which the image inferencers cannot '
            'produce: evaluate them with tools/test.py'
        )
    return 'det' if scope == 'mmdet' else 'seg'


def _test_pipeline(cfg: Config) -> list:
    try:
        return cfg.test_dataloader.dataset.pipeline
    except AttributeError:
        raise ValueError(
            f'{cfg.filename}: no test_dataloader.dataset.pipeline; the inferencers '
            'build their pipeline from it'
        ) from None


def inferencer_config(config: Union[str, Config]) -> Config:
    """``config`` ready for ``DetInferencer`` / ``MMSegInferencer``: ``SafeLoadImageFromFile`` in
    the test pipeline becomes mmcv's ``LoadImageFromFile`` with the same decoding options, and
    annotation checks (``CheckSegLabel``) are dropped.

    The inferencers replace the transform named ``LoadImageFromFile`` by their own loader of paths
    and arrays, and refuse a pipeline without one. (The safe loader's ``on_error`` concerns the
    files of a dataset; a single image that cannot be read still raises.)

    Raises:
        ValueError: as :func:`config_task`.
    """
    cfg = _load(config)
    config_task(cfg)
    pipeline = _test_pipeline(cfg)
    pipeline[:] = [t for t in pipeline if t['type'] not in _ANNOTATION_CHECKS]
    for transform in pipeline:
        if transform['type'] == 'SafeLoadImageFromFile':
            transform['type'] = 'LoadImageFromFile'
            for key in _SAFE_ONLY_ARGS:
                transform.pop(key, None)
    return cfg


def _checkpoint_state(weights: str) -> Tuple[Dict[str, torch.Tensor], Optional[dict]]:
    from ..checkpoint import extract_state_dict, safe_load

    obj = safe_load(weights)
    meta = obj.get('meta', {}).get('dataset_meta') if isinstance(obj, dict) else None
    return extract_state_dict(obj), meta


def _config_metainfo(task: str, cfg: Config) -> dict:
    """Class names and palette of the config's test dataset (built lazily: no file is read)."""
    if task == 'det':
        from mmdet.registry import DATASETS
    else:
        from mmseg.registry import DATASETS
    dataset_cfg = cfg.test_dataloader.dataset.copy()
    dataset_cfg['lazy_init'] = True
    return dict(DATASETS.build(dataset_cfg).metainfo)


def build_inferencer(
    config: Union[str, Config],
    weights: Optional[str] = None,
    device: str = 'cpu',
    show_progress: bool = False,
):
    """The stock inferencer of the config's task, with ``weights`` loaded strictly.

    Returns:
        (inferencer, task): a ``DetInferencer`` or ``MMSegInferencer`` and ``'det'`` / ``'seg'``.

    Raises:
        ValueError: the config is not an image detector/segmentor (:func:`config_task`), or CUDA
            was asked for but is not available.
        CheckpointMismatchError: ``weights`` does not match the model (missing, unexpected or
            mis-shaped tensors, listed in a table).
    """
    from ..checkpoint import match_state_dict

    if device.startswith('cuda') and not torch.cuda.is_available():
        raise ValueError(f'--device {device}: CUDA is not available on this machine (use cpu)')
    cfg = inferencer_config(config)
    task = config_task(cfg)
    state_dict, ckpt_meta = _checkpoint_state(weights) if weights else (None, None)
    if task == 'det':
        from mmdet.apis import DetInferencer

        inferencer = DetInferencer(model=cfg, weights=weights, device=device, show_progress=show_progress)
    else:
        from mmseg.apis import MMSegInferencer

        inferencer = MMSegInferencer(model=cfg, weights=weights, device=device)
    if state_dict is not None:
        # the inferencers load with strict=False; a wrong file must not run with random tensors
        match_state_dict(inferencer.model, state_dict)
    if not ckpt_meta:
        # without dataset_meta the inferencers name the classes of COCO / Cityscapes
        meta = _config_metainfo(task, cfg)
        if task == 'det':
            inferencer.model.dataset_meta = meta
            inferencer.visualizer.dataset_meta = meta
        else:
            # MMSegInferencer passes model.dataset_meta to set_dataset_meta(classes, palette)
            meta = dict(classes=meta['classes'], palette=meta.get('palette'))
            inferencer.model.dataset_meta = meta
            inferencer.visualizer.set_dataset_meta(**meta)
    return inferencer, task


@contextlib.contextmanager
def float64(model: torch.nn.Module, task: str) -> Iterator[torch.nn.Module]:
    """Run ``model`` in float64 inside the block: a segmentor entirely, a detector's backbone and
    neck (its heads stay float32: mmcv's NMS and RoIAlign kernels take float32 only). The
    preprocessed images ``(B, 3, H, W)`` are cast on entry to the backbone, a detector's neck
    outputs ``(B, C, H_i, W_i)`` back to float32. Everything is float32 again on exit."""
    handles = [
        model.backbone.register_forward_pre_hook(
            lambda m, args: tuple(a.double() if torch.is_tensor(a) else a for a in args)
        )
    ]
    model.double()
    if task == 'det':
        last = model.neck if getattr(model, 'with_neck', False) else model.backbone
        handles.append(last.register_forward_hook(lambda m, args, out: tuple(o.float() for o in out)))
        for name, child in model.named_children():
            if name not in ('backbone', 'neck'):
                child.float()
    try:
        yield model
    finally:
        for h in handles:
            h.remove()
        model.float()


def predict(inferencer, task: str, img: str, out_dir: str = '') -> Any:
    """Run one image; with ``out_dir`` write the visualisation to ``out_dir/vis/``.

    Returns:
        ``DetDataSample`` (``pred_instances``: ``bboxes (N, 4)`` in original-image pixels, ``scores
        (N,)``, ``labels (N,)``, ``masks (N, H, W)`` for instance segmentation) or
        ``SegDataSample`` (``pred_sem_seg.data (1, H, W)``, ``seg_logits.data (K, H, W)``), ``H, W``
        the image's own size.
    """
    if task == 'det':
        out = inferencer(img, out_dir=out_dir, no_save_pred=True, return_datasamples=True)
        return out['predictions'][0]
    return inferencer(img, out_dir=out_dir, return_datasamples=True)


def compare_predictions(task: str, ref, other) -> Dict[str, Any]:
    """How far two predictions of one image are apart.

    Returns:
        dict with ``equal`` (bool) and the differences: detection ``instances`` (both counts),
        ``labels_equal``, ``max_score_diff``, ``max_box_diff`` (pixels), ``mask_pixels_diff``
        (count and share of all mask pixels); segmentation ``pixels_diff`` (of the label map,
        count and share) and ``max_logit_diff``. Equal: same labels, scores within
        :data:`SCORE_ATOL`, boxes within :data:`BOX_ATOL`, logits within :data:`SCORE_ATOL`, at most
        a :data:`PIXEL_RTOL` share of the pixels different.
    """
    if task == 'seg':
        a, b = ref.pred_sem_seg.data, other.pred_sem_seg.data
        if a.shape != b.shape:
            return dict(equal=False, shapes=(tuple(a.shape), tuple(b.shape)))
        pixels = int((a != b).sum())
        logits = (ref.seg_logits.data - other.seg_logits.data).abs().max().item()
        return dict(
            equal=pixels <= PIXEL_RTOL * a.numel() and logits <= SCORE_ATOL,
            pixels_diff=f'{pixels} ({pixels / a.numel():.1e})',
            max_logit_diff=logits,
        )
    a, b = ref.pred_instances, other.pred_instances
    res: Dict[str, Any] = dict(instances=(len(a), len(b)))
    if len(a) != len(b):
        res['equal'] = False
        return res
    res['labels_equal'] = bool(torch.equal(a.labels, b.labels))
    diff = lambda x, y: (x - y).abs().max().item() if x.numel() else 0.0  # noqa: E731
    res['max_score_diff'] = diff(a.scores, b.scores)
    res['max_box_diff'] = diff(a.bboxes, b.bboxes)
    masks_ok = True
    if 'masks' in a:
        pixels = int((a.masks != b.masks).sum())
        res['mask_pixels_diff'] = f'{pixels} ({pixels / max(a.masks.numel(), 1):.1e})'
        masks_ok = pixels <= PIXEL_RTOL * a.masks.numel()
    res['equal'] = (
        res['labels_equal']
        and res['max_score_diff'] <= SCORE_ATOL
        and res['max_box_diff'] <= BOX_ATOL
        and masks_ok
    )
    return res


def summary(task: str, sample) -> str:
    """One line describing a prediction."""
    h, w = sample.ori_shape
    if task == 'seg':
        labels = sample.pred_sem_seg.data.unique().tolist()
        return f'segmentation {h}x{w}: classes present {labels}'
    inst = sample.pred_instances
    return f'detection on {h}x{w}: {len(inst)} instances' + (
        f', best score {inst.scores.max().item():.3f}' if len(inst) else ''
    )
