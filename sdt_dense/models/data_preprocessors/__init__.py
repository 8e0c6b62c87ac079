"""Data preprocessors (mmdet ``MODELS``)."""

from .event_det import EventDetDataPreprocessor

__all__ = ['EventDetDataPreprocessor']
