"""Foundation: installation, registration, safe checkpoints, config inheritance, tools, CI wiring."""

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

import sdt_dense
from sdt_dense.checkpoint import UnsafeCheckpointError, allowed_globals, extract_state_dict, safe_load
from sdt_testing import REPO, TEST_DATA, run_ok  # noqa: E402

# A tiny regression task registered in mmengine's root registries (visible from the mmdet and mmseg
# scopes). Written to a file so that subprocesses can load it with ``custom_imports``.
TOY_MODULE = """
import torch
from torch import nn
from mmengine.dataset import BaseDataset
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, METRICS, MODELS


@MODELS.register_module(force=True)
class SdtToyRegressor(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)
        self.bn = nn.BatchNorm1d(1)

    def forward(self, inputs, labels=None, mode='tensor', **kwargs):
        out = self.bn(self.linear(inputs)).squeeze(1)
        if mode == 'loss':
            return dict(loss=((out - labels) ** 2).mean())
        if mode == 'predict':
            return [(p, t) for p, t in zip(out.detach(), labels)]
        return out


@DATASETS.register_module(force=True)
class SdtToyDataset(BaseDataset):
    METAINFO = dict(classes=('a', 'b'))

    def load_data_list(self):
        return [dict(inputs=torch.tensor([i / 8, 1.0]), labels=torch.tensor(i / 8))
                for i in range(8)]


@METRICS.register_module(force=True)
class SdtToyMAE(BaseMetric):
    default_prefix = 'toy'

    def process(self, data_batch, data_samples):
        self.results.extend(float((p - t).abs()) for p, t in data_samples)

    def compute_metrics(self, results):
        return dict(mae=sum(results) / len(results), n=len(results))
"""


def _loader(batch_size=4):
    # metainfo with a nested dict: the dataset keeps it as a ConfigDict, which then lands in the
    # checkpoint's meta['dataset_meta'] (one of the classes the allow-list must cover).
    return dict(
        dataset=dict(
            type='SdtToyDataset', metainfo=dict(classes=('x', 'y'), extra=dict(k=1)), serialize_data=False
        ),
        sampler=dict(type='DefaultSampler', shuffle=False),
        batch_size=batch_size,
        num_workers=0,
        collate_fn=dict(type='default_collate'),
    )


def _toy_cfg(work_dir, max_iters, **extra):
    cfg = dict(
        model=dict(type='SdtToyRegressor'),
        work_dir=str(work_dir),
        train_dataloader=_loader(),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
            dict(type='MultiStepLR', by_epoch=False, milestones=[1]),
        ],
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
            logger=dict(type='LoggerHook', interval=1),
        ),
        log_level='WARNING',
        randomness=dict(seed=0),
    )
    cfg.update(extra)
    return cfg


@pytest.fixture(scope='module')
def toy_module(tmp_path_factory):
    """The toy module file, imported in this process too."""
    path = tmp_path_factory.mktemp('toy') / 'sdt_toy_module.py'
    path.write_text(TOY_MODULE)
    spec = importlib.util.spec_from_file_location('sdt_toy_module', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return path


# --------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_stack_imports_in_a_fresh_interpreter():
    code = (
        'import sdt_dense, mmdet, mmseg, mmcv, mmcv.ops; '
        'from mmcv.ops import nms; import torch; '
        'print(mmcv.__version__, len(nms(torch.tensor([[0., 0., 1., 1.], [0., 0., 1., 1.]]), '
        'torch.tensor([.9, .8]), .5)[1]))'
    )
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-2:] == ['2.1.0', '1']  # compiled ops: NMS keeps one of two boxes


def test_version_and_editable_install():
    text = (REPO / 'sdt_dense' / 'version.py').read_text()
    assert f"__version__ = '{sdt_dense.__version__}'" in text
    assert metadata.version('sdt-dense') == sdt_dense.__version__
    # the installed package is this checkout (editable), not a stale copy
    assert Path(sdt_dense.__file__).resolve().parent == REPO / 'sdt_dense'


@pytest.mark.parametrize('name', ['ESpikeFormer'])
def test_models_registered_in_mmdet_and_mmseg(name):
    from mmdet.registry import MODELS as DET_MODELS
    from mmseg.registry import MODELS as SEG_MODELS

    det, seg = DET_MODELS.get(name), SEG_MODELS.get(name)
    assert det is not None and det is seg
    assert det.__module__.startswith('sdt_dense.')


