"""configs/ as an OpenMMLab model zoo: the metafile lists every config of configs/e_spikeformer/,
every config shares the runtime base (plugin import, reliability hooks) and one arch spelling, and
the Cascade config is built on the Mask R-CNN one."""
from __future__ import annotations

import functools
from pathlib import Path

import pytest
import yaml
from mmengine.config import Config

from sdt_dense.models.backbones.e_spikeformer import ARCH_ZOO
from sdt_testing import REPO

CONFIGS = REPO / 'configs'
ZOO = CONFIGS / 'e_spikeformer'
METAFILE = ZOO / 'metafile.yml'
#: every runnable config (the _base_ files are fragments)
ALL_CONFIGS = sorted(p for p in CONFIGS.rglob('*.py') if '_base_' not in p.parts)
RELIABILITY_HOOKS = ['NonFiniteLossHook', 'RNGStateHook', 'StrictLoadHook', 'NonEmptyDatasetHook',
                     'NumClassesCheckHook']


@functools.lru_cache(maxsize=None)
def read(path: Path) -> Config:
    return Config.fromfile(str(path))


def metafile() -> dict:
    with open(METAFILE, encoding='utf-8') as f:
        return yaml.safe_load(f)


def test_metafile_lists_every_config():
    meta = metafile()
    collections = {c['Name']: c for c in meta['Collections']}
    for c in collections.values():
        assert {'Name', 'Metadata', 'Paper', 'README', 'Code'} <= set(c)
        assert c['Paper']['URL'] == 'https://arxiv.org/abs/2411.16061'
        assert (REPO / c['README']).is_file()
        assert (REPO / c['Code']['URL']).is_file()
    listed = set()
    for model in meta['Models']:
        config = REPO / model['Config']
        assert config.is_file(), model['Config']
        assert model['Name'] == config.stem
        assert model['In Collection'] in collections
        assert 'Training Data' in model['Metadata']
        # No trained dense model has been released: no Weights, and Results only as published.
        assert 'Weights' not in model
        for result in model.get('Results', []):
            assert set(result) == {'Task', 'Dataset', 'Metrics'}
        listed.add(config.resolve())
    assert len(listed) == len(meta['Models'])  # each config once
    zoo = {p.resolve() for p in ZOO.glob('*.py')}
    assert zoo <= listed, sorted(p.name for p in zoo - listed)


def test_readme_names_every_listed_config():
    readme = (ZOO / 'README.md').read_text()
    for model in metafile()['Models']:
        assert model['Config'] in readme, model['Config']
    assert '2411.16061' in readme and '@article' in readme


@pytest.mark.slow
@pytest.mark.parametrize('path', ALL_CONFIGS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_config_shares_runtime_and_arch_spelling(path):
    cfg = read(path)
    assert cfg.custom_imports == dict(imports=['sdt_dense'], allow_failed_imports=False)
    assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook'
    assert [h['type'] for h in cfg.custom_hooks] == RELIABILITY_HOOKS
    backbone = cfg.model.get('backbone')
    if backbone is not None and backbone.type == 'ESpikeFormer':
        assert backbone.arch in ARCH_ZOO  # 't' / 's' / 'm' / 'l', never an alias


def test_cascade_is_built_on_mask_rcnn():
    cascade = ZOO / 'cascade-mask-rcnn_e-spikeformer-19m_spike-fpn_8xb2-3x_coco.py'
    assert "_base_ = ['../mask_rcnn_sdt.py']" in cascade.read_text()
    c, m = read(cascade).model, read(CONFIGS / 'mask_rcnn_sdt.py').model
    assert c.type == 'CascadeRCNN' and c.roi_head.type == 'CascadeRoIHead'
    for key in ('backbone', 'neck', 'data_preprocessor'):
        assert c[key] == m[key], key
    assert c.rpn_head.anchor_generator == m.rpn_head.anchor_generator
    for key in ('bbox_roi_extractor', 'mask_roi_extractor', 'mask_head'):
        assert c.roi_head[key] == m.roi_head[key], key
    assert [h.type for h in c.roi_head.bbox_head] == ['SpikeShared4Conv1FCBBoxHead'] * 3
    assert [s.assigner.pos_iou_thr for s in c.train_cfg.rcnn] == [0.5, 0.6, 0.7]
