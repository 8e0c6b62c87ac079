"""configs/ as an OpenMMLab model zoo: every zoo folder's metafile lists its configs and its README
names them; every config is at most three of the project's files deep, shares the runtime base
(plugin import, reliability hooks), and its ``arch`` is the size its file name says; the Cascade
configs are built on the Mask R-CNN network."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest
import yaml
from mmengine.config import Config

from sdt_dense.models import ESpikeFormer, ESpikeFormerLarge
from sdt_testing import REPO

CONFIGS = REPO / 'configs'
#: the zoo folders (README.md + metafile.yml each) and what each README must say besides the paper
ZOOS = {
    'e_spikeformer': (),
    'e_spikeformer_large': ('No dense-prediction recipe or result has been published', '84.0', '86.2'),
    'events': ('No event-camera detection recipe or result has been published',),
}
#: every runnable config (the _base_ files are fragments)
ALL_CONFIGS = sorted(p for p in CONFIGS.rglob('*.py') if '_base_' not in p.parts)
RELIABILITY_HOOKS = [
    'NonFiniteLossHook',
    'RNGStateHook',
    'StrictLoadHook',
    'NonEmptyDatasetHook',
    'NumClassesCheckHook',
]


@functools.lru_cache(maxsize=None)
def read(path: Path) -> Config:
    return Config.fromfile(str(path))


def metafile(zoo: str) -> dict:
    with open(CONFIGS / zoo / 'metafile.yml', encoding='utf-8') as f:
        return yaml.safe_load(f)


@pytest.mark.parametrize('zoo', sorted(ZOOS))
def test_metafile_lists_every_config(zoo):
    meta = metafile(zoo)
    collections = {c['Name']: c for c in meta['Collections']}
    for c in collections.values():
        assert {'Name', 'Metadata', 'Paper', 'README', 'Code'} <= set(c)
        assert c['Paper']['URL'] == 'https://arxiv.org/abs/2411.16061'
        assert c['README'] == f'configs/{zoo}/README.md'
        assert (REPO / c['Code']['URL']).is_file()
    listed = []
    for model in meta['Models']:
        config = REPO / model['Config']
        assert config.is_file(), model['Config']
        assert config.parent == CONFIGS / zoo and model['Name'] == config.stem
        assert model['In Collection'] in collections
        assert 'Training Data' in model['Metadata']
        # No trained dense model has been released: no Weights, and Results only as published.
        assert 'Weights' not in model
        for result in model.get('Results', []):
            assert set(result) == {'Task', 'Dataset', 'Metrics'}
        listed.append(config.resolve())
    assert sorted(listed) == sorted(p.resolve() for p in (CONFIGS / zoo).glob('*.py'))


@pytest.mark.parametrize('zoo', sorted(ZOOS))
def test_readme_names_every_config(zoo):
    readme = (CONFIGS / zoo / 'README.md').read_text(encoding='utf-8')
    for model in metafile(zoo)['Models']:
        assert model['Config'] in readme, model['Config']
    for phrase in ('2411.16061', '@article') + ZOOS[zoo]:
        assert phrase in readme, phrase


def base_files(path: Path) -> list:
    """The project's config files that ``path`` lists in ``_base_`` (toolbox bases left out)."""
    for node in ast.parse(path.read_text(encoding='utf-8')).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', None) == '_base_':
            bases = ast.literal_eval(node.value)
            bases = [bases] if isinstance(bases, str) else bases
            return [(path.parent / b).resolve() for b in bases if '::' not in b]
    return []


def chain_length(path: Path) -> int:
    """The project's files in the longest ``_base_`` chain from ``path`` (``path`` included)."""
    return 1 + max((chain_length(b) for b in base_files(path)), default=0)


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_inheritance_is_at_most_three_files_deep(path):
    assert all(b.is_file() for b in base_files(path)), base_files(path)
    assert chain_length(path) <= 3, path.name


def test_chain_length_counts_the_longest_chain(tmp_path):
    (tmp_path / 'a.py').write_text("_base_ = ['mmdet::x.py', './b.py', './c.py']\n")
    (tmp_path / 'b.py').write_text("_base_ = './c.py'\n")
    (tmp_path / 'c.py').write_text('x = 1\n')
    assert [chain_length(tmp_path / n) for n in ('a.py', 'b.py', 'c.py')] == [3, 2, 1]