# --------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_runner_checkpoint_round_trip_is_weights_only(toy_module, tmp_path, monkeypatch):
    """A Runner checkpoint (message hub, numpy scalars, ConfigDict meta, optimizer and scheduler
    state) loads through safe_load and through mmengine's own resume/load_checkpoint, with torch's
    weights_only safety forced on and never disabled."""
    from mmengine.logging import HistoryBuffer
    from mmengine.runner import Runner, load_checkpoint

    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)
    monkeypatch.setenv('TORCH_FORCE_WEIGHTS_ONLY_LOAD', '1')  # every torch.load is weights-only
    calls = []
    real_load = torch.load

    def spy_load(*args, **kwargs):
        calls.append(kwargs.get('weights_only'))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', spy_load)

    runner = Runner.from_cfg(Config(_toy_cfg(tmp_path / 'a', max_iters=2)))
    runner.train()
    ckpt_path = tmp_path / 'a' / 'iter_2.pth'
    assert ckpt_path.is_file()

    # 1. sdt_dense.checkpoint.safe_load
    ckpt = safe_load(ckpt_path)
    assert {'meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers'} <= set(ckpt)
    assert isinstance(ckpt['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    assert ckpt['message_hub']['log_scalars']['train/loss'].statistics('min') > 0
    assert isinstance(ckpt['message_hub']['runtime_info']['eta'], np.floating)
    assert type(ckpt['meta']['dataset_meta']['extra']).__name__ == 'ConfigDict'
    assert ckpt['optimizer']['state']  # AdamW moments
    state = extract_state_dict(ckpt)
    assert set(state) == set(runner.model.state_dict())

    # 2. mmengine's load_checkpoint into a fresh model (after safe_load: the allow-list survives)
    fresh = type(runner.model)()
    load_checkpoint(fresh, str(ckpt_path), map_location='cpu', strict=True)
    for key, value in fresh.state_dict().items():
        torch.testing.assert_close(value, state[key])

    # 3. resume: iteration counter, optimizer, schedulers and message hub come back
    resumed = Runner.from_cfg(
        Config(_toy_cfg(tmp_path / 'b', max_iters=3, resume=True, load_from=str(ckpt_path)))
    )
    resumed.train()
    assert resumed.iter == 3
    losses = resumed.message_hub.get_scalar('train/loss').data[0]
    assert len(losses) == 3  # 2 restored from the checkpoint + 1 new

    assert calls and False not in calls  # nobody asked for weights_only=False


def test_safe_load_refuses_code_and_arbitrary_getattr(tmp_path):
    marker = tmp_path / 'pwned'

    class RunsCode:
        def __reduce__(self):
            return (os.system, (f'touch {marker}',))

    class FetchesAttribute:  # the getattr stand-in only resolves HistoryBuffer statistics methods
        def __reduce__(self):
            return (getattr, (argparse.Namespace, '__init__'))

    for i, obj in enumerate([RunsCode(), FetchesAttribute()]):
        path = tmp_path / f'bad{i}.pth'
        torch.save({'state_dict': {}, 'x': obj}, path)
        with pytest.raises(UnsafeCheckpointError):
            safe_load(path)
        with pytest.raises(Exception):  # mmengine's path (plain torch.load) is just as strict
            torch.load(path, weights_only=True)
    assert not marker.exists()
    assert getattr not in allowed_globals()
    with pytest.raises(FileNotFoundError):
        safe_load(tmp_path / 'missing.pth')


def test_released_checkpoint_format_loads_safely():
    ckpt = safe_load(TEST_DATA / 'base' / 'e_spikeformer_t_official_format.pth')
    assert isinstance(ckpt['args'], argparse.Namespace)
    assert extract_state_dict(ckpt) is ckpt['model']


# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    'base,model_type,check',
    [
        (
            'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
            'MaskRCNN',
            lambda m: m.roi_head.mask_head.type == 'FCNMaskHead',
        ),
        ('mmseg::_base_/models/fpn_r50.py', 'EncoderDecoder', lambda m: m.decode_head.type == 'FPNHead'),
    ],
)
def test_package_base_configs_resolve(tmp_path, base, model_type, check):
    path = tmp_path / 'cfg.py'
    path.write_text(
        textwrap.dedent(f"""\
        _base_ = ['{base}']
        custom_imports = dict(imports=['sdt_dense'], allow_failed_imports=False)
        model = dict(backbone=dict(_delete_=True, type='ESpikeFormer', arch='t'))
        """)
    )
    cfg = Config.fromfile(str(path))
    assert cfg.model.type == model_type
    assert cfg.model.backbone.type == 'ESpikeFormer' and 'depth' not in cfg.model.backbone
    assert check(cfg.model)


# --------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_dist_train_and_test_on_cpu_over_gloo(toy_module, tmp_path):
    """tools/dist_train.sh (2 processes) and tools/dist_test.sh on CPU (gloo backend, DDP without
    device_ids, although the config asks for nccl); tools/test.py writes <work_dir>/metrics.json."""
    config = tmp_path / 'toy_dist.py'
    cfg = _toy_cfg('unused', max_iters=2)
    cfg.pop('work_dir')
    cfg.update(
        default_scope='mmdet',
        custom_imports=dict(imports=['sdt_toy_module']),
        test_dataloader=_loader(batch_size=2),
        test_evaluator=dict(type='SdtToyMAE'),
        test_cfg=dict(type='TestLoop'),
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend='nccl')),
        log_level='INFO',
    )
    config.write_text('\n'.join(f'{k} = {v!r}' for k, v in cfg.items()) + '\n')
    env = dict(
        PYTHONPATH=os.pathsep.join([str(toy_module.parent), str(REPO)]),
        PYTHON=sys.executable,
        PORT=str(29500 + os.getpid() % 1000),
    )
    log = run_ok(
        [
            'bash',
            str(REPO / 'tools' / 'dist_train.sh'),
            str(config),
            '2',
            '--work-dir',
            str(tmp_path / 'work'),
        ],
        tmp_path,
        **env,
    )
    ckpt = tmp_path / 'work' / 'iter_2.pth'
    assert ckpt.is_file(), log[-2000:]
    if not torch.cuda.is_available():  # the config asks for nccl; without GPUs gloo must be used
        assert 'World size: 2 (backend: gloo)' in log

    # one test process keeps the test short; it still goes through gloo and the DDP wrapper
    run_ok(
        [
            'bash',
            str(REPO / 'tools' / 'dist_test.sh'),
            str(config),
            str(ckpt),
            '1',
            '--work-dir',
            str(tmp_path / 'test'),
        ],
        tmp_path,
        **env,
    )
    metrics = json.loads((tmp_path / 'test' / 'metrics.json').read_text())
    assert set(metrics) == {'toy/mae', 'toy/n'}
    assert metrics['toy/n'] == 8  # the whole test set was evaluated
    assert 0 <= metrics['toy/mae'] < 10


