"""Image loading that survives broken files in a dataset."""

from __future__ import annotations

import logging
from typing import Optional

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log
from mmengine.registry import TRANSFORMS

_JPEG_SOI, _JPEG_SOS, _JPEG_EOI = b'\xff\xd8', b'\xff\xda', b'\xff\xd9'
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_PNG_IEND = b'\x00\x00\x00\x00IEND'  # zero-length IEND chunk, the last one of a PNG


class ImageLoadError(ValueError):
    """An image of a dataset is missing, empty, truncated or cannot be decoded."""


def truncation_problem(data: bytes) -> Optional[str]:
    """Why JPEG/PNG bytes are an incomplete file, or ``None`` (also for other formats).

    Some decoders return a partly grey image for a truncated file instead of failing, so the
    container structure is checked first: a PNG must contain its final ``IEND`` chunk; in a JPEG
    the last start-of-scan marker must be followed by an end-of-image marker (0xFF is byte-stuffed
    in scan data, so these markers cannot occur there; data appended after the end is allowed).
    """
    if data.startswith(_PNG_SIGNATURE):
        return None if _PNG_IEND in data else 'truncated PNG (no IEND chunk)'
    if data.startswith(_JPEG_SOI):
        sos = data.rfind(_JPEG_SOS)
        if sos < 0 or data.rfind(_JPEG_EOI) < sos:
            return 'truncated JPEG (no end-of-image marker after the last scan)'
    return None


@TRANSFORMS.register_module()
class SafeLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` that names the broken file and can skip it.

    A missing, empty, truncated or undecodable image raises :class:`ImageLoadError` naming the file
    and the problem (``on_error='raise'``, the default), or is skipped with a warning
    (``on_error='skip'``): the transform returns ``None`` and mmengine's ``BaseDataset`` draws
    another sample in training. At test time mmengine refuses a ``None`` sample (the evaluation set
    must stay complete), so a broken test image always stops the run, after the warning naming it.

    With ``color_type='color'`` (default) every image has 3 channels (BGR, uint8): grayscale is
    replicated, the alpha channel of RGBA/LA images is dropped.

    Args:
        on_error: ``'raise'`` or ``'skip'``.
        check_truncation: also reject JPEG/PNG files whose container is incomplete (see
            :func:`truncation_problem`), which some decoders decode without an error.
        **kwargs: arguments of mmcv's ``LoadImageFromFile`` (``to_float32``, ``color_type``,
            ``imdecode_backend``, ``backend_args``; ``ignore_empty`` is replaced by ``on_error``).

    Required keys: ``img_path``. Added keys: ``img`` ``(H, W, 3)`` (``(H, W)`` for
    ``color_type='grayscale'``), ``img_shape``, ``ori_shape``.
    """

    def __init__(self, on_error: str = 'raise', check_truncation: bool = True, **kwargs) -> None:
        if on_error not in ('raise', 'skip'):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if 'ignore_empty' in kwargs:
            raise ValueError("SafeLoadImageFromFile: use on_error='skip' instead of ignore_empty")
        if kwargs.get('file_client_args') is not None:
            raise ValueError('SafeLoadImageFromFile: use backend_args (file_client_args is deprecated)')
        super().__init__(**kwargs)
        self.on_error = on_error
        self.check_truncation = check_truncation

    def _load(self, filename: str) -> np.ndarray:
        try:
            data = fileio.get(filename, backend_args=self.backend_args)
        except FileNotFoundError:
            raise ImageLoadError(f'image file not found: {filename}') from None
        except OSError as err:
            raise ImageLoadError(f'cannot read image {filename}: {err}') from err
        if not data:
            raise ImageLoadError(f'empty image file (0 bytes): {filename}')
        problem = truncation_problem(data) if self.check_truncation else None
        if problem:
            raise ImageLoadError(f'corrupt image {filename}: {problem}')
        try:
            img = mmcv.imfrombytes(data, flag=self.color_type, backend=self.imdecode_backend)
        except Exception as err:  # decoders raise many types (OSError, ValueError, cv2.error)
            raise ImageLoadError(f'corrupt image {filename}: {type(err).__name__}: {err}') from err
        if img is None or img.size == 0:
            raise ImageLoadError(
                f'corrupt image {filename}: the {self.imdecode_backend} decoder could not decode it'
            )
        if self.color_type == 'color' and img.ndim == 2:  # decoders that ignore the flag
            img = np.repeat(img[..., None], 3, axis=2)
        return img

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        try:
            img = self._load(filename)
        except ImageLoadError as err:
            if self.on_error == 'raise':
                raise
            print_log(f'skipped a sample: {err}', logger='current', level=logging.WARNING)
            return None
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(on_error={self.on_error!r}, '
            f'check_truncation={self.check_truncation}, to_float32={self.to_float32}, '
            f'color_type={self.color_type!r}, imdecode_backend={self.imdecode_backend!r}, '
            f'backend_args={self.backend_args})'
        )