def test_mask_rcnn_sdt_is_the_19m_zoo_config():
    short = CONFIGS / 'mask_rcnn_sdt.py'
    assert base_files(short) == [
        (CONFIGS / 'e_spikeformer' / 'mask-rcnn_e-spikeformer-19m_spike-fpn_8xb4-1x_coco.py')
    ]
    code = [line for line in short.read_text().splitlines() if line and not line.startswith('#')]
    assert len(code) == 1  # only the _base_ line


@pytest.mark.slow
@pytest.mark.parametrize('path', ALL_CONFIGS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_config_shares_runtime(path):
    cfg = read(path)
    assert cfg.custom_imports == dict(imports=['sdt_dense'], allow_failed_imports=False)
    assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook'
    assert [h['type'] for h in cfg.custom_hooks] == RELIABILITY_HOOKS


#: the family each model type's ``arch`` belongs to
ARCH_FAMILY = {
    'ESpikeFormer': ESpikeFormer,
    'MultiStepESpikeFormer': ESpikeFormer,
    'ESpikeFormerLarge': ESpikeFormerLarge,
    'SpikeMAE': ESpikeFormerLarge,
}


def arch_in_file_name(path: Path) -> str:
    """The size a config's file name states: ``e-spikeformer-19m`` -> ``'19M'``, ``-t`` -> ``'t'``,
    ``-large-toy`` -> ``'large-toy'`` (a dict arch of the Large family). ``mask_rcnn_sdt.py``, the
    users' short command line, is the 19M Mask R-CNN."""
    if path.name == 'mask_rcnn_sdt.py':
        return '19M'
    m = re.search(r'e-spikeformer-(large-toy|t|\d+m)(?=[-_])', path.name)
    assert m, f'{path.name} does not name its size (e-spikeformer-<size>)'
    return m.group(1).upper() if m.group(1)[-1] == 'm' else m.group(1)


def test_arch_in_file_name_parser():
    names = {
        'mask-rcnn_e-spikeformer-19m-s32_spike-fpn_8xb4-1x_coco.py': '19M',
        'fpn_e-spikeformer-173m_8xb2-160k_ade20k-512x512.py': '173M',
        'fpn_e-spikeformer-t_toy.py': 't',
        'spike-mae_e-spikeformer-large-toy_toy.py': 'large-toy',
    }
    for name, size in names.items():
        assert arch_in_file_name(Path(name)) == size


@pytest.mark.slow
@pytest.mark.parametrize('path', ALL_CONFIGS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_arch_agrees_with_file_name(path):
    model = read(path).model
    holder = model.get('backbone', model)  # SpikeMAE takes the arch itself
    family = ARCH_FAMILY[holder.type]
    size = arch_in_file_name(path)
    if size == 'large-toy':
        assert family is ESpikeFormerLarge and isinstance(holder.arch, dict)
        family.resolve_arch(holder.arch.to_dict())
        return
    assert holder.arch == size, f'{path.name}: arch={holder.arch!r}'
    assert family.canonical_arch(holder.arch) == size  # the zoo key, not an alias


def test_cascade_is_built_on_mask_rcnn():
    cascade = CONFIGS / 'e_spikeformer' / 'cascade-mask-rcnn_e-spikeformer-19m_spike-fpn_8xb2-3x_coco.py'
    c, m = read(cascade).model, read(CONFIGS / 'mask_rcnn_sdt.py').model
    assert c.type == 'CascadeRCNN' and c.roi_head.type == 'CascadeRoIHead'
    for key in ('backbone', 'neck', 'data_preprocessor'):
        assert c[key] == m[key], key
    assert c.rpn_head.anchor_generator == m.rpn_head.anchor_generator
    for key in ('bbox_roi_extractor', 'mask_roi_extractor', 'mask_head'):
        assert c.roi_head[key] == m.roi_head[key], key
    assert [h.type for h in c.roi_head.bbox_head] == ['SpikeShared4Conv1FCBBoxHead'] * 3
    assert [s.assigner.pos_iou_thr for s in c.train_cfg.rcnn] == [0.5, 0.6, 0.7]
