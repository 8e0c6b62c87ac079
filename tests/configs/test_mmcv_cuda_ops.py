"""Which mmcv ops the configs reach (tools/misc/mmcv_cuda_ops.py), and the CI check that their CUDA
sources compile for sm_90 with the full build's flags, on a machine without GPU or CUDA toolkit."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdt_testing import PYTHON, REPO

sys.path.insert(0, str(REPO / 'tools' / 'misc'))
import mmcv_cuda_ops as ops_tool  # noqa: E402

NMS, ROI_ALIGN, FOCAL = 'mmcv.ops.nms', 'mmcv.ops.roi_align', 'mmcv.ops.focal_loss'


def expected_ops(config: str) -> set:
    """Derived by hand from the configs' model types: two-stage detectors pool RoIs (RoIAlign) and
    crop mask targets (Mask R-CNN, Cascade); RPN and the detectors' test_cfg use NMS; RetinaNet's
    classification loss is the sigmoid focal loss; segmentors and the MAE pre-training use none."""
    name = Path(config).name
    if name.startswith(('mask-rcnn', 'cascade-mask-rcnn', 'faster-rcnn', 'mask_rcnn')):
        return {NMS, ROI_ALIGN}
    if name.startswith('retinanet'):
        return {NMS, FOCAL}
    if name.startswith(('fpn_', 'spike-mae')):
        return set()
    raise AssertionError(f'{config}: no hand-derived expectation; add one')


def test_indirect_uses_are_still_mmcv_functions():
    """Each INDIRECT entry: the name mmdet calls through is mmcv.ops' own function, and the class
    that makes the call exists (an mmdet upgrade that drops either fails here)."""
    assert {use.op for use in ops_tool.INDIRECT} == {FOCAL, ROI_ALIGN}
    for use in ops_tool.INDIRECT:
        assert ops_tool._resolve(use.via) is ops_tool._resolve(use.target), use
        assert use.target.startswith(use.op + '.')
        assert isinstance(ops_tool._resolve(use.cls), type), use


def test_cuda_sources_follow_the_op_names(tmp_path):
    """<op>_cuda.cu of each op, plus the launchers' registration; an op without a CUDA source is
    an error, not a silently shorter list."""
    for rel in ('cuda/nms_cuda.cu', 'nms.cpp', 'cuda/roi_align_cuda.cu', 'roi_align.cpp'):
        (tmp_path / 'mmcv/ops/csrc/pytorch' / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / 'mmcv/ops/csrc/pytorch' / rel).touch()
    assert ops_tool.cuda_sources([ROI_ALIGN, NMS, NMS], tmp_path) == [
        'mmcv/ops/csrc/pytorch/cuda/cudabind.cpp',
        'mmcv/ops/csrc/pytorch/cuda/nms_cuda.cu',
        'mmcv/ops/csrc/pytorch/cuda/roi_align_cuda.cu',
    ]
    with pytest.raises(FileNotFoundError, match='focal_loss_cuda.cu'):
        ops_tool.cuda_sources([FOCAL], tmp_path)


def test_ninja_objects_reads_torch_build_file(tmp_path):
    ninja = tmp_path / 'build.ninja'
    ninja.write_text(
        'build /b/x/cuda/nms_cuda.o: cuda_compile /s/mmcv/ops/csrc/pytorch/cuda/nms_cuda.cu\n'
        'build /b/x/nms.o: compile /s/mmcv/ops/csrc/pytorch/nms.cpp\n'
    )
    assert ops_tool.ninja_objects(
        ninja, ['mmcv/ops/csrc/pytorch/cuda/nms_cuda.cu', 'mmcv/ops/csrc/pytorch/nms.cpp']
    ) == {
        'mmcv/ops/csrc/pytorch/cuda/nms_cuda.cu': '/b/x/cuda/nms_cuda.o',
        'mmcv/ops/csrc/pytorch/nms.cpp': '/b/x/nms.o',
    }
    with pytest.raises(ValueError, match='focal_loss'):
        ops_tool.ninja_objects(ninja, ['mmcv/ops/csrc/pytorch/focal_loss.cpp'])


@pytest.mark.slow
def test_every_config_reaches_the_hand_derived_ops():
    """Builds every runnable config's model (on CPU) and compares the mmcv ops found
    with the hand derivation; the union is what CI compiles for CUDA."""
    configs = ops_tool.runnable_configs()
    assert len(configs) > 20
    found = ops_tool.ops_of_configs(configs)
    for config, ops in found.items():
        assert set(ops) == expected_ops(config), config
    assert {op for ops in found.values() for op in ops} == {NMS, ROI_ALIGN, FOCAL}


needs_cuda_torch = pytest.mark.skipif(
    importlib.import_module('torch').version.cuda is None,
    reason='a CPU-only torch build has no CUDA libraries to build an extension against',
)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@needs_cuda_torch
def test_cuda_sources_of_the_configs_ops_compile(tmp_path):
    """The CI compile check: nvcc and headers from PyPI (cached), the full build's build.ninja, the
    CUDA sources of RoIAlign, NMS and the focal loss and the launchers' registration compiled for
    sm_90. Then one source is broken and the check must fail on it."""
    report_file = tmp_path / 'report.json'
    proc = subprocess.run(
        [
            str(PYTHON),
            str(REPO / 'tools' / 'misc' / 'mmcv_cuda_ops.py'),
            '--compile',
            str(tmp_path / 'build'),
            '--timeout',
            '1500',
            '--json',
            str(report_file),
        ],
        capture_output=True,
        text=True,
        timeout=1700,
        env={**os.environ, 'TORCH_CUDA_ARCH_LIST': '9.0'},
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    report = json.loads(report_file.read_text())['compile']
    assert sorted(report['sources']) == [
        'mmcv/ops/csrc/pytorch/cuda/cudabind.cpp',
        'mmcv/ops/csrc/pytorch/cuda/focal_loss_cuda.cu',
        'mmcv/ops/csrc/pytorch/cuda/nms_cuda.cu',
        'mmcv/ops/csrc/pytorch/cuda/roi_align_cuda.cu',
    ]
    assert report['failed'] == [] and set(report['objects']) == set(report['sources'])
    build_ninja = (tmp_path / 'build' / 'build.ninja').read_text()
    # the full build's own flags: C++20 (the fix), sm_90 machine code, torch's CUDA defines
    assert '-gencode=arch=compute_90,code=sm_90' in build_ninja
    assert '-std=c++20' in build_ninja and '-std=c++17' not in build_ninja
    assert '-DMMCV_WITH_CUDA' in build_ninja

    broken = tmp_path / 'build' / 'src' / 'mmcv' / 'ops' / 'csrc' / 'pytorch' / 'cuda' / 'nms_cuda.cu'
    broken.write_text('#error sdt-dense: a source that stopped compiling\n' + broken.read_text())
    again = ops_tool.run_ninja(tmp_path / 'build', report['sources'], jobs=2, timeout=600)
    assert again['returncode'] != 0
    assert again['failed'] == ['mmcv/ops/csrc/pytorch/cuda/nms_cuda.cu']
    assert 'a source that stopped compiling' in again['output_tail']