# --------------------------------------------------------------------------------------------------
def test_ci_runs_the_readme_test_command():
    readme = (REPO / 'README.md').read_text()
    match = re.search(r'^(bash tools/setup_env\.sh && (\.venv/bin/python -m pytest[^\n]*))$', readme, re.M)
    assert match, 'README has no "bash tools/setup_env.sh && .venv/bin/python -m pytest ..." line'
    ci = (REPO / '.ci' / 'run').read_text()
    assert os.access(REPO / '.ci' / 'run', os.X_OK)
    setup_at, pytest_at = ci.find('bash tools/setup_env.sh'), ci.find(match.group(2))
    assert 0 <= setup_at < pytest_at
    assert 'bash tools/quickstart.sh' in readme


def test_setup_script_parses_and_requirements_are_consistent():
    subprocess.run(['bash', '-n', str(REPO / 'tools' / 'setup_env.sh')], check=True)
    req = (REPO / 'requirements' / 'mminstall.txt').read_text()
    for pin in ('mmcv==2.1.0', 'mmdet==3.3.0', 'mmsegmentation==1.2.2'):
        assert pin in req
        name, version = pin.split('==')
        assert metadata.version(name) == version
    assert re.search(r'^mmengine>=0\.10\.0,<0\.11$', req, re.M)
