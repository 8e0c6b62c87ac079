"""The Python inference API: mmdet's / mmseg's inferencers on sdt-dense configs, strict weights."""

from .inference import (
    BOX_ATOL,
    PIXEL_RTOL,
    SCORE_ATOL,
    build_inferencer,
    compare_predictions,
    config_task,
    float64,
    inferencer_config,
    predict,
)

__all__ = [
    'BOX_ATOL',
    'PIXEL_RTOL',
    'SCORE_ATOL',
    'build_inferencer',
    'compare_predictions',
    'config_task',
    'float64',
    'inferencer_config',
    'predict',
]
