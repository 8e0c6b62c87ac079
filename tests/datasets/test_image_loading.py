"""SafeLoadImageFromFile: broken images are named (or skipped); every colour layout gives 3
channels."""

import numpy as np
import pytest
from PIL import Image

from sdt_dense.datasets.transforms import ImageLoadError, SafeLoadImageFromFile, loading, truncation_problem


def _rgb(h=12, w=10):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 20, yy * 15, (xx + yy) * 5], axis=-1).astype(np.uint8)


def _save(path, array, mode=None, **kw):
    Image.fromarray(array, mode=mode).save(path, **kw)
    return path


def _load(path, **kw):
    return SafeLoadImageFromFile(**kw)(dict(img_path=str(path)))


def test_rgb_png_is_bgr(tmp_path):
    rgb = _rgb()
    out = _load(_save(tmp_path / 'a.png', rgb))
    assert out['img'].dtype == np.uint8 and out['img_shape'] == (12, 10)
    assert np.array_equal(out['img'], rgb[..., ::-1])


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = _rgb()[..., 0]
    img = _load(_save(tmp_path / 'g.png', gray))['img']
    assert img.shape == (12, 10, 3)
    for c in range(3):
        assert np.array_equal(img[..., c], gray)


def test_rgba_drops_alpha(tmp_path):
    rgb = _rgb()
    alpha = np.full(rgb.shape[:2], 7, np.uint8)
    img = _load(_save(tmp_path / 'a.png', np.dstack([rgb, alpha])))['img']
    assert img.shape == (12, 10, 3)
    assert np.array_equal(img, rgb[..., ::-1])


def test_gray_alpha_becomes_three_channels(tmp_path):
    gray = _rgb()[..., 1]
    la = Image.fromarray(np.dstack([gray, np.full_like(gray, 200)]), mode='LA')
    la.save(tmp_path / 'la.png')
    img = _load(tmp_path / 'la.png')['img']
    assert img.shape == (12, 10, 3) and all(np.array_equal(img[..., c], gray) for c in range(3))


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_jpeg_matches_mmcv_loader(tmp_path, backend):
    from mmcv.transforms import LoadImageFromFile

    path = _save(tmp_path / 'a.jpg', _rgb(), quality=90)
    ref = LoadImageFromFile(imdecode_backend=backend)(dict(img_path=str(path)))['img']
    assert np.array_equal(_load(path, imdecode_backend=backend)['img'], ref)


def _broken(tmp_path, kind):
    if kind == 'missing':
        return tmp_path / 'missing.jpg', 'image file not found'
    if kind == 'empty':
        (tmp_path / 'empty.jpg').write_bytes(b'')
        return tmp_path / 'empty.jpg', 'empty image file'
    if kind == 'garbage':
        (tmp_path / 'garbage.jpg').write_bytes(b'this is not an image' * 10)
        return tmp_path / 'garbage.jpg', 'could not decode'
    ext = kind.split('-')[1]
    good = _save(tmp_path / f'good.{ext}', (np.random.RandomState(0).rand(40, 40, 3) * 255).astype(np.uint8))
    data = good.read_bytes()
    path = tmp_path / f'cut.{ext}'
    path.write_bytes(data[: len(data) * 2 // 3])
    return path, f'truncated {"PNG" if ext == "png" else "JPEG"}'


KINDS = ['missing', 'empty', 'garbage', 'truncated-jpg', 'truncated-png']


@pytest.mark.parametrize('kind', KINDS)
def test_broken_image_raises_naming_the_file(tmp_path, kind):
    path, problem = _broken(tmp_path, kind)
    with pytest.raises(ImageLoadError) as err:
        _load(path)
    assert str(path) in str(err.value) and problem in str(err.value)


@pytest.mark.parametrize('kind', KINDS)
def test_broken_image_skipped_with_a_warning(tmp_path, kind, monkeypatch):
    path, problem = _broken(tmp_path, kind)
    logged = []
    monkeypatch.setattr(loading, 'print_log', lambda msg, **kw: logged.append((msg, kw)))
    assert _load(path, on_error='skip') is None
    assert len(logged) == 1
    msg, kw = logged[0]
    assert str(path) in msg and problem in msg and kw['level'] == 30  # logging.WARNING


def test_truncated_jpeg_is_caught_even_if_a_decoder_would_accept_it(tmp_path, monkeypatch):
    """Some decoders (older OpenCV, PIL with LOAD_TRUNCATED_IMAGES) return a grey-filled image
    for a truncated JPEG; the structural check does not depend on the decoder."""
    path, _ = _broken(tmp_path, 'truncated-jpg')
    monkeypatch.setattr(loading.mmcv, 'imfrombytes', lambda *a, **k: np.zeros((40, 40, 3), np.uint8))
    with pytest.raises(ImageLoadError, match='truncated JPEG'):
        _load(path)
    assert _load(path, check_truncation=False)['img'].shape == (40, 40, 3)


def test_truncation_problem_structure(tmp_path):
    jpg = _save(tmp_path / 'a.jpg', _rgb()).read_bytes()
    png = _save(tmp_path / 'a.png', _rgb()).read_bytes()
    assert truncation_problem(jpg) is None and truncation_problem(png) is None
    assert truncation_problem(jpg + b'trailing data after the image') is None
    assert truncation_problem(jpg[:-2]).startswith('truncated JPEG')
    assert truncation_problem(png[:-12]).startswith('truncated PNG')
    assert truncation_problem(b'BM' + b'\0' * 50) is None  # other formats: left to the decoder


def test_bad_arguments():
    with pytest.raises(ValueError, match='on_error'):
        SafeLoadImageFromFile(on_error='ignore')
    with pytest.raises(ValueError, match='ignore_empty'):
        SafeLoadImageFromFile(ignore_empty=True)


def test_registered_for_mmdet_and_mmseg():
    from mmdet.registry import TRANSFORMS as DET
    from mmseg.registry import TRANSFORMS as SEG

    for reg in (DET, SEG):
        t = reg.build(dict(type='SafeLoadImageFromFile', on_error='skip'))
        assert isinstance(t, SafeLoadImageFromFile) and t.on_error == 'skip'
