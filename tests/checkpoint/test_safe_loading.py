"""No checkpoint can run code: a crafted pickle is refused everywhere the project loads
checkpoints, and its payload (which would create a marker file) never runs."""

import pickle
from pathlib import Path

import pytest
import torch
from mmengine.runner import CheckpointLoader
from mmengine.runner.checkpoint import _load_checkpoint, load_from_local

from sdt_dense.checkpoint import UnsafeCheckpointError, safe_load
from sdt_dense.models import ESpikeFormer
from sdt_testing import REPO, make_toy_data, run_tool


class _Payload:
    """Unpickling this runs ``exec`` (here: create the marker file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f'open({self.marker!r}, "w").write("pwned")',))


def _malicious(tmp_path: Path, fmt: str = 'torch') -> tuple:
    marker = tmp_path / 'PAYLOAD_RAN'
    path = tmp_path / f'evil_{fmt}.pth'
    obj = {'state_dict': {'w': torch.zeros(2)}, 'meta': {'x': _Payload(marker)}}
    if fmt == 'torch':
        torch.save(obj, path)
    else:  # legacy: a bare pickle stream
        with open(path, 'wb') as f:
            pickle.dump(obj, f)
    return path, marker


def test_control_plain_unpickling_runs_the_payload(tmp_path, monkeypatch):
    """Control for every test below: the file really is malicious. mmengine's own local loader,
    with torch's weights-only default switched off by the environment, executes it."""
    path, marker = _malicious(tmp_path)
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    with pytest.warns(UserWarning):
        load_from_local(str(path), 'cpu')
    assert marker.read_text() == 'pwned'


@pytest.mark.parametrize('fmt', ['torch', 'pickle'])
def test_safe_load_refuses(tmp_path, fmt):
    path, marker = _malicious(tmp_path, fmt)
    with pytest.raises(UnsafeCheckpointError, match='refused to load .*evil_'):
        safe_load(path)
    assert not marker.exists()


@pytest.mark.parametrize('force_unsafe_env', [False, True])
def test_mmengine_loader_is_safe_even_when_torch_default_is_off(tmp_path, monkeypatch, force_unsafe_env):
    """``load_from``, ``--resume`` and ``tools/test.py`` read local files through mmengine's
    CheckpointLoader, to which sdt_dense registers its safe loader."""
    if force_unsafe_env:
        monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    path, marker = _malicious(tmp_path)
    with pytest.raises(UnsafeCheckpointError, match=str(path)):
        _load_checkpoint(str(path), map_location='cpu')
    with pytest.raises(UnsafeCheckpointError):
        CheckpointLoader.load_checkpoint(str(path))
    assert not marker.exists()


def test_backbone_pretrained_refuses(tmp_path):
    path, marker = _malicious(tmp_path)
    model = ESpikeFormer(arch='t', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(UnsafeCheckpointError):
        model.init_weights()
    assert not marker.exists()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        _load_checkpoint(str(tmp_path / 'nope.pth'))


# ------------------------------------------------------------------------------------------------
# The command-line tools (toy segmentation config)


@pytest.fixture(scope='module')
def toy_cfg(tmp_path_factory):
    root = tmp_path_factory.mktemp('safe')
    data = make_toy_data('seg', root / 'toy_ade')
    cfg = root / 'toy.py'
    cfg.write_text(f"""
_base_ = [{str(REPO / 'configs/toy/fpn_e-spikeformer-t_toy.py')!r}]
_data = dict(data_root={str(data)!r})
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=_data)
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=_data)
test_dataloader = val_dataloader
train_cfg = dict(max_iters=2)
""")
    return cfg


def _assert_refused(proc, path, marker, work):
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert 'UnsafeCheckpointError' in out and str(path) in out, out[-3000:]
    assert not marker.exists()
    if Path(work).exists():  # nothing was written
        assert not list(Path(work).glob('*.pth'))


@pytest.mark.slow
def test_tools_test_refuses(tmp_path, toy_cfg):
    """Even with torch's weights-only default switched off by the environment."""
    path, marker = _malicious(tmp_path)
    work = tmp_path / 'work'
    proc = run_tool(['test.py', toy_cfg, path, '--work-dir', work], TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD='1')
    _assert_refused(proc, path, marker, work)
    assert not (work / 'metrics.json').exists()


@pytest.mark.slow
def test_tools_train_resume_refuses(tmp_path, toy_cfg):
    """``--resume`` of a work_dir whose ``last_checkpoint`` names the file (a poisoned work_dir),
    with torch's weights-only default switched off by the environment."""
    path, marker = _malicious(tmp_path)
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'last_checkpoint').write_text(str(path))
    proc = run_tool(
        ['train.py', toy_cfg, '--work-dir', work, '--resume'], TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD='1'
    )
    _assert_refused(proc, path, marker, work)
