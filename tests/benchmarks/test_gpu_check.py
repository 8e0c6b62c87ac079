"""The one-shot GPU check (benchmarks/gpu/): the scripts run end to end in their CPU modes, and the
backbones import without mmcv, mmdet, mmseg and opencv, as on the GPU machine."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sdt_testing import PYTHON, REPO

GPU = REPO / 'benchmarks' / 'gpu'

# Runs in a fresh interpreter in which mmcv, mmdet, mmseg, opencv, pycocotools and matplotlib do
# not exist (an import of any of them raises), like the GPU machine without the OpenMMLab stack.
_WITHOUT_OPENMMLAB = r"""
import importlib.abc, sys
BLOCKED = ('mmcv', 'mmdet', 'mmseg', 'cv2', 'pycocotools', 'matplotlib')
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in BLOCKED:
            raise ImportError(f'{name} is not installed here')
sys.meta_path.insert(0, Block())
sys.path.insert(0, sys.argv[1])
from light_import import import_backbones
import_backbones()
import json
import torch
from sdt_dense.models import ESpikeFormer
torch.manual_seed(0)
model = ESpikeFormer('t').double().train()
feats = model(torch.randn(2, 3, 64, 64, dtype=torch.float64))
sum(f.sum() for f in feats).backward()
print(json.dumps(dict(
    shapes=[list(f.shape) for f in feats], sums=[f.double().sum().item() for f in feats],
    grad=sum(p.grad.double().abs().sum().item() for p in model.parameters() if p.grad is not None),
    loaded=sorted(m for m in sys.modules if m.split('.')[0] in ('mmdet', 'mmseg', 'mmcv')))))
"""


def test_backbones_train_without_openmmlab_toolboxes():
    """The light import builds the same backbone: same features and gradients as the package
    imported as usual (here, in the test process), and no toolbox module is loaded."""
    import torch

    from sdt_dense.models import ESpikeFormer

    proc = subprocess.run(
        [str(PYTHON), '-c', _WITHOUT_OPENMMLAB, str(GPU)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    light = json.loads(proc.stdout.strip().splitlines()[-1])
    assert light['loaded'] == []
    torch.manual_seed(0)
    model = ESpikeFormer('t').double().train()  # float64: no rounding-tie flips
    feats = model(torch.randn(2, 3, 64, 64, dtype=torch.float64))
    sum(f.sum() for f in feats).backward()
    assert light['shapes'] == [list(f.shape) for f in feats]
    assert light['sums'] == [f.double().sum().item() for f in feats]
    assert light['grad'] == sum(
        p.grad.double().abs().sum().item() for p in model.parameters() if p.grad is not None
    )


def test_prepare_dry_run_lists_pinned_packages():
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ('TORCH_CUDA_ARCH_LIST', 'SDT_DEVICE_TORCH', 'SDT_DEVICE_PYTHON')
    }
    proc = subprocess.run(
        ['bash', str(GPU / 'prepare.sh'), '--dry-run'], capture_output=True, text=True, timeout=120, env=base
    )
    assert proc.returncode == 0, proc.stderr
    for pin in (
        'mmengine==0.10.7',
        'mmdet==3.3.0',
        'mmsegmentation==1.2.2',
        'pycocotools==',
        'mmcv==2.1.0 (source archive)',
    ):
        assert pin in proc.stdout
    # the CUDA mmcv wheel is built on CPU for the GPU machine's torch and Python, for sm_90
    assert (
        'mmcv==2.1.0 with CUDA ops for sm_90 (TORCH_CUDA_ARCH_LIST=9.0), built for torch==2.11.0, '
        'Python 3.12' in proc.stdout
    )
    assert 'nothing downloaded' in proc.stdout
    env = dict(base, SDT_DEVICE_TORCH='2.12.0', SDT_DEVICE_PYTHON='3.13')
    proc = subprocess.run(
        ['bash', str(GPU / 'prepare.sh'), '--dry-run'], capture_output=True, text=True, timeout=120, env=env
    )
    assert 'built for torch==2.12.0, Python 3.13' in proc.stdout
    proc = subprocess.run(
        ['bash', str(GPU / 'prepare.sh'), '--dry-run', '--no-mmcv-cuda'],
        capture_output=True,
        text=True,
        timeout=120,
        env=base,
    )
    assert proc.returncode == 0 and 'CUDA ops' not in proc.stdout


def _cached_mmcv_wheel() -> Path:
    """The mmcv wheel tools/setup_env.sh built for this venv (its cache key is in the venv)."""
    key_file = Path(sys.prefix) / '.sdt-mmcv-key'
    assert key_file.is_file(), f'{key_file} missing: make the venv with tools/setup_env.sh'
    cache = Path(
        os.environ.get('SDT_CACHE')
        or Path(os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache') / 'sdt-dense'
    )
    wheels = sorted((cache / 'wheels' / key_file.read_text().strip()).glob('mmcv-2.1.0-*.whl'))
    assert wheels, f'no cached mmcv wheel for {key_file.read_text().strip()} in {cache}/wheels'
    return wheels[0]


@pytest.mark.slow
def test_check_dry_run_measures_every_part(tmp_path):
    """The whole sequence at toy sizes; mmcv comes from a carried wheel (here the venv's own CPU
    wheel from setup_env.sh's cache, standing in for prepare.sh's CUDA one), installed into
    $OUT/site without compiling, as on the GPU machine."""
    whl = tmp_path / 'whl'
    whl.mkdir()
    shutil.copy(_cached_mmcv_wheel(), whl)
    env = dict(os.environ, OUT=str(tmp_path), SDT_CHECK_LIGHT='1', PYTHON=str(PYTHON), SDT_CHECK_WHL=str(whl))
    proc = subprocess.run(
        ['bash', str(GPU / 'check.sh'), '--dry-run'],
        capture_output=True,
        text=True,
        timeout=1500,
        env=env,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    env_info = json.loads((tmp_path / 'env.json').read_text())
    assert env_info['mmcv._ext'] is True
    assert env_info['mmcv_file'].startswith(str(tmp_path / 'site'))  # the carried wheel's mmcv
    assert 'no compiling' in (tmp_path / 'check.log').read_text()
    for part in ('A_train_cost_t_fp32', 'A_train_cost_t_bf16', 'B_seg_toy_train', 'C_detector_cost'):
        assert (tmp_path / f'{part}.rc').read_text().strip() == '0', (tmp_path / f'{part}.log').read_text()[
            -3000:
        ]
    fp32 = json.loads((tmp_path / 'A_train_cost_t_fp32.json').read_text())
    bf16 = json.loads((tmp_path / 'A_train_cost_t_bf16.json').read_text())
    assert fp32['settings']['amp'] is False and bf16['settings']['amp'] is True
    for r in (fp32, bf16):
        assert r['sfa_step_s'] > 0 and r['lif_step_s'] > 0
    # fp32: LIF T=4 keeps T times the activations, and SFA saves counts as codes
    assert fp32['saved_ratio'] < 0.25
    det = json.loads((tmp_path / 'C_detector_cost.json').read_text())
    assert set(det['detectors']) == {'esf-19m', 'r50'}
    # the toy training ran its iterations and saved its last checkpoint
    assert list((tmp_path / 'seg_toy').glob('iter_5.pth'))
    summary = (tmp_path / 'summary.md').read_text()
    assert summary.count('| t | 32 | 2 |') == 6  # fp32 and bf16: SFA, LIF and the ratio row
    assert 'B_seg_toy_train: done' in summary and 'C_detector_cost: done' in summary
