"""Helpers shared by the test modules (``from sdt_testing import ...``).

* repository paths (:data:`REPO`, :data:`TEST_DATA`);
* subprocess runs of the scripts in ``tools/`` (:func:`run_tool`, :func:`run`, :func:`tool_env`,
  :func:`sigkill_when`), a free TCP port for gloo (:func:`free_port`) and the toy detector's
  2-process CPU config (:func:`toy_dist_config`);
* tiny networks' state (:func:`randomise_bn`) and output comparison (:func:`assert_outputs_equal`);
* toy data (:func:`make_toy_data`).

The toy mmengine model, dataset and hooks of the engine tests live in :mod:`.toy_runner`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List, Sequence

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[2]
#: fixture files the tests read (copied from the reference data; see tests/data/README.md)
TEST_DATA = REPO / 'tests' / 'data'
PYTHON = sys.executable
#: the directory that holds this package, so subprocesses can import it (custom_imports)
_TESTS_ROOT = Path(__file__).resolve().parents[1]


def randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """BN statistics/affine drawn so that every spike count 0..4 occurs (PyTorch's default init
    gives almost only zeros and ones) and BN folding is non-trivial."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * 2 - 1)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) * 2.5 + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) * 2)
    return model


def assert_outputs_equal(a, b, atol: float = 1e-4) -> None:
    """Nested tensors / dicts / sequences equal within ``atol`` (absolute, no relative slack)."""
    if isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b, atol=atol, rtol=0)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_outputs_equal(a[k], b[k], atol)
    else:
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_outputs_equal(x, y, atol)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def toy_dist_config(root: Path, data: Path, extra: str = '') -> Path:
    """Write ``root/toy_dist.py``: the toy detector for 2 CPU processes (gloo) on the toy COCO data
    in ``data``, one epoch, SyncBN over gloo, a checkpoint per epoch; ``extra`` is appended."""
    cfg = Path(root) / 'toy_dist.py'
    cfg.write_text(f"""
_base_ = [{str(REPO / 'configs/toy/mask-rcnn_e-spikeformer-t_spike-fpn_toy.py')!r}]
_root = {str(data) + '/'!r}
_loader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root=_root))
train_dataloader = dict(batch_size=2, **_loader)
val_dataloader = dict(batch_size=1, **_loader)
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1, val_interval=100)
param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=2)]
sync_bn = 'torch'  # the runner converts every BN to SyncBN under distributed training
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(type='AtomicCheckpointHook', interval=1))
randomness = dict(seed=0, deterministic=True)
{extra}""")
    return cfg


def tool_env(**extra: str) -> dict:
    """Environment of a ``tools/*`` subprocess: this package importable, 1 thread, safe loading."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([str(_TESTS_ROOT)] + [p for p in [env.get('PYTHONPATH')] if p])
    env.update(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    env.pop('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', None)
    env.update(extra)
    return env


def run(
    cmd: Sequence, cwd=REPO, timeout: float = 600, check: bool = True, **env: str
) -> subprocess.CompletedProcess:
    """Run ``cmd`` with :func:`tool_env`; with ``check`` assert success, showing the output's end."""
    proc = subprocess.run(
        [str(a) for a in cmd],
        cwd=cwd,
        env=tool_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def run_tool(
    args: List, timeout: float = 600, check: bool = False, cwd=REPO, **env: str
) -> subprocess.CompletedProcess:
    """Run ``python tools/<args[0]> ...`` (or ``bash tools/<x>.sh ...``)."""
    script = str(args[0])
    cmd = (['bash'] if script.endswith('.sh') else [PYTHON]) + [str(REPO / 'tools' / script)]
    return run(cmd + list(args[1:]), cwd=cwd, timeout=timeout, check=check, **env)


def sigkill_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 600) -> None:
    """Poll ``ready()`` while ``proc`` runs, then SIGKILL it and reap it (it is killed in any case)
    and check that it died of the signal."""
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, 'the process ended before reaching the kill point'
            assert time.monotonic() < deadline, 'the process did not reach the kill point'
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL


def make_toy_data(task: str, out, num_train: int = 8, num_val: int = 4, image_size: int = 64) -> Path:
    """A small toy dataset (``sdt_dense.toy_data``, as ``tools/misc/make_toy_data.py`` writes)."""
    from sdt_dense.toy_data import make_det_dataset, make_seg_dataset

    make = make_det_dataset if task == 'det' else make_seg_dataset
    make(out, num_train=num_train, num_val=num_val, image_size=image_size, seed=0)
    return Path(out)


def run_ok(cmd: Sequence, cwd=REPO, timeout: float = 600, **env: str) -> str:
    """:func:`run` that must succeed; returns stdout and stderr together."""
    proc = run(cmd, cwd=cwd, timeout=timeout, check=True, **env)
    return proc.stdout + proc.stderr


# ---------------------------------------------------------------------------------------------
# Detectors: where the declared feature strides live


def dense_head(model: nn.Module) -> nn.Module:
    """The anchor head of a detector: ``rpn_head`` (two-stage) or ``bbox_head`` (one-stage)."""
    return model.rpn_head if hasattr(model, 'rpn_head') else model.bbox_head


def roi_extractors(model: nn.Module) -> List[nn.Module]:
    """Every RoI extractor of a detector's ``roi_head`` (cascade stages included)."""
    roi = getattr(model, 'roi_head', None)
    out: List[nn.Module] = []
    for name in ('bbox_roi_extractor', 'mask_roi_extractor'):
        ext = getattr(roi, name, None) if roi is not None else None
        out += list(ext) if isinstance(ext, nn.ModuleList) else [ext] if ext is not None else []
    return out


def true_pyramid_strides(model: nn.Module, size: int = 64) -> dict:
    """Measured strides of a detector's backbone and neck outputs on a ``(1, C, size, size)``
    zero input (``size`` divisible by every stride), next to the declared ones: the backbone's
    ``out_strides``, the anchor generator's strides and each RoI extractor's
    ``featmap_strides``."""
    in_channels = model.backbone.downsamples[0].conv.in_channels
    with torch.no_grad():
        feats = model.backbone(torch.zeros(1, in_channels, size, size))
        outs = model.neck(feats)
    for f in (*feats, *outs):
        assert size % f.shape[-1] == 0, f'{size} is not divisible by a stride ({f.shape})'
    return dict(
        backbone=[size // f.shape[-1] for f in feats],
        backbone_channels=[f.shape[1] for f in feats],
        neck=[size // f.shape[-1] for f in outs],
        declared_backbone=list(model.backbone.out_strides),
        anchors=[s[0] for s in dense_head(model).prior_generator.strides],
        roi=[list(e.featmap_strides) for e in roi_extractors(model)],
    )
