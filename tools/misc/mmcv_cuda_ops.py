#!/usr/bin/env python
"""Which of mmcv's compiled ops this project's configs reach, and a compile check of their CUDA
sources (no GPU needed).

    python tools/misc/mmcv_cuda_ops.py                       # list: config -> mmcv.ops modules
    python tools/misc/mmcv_cuda_ops.py --compile DIR [--jobs N] [--timeout S]

The derivation builds every config's model (``configs/**/*.py`` except ``_base_``) on CPU and
collects, from the built modules:

1. modules that are instances of an mmcv.ops class (e.g. RoIAlign inside the RoI extractors);
2. the ``nms=dict(type=...)`` settings of ``test_cfg``/``train_cfg``: mmcv's ``batched_nms`` resolves
   that name in ``mmcv.ops.nms``;
3. the calls into mmcv.ops that no module attribute shows, listed in :data:`INDIRECT` (each entry
   names the module-level name through which mmdet reaches the op; the tests check that it still
   is mmcv's function).

``--compile`` captures the full CUDA build's ``build.ninja`` (``tools/build_mmcv_cuda.sh ninja``:
the flags of the real build, for the archs in ``TORCH_CUDA_ARCH_LIST``, default 9.0) and compiles,
to object files, the CUDA sources of those ops, ``csrc/pytorch/cuda/<op>_cuda.cu``, plus
``cuda/cudabind.cpp`` (the CUDA launchers' registration). Exit status 1 when one fails to compile.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Sequence, Set

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class IndirectUse:
    """An mmdet/mmseg class that calls an mmcv op without holding an mmcv.ops module."""

    cls: str  #: the class whose instances make the call, ``package.module.Class``
    via: str  #: the module-level name through which it calls, ``package.module.name``
    target: str  #: the mmcv function that name is, ``mmcv.ops.<op module>.<function>``
    why: str

    @property
    def op(self) -> str:
        """The mmcv.ops module of the target, e.g. ``'mmcv.ops.focal_loss'``."""
        return self.target.rpartition('.')[0]


INDIRECT: List[IndirectUse] = [
    IndirectUse(
        'mmdet.models.losses.FocalLoss',
        'mmdet.models.losses.focal_loss._sigmoid_focal_loss',
        'mmcv.ops.focal_loss.sigmoid_focal_loss',
        'FocalLoss.forward calls the compiled sigmoid focal loss for CUDA tensors (a Python version on CPU)',
    ),
    IndirectUse(
        'mmdet.models.roi_heads.mask_heads.FCNMaskHead',
        'mmdet.structures.mask.structures.roi_align',
        'mmcv.ops.roi_align.roi_align',
        'mask targets: BitmapMasks.crop_and_resize crops the ground-truth masks with roi_align',
    ),
]

#: compiled for every op set: the registration of every CUDA launcher (CUDA-only code). The ops'
#: dispatchers (``pytorch/<op>.cpp``) and ``pybind.cpp`` have no CUDA-dependent code (no
#: ``MMCV_WITH_CUDA`` branch) and compile the same in the CPU build.
COMMON_SOURCES = ('mmcv/ops/csrc/pytorch/cuda/cudabind.cpp',)


def _resolve(dotted: str) -> Any:
    """``package.module.attr`` -> the attribute."""
    module, _, attr = dotted.rpartition('.')
    return getattr(importlib.import_module(module), attr)


def runnable_configs() -> List[Path]:
    """Every config of configs/ that can be trained or tested (``_base_`` files are fragments)."""
    return sorted(p for p in (REPO / 'configs').rglob('*.py') if '_base_' not in p.parts)


def _nms_types(node: Any) -> Iterable[str]:
    """The ``type`` of every ``nms=dict(...)`` in a (nested) config."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'nms' and isinstance(value, dict) and 'type' in value:
                yield value['type']
            yield from _nms_types(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _nms_types(value)


def ops_of_model(model: Any, model_cfg: Dict[str, Any]) -> Set[str]:
    """The mmcv.ops modules (``'mmcv.ops.roi_align'``, ...) a built model reaches.

    Args:
        model: the built ``nn.Module``.
        model_cfg: its config dict (for the NMS settings, which only the config holds).
    """
    mmcv_nms = importlib.import_module('mmcv.ops.nms')  # `mmcv.ops.nms` as an attribute is the function
    ops: Set[str] = set()
    for m in model.modules():
        if type(m).__module__.startswith('mmcv.ops.'):
            ops.add(type(m).__module__)
    for use in INDIRECT:
        if isinstance(model, _resolve(use.cls)) or any(
            isinstance(m, _resolve(use.cls)) for m in model.modules()
        ):
            ops.add(use.op)
    for nms_type in _nms_types(model_cfg):
        if not hasattr(mmcv_nms, nms_type):
            raise ValueError(f'nms type {nms_type!r} is not a function of mmcv.ops.nms')
        ops.add('mmcv.ops.nms')
    return ops


def ops_of_config(path: Path) -> Set[str]:
    """Build the config's model on CPU (no weights loaded) and return :func:`ops_of_model`."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.utils import import_modules_from_strings

    cfg = Config.fromfile(str(path))
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model_cfg = cfg.model.to_dict() if hasattr(cfg.model, 'to_dict') else dict(cfg.model)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)  # on CPU: the backbones compute their drop-path rates eagerly
    return ops_of_model(model, model_cfg)


def ops_of_configs(paths: Sequence[Path]) -> Dict[str, List[str]]:
    """``{config path relative to the repository: sorted mmcv.ops modules}``."""
    return {str(p.relative_to(REPO)): sorted(ops_of_config(p)) for p in paths}


def cuda_sources(ops: Iterable[str], tree: Path) -> List[str]:
    """The sources (relative to the mmcv source tree) whose compilation the ops' CUDA path needs.

    Raises:
        FileNotFoundError: an op has no ``<op>_cuda.cu`` (the naming of mmcv 2.x's csrc).
    """
    sources = list(COMMON_SOURCES)
    for op in sorted(set(ops)):
        name = op.rpartition('.')[2]
        rel = f'mmcv/ops/csrc/pytorch/cuda/{name}_cuda.cu'
        if not (tree / rel).is_file():
            raise FileNotFoundError(f'{op}: no {rel} in {tree}')
        sources.append(rel)
    return sources


def ninja_objects(build_ninja: Path, sources: Sequence[str]) -> Dict[str, str]:
    """``{source: object file}`` of the given sources in a torch-written build.ninja."""
    objects: Dict[str, str] = {}
    for line in build_ninja.read_text().splitlines():
        m = re.match(r'build (\S+\.o): (?:cuda_)?compile (\S+)$', line)
        if m:
            for src in sources:
                if m.group(2).endswith('/' + src):
                    objects[src] = m.group(1)
    missing = sorted(set(sources) - set(objects))
    if missing:
        raise ValueError(f'{build_ninja} compiles none of {missing}')
    return objects


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_ninja(workdir: Path, sources: Sequence[str], jobs: int, timeout: float) -> Dict[str, Any]:
    """Compile ``sources`` (relative to the mmcv tree) with the build.ninja captured in ``workdir``.

    Returns:
        ``{'returncode', 'failed': [source], 'objects': {source: bytes of its object file},
        'seconds', 'cpu_s', 'output_tail'}``; the exit status decides (an old object file may remain).
    """
    # the captured file lives in setup.py's build folder: ninja runs there (relative depfiles)
    src_ninja = next((workdir / 'src' / 'build').glob('temp.*/build.ninja'))
    objects = ninja_objects(src_ninja, sources)
    start, cpu0 = time.monotonic(), _children_cpu_s()
    # -k 0: every source is tried, so one report names all that fail
    ninja = shutil.which('ninja') or str(Path(sys.executable).with_name('ninja'))  # venv's ninja wheel
    proc = subprocess.run(
        [ninja, '-f', str(src_ninja), '-j', str(jobs), '-k', '0', *objects.values()],
        cwd=src_ninja.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = proc.stdout + proc.stderr
    failed = [line for line in output.splitlines() if line.startswith('FAILED:')]
    return dict(
        returncode=proc.returncode,
        seconds=round(time.monotonic() - start, 1),
        cpu_s=round(_children_cpu_s() - cpu0, 1),  # the compilers' CPU time: load-independent
        failed=sorted(s for s, o in objects.items() if any(o in line for line in failed)),
        objects={s: Path(o).stat().st_size for s, o in objects.items() if Path(o).is_file()},
        output_tail=output[-6000:],
    )


def compile_sources(workdir: Path, ops: Iterable[str], jobs: int, timeout: float) -> Dict[str, Any]:
    """Capture the full build's build.ninja in ``workdir`` (a fresh copy of the fixed mmcv source
    in ``workdir/src``) and compile the ops' sources to object files.

    Returns:
        :func:`run_ninja`'s report, with the ops, sources and the capture's seconds.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    # the interpreter running this (it has the torch to build against) runs mmcv's setup.py
    subprocess.run(
        ['bash', str(REPO / 'tools' / 'build_mmcv_cuda.sh'), 'ninja', str(workdir)],
        check=True,
        timeout=timeout,
        env={**os.environ, 'PYTHON': sys.executable},
    )
    capture_s = time.monotonic() - start
    sources = cuda_sources(ops, workdir / 'src')
    report = run_ninja(workdir, sources, jobs, max(1.0, timeout - capture_s))
    return dict(
        ops=sorted(set(ops)),
        sources=sources,
        capture_s=round(capture_s, 1),
        jobs=jobs,
        cuda_arch_list=os.environ.get('TORCH_CUDA_ARCH_LIST', '9.0'),
        **report,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--compile',
        metavar='DIR',
        type=Path,
        help='compile the CUDA sources of the ops in DIR (a scratch folder)',
    )
    parser.add_argument('--jobs', type=int, default=os.cpu_count() or 2)
    parser.add_argument('--timeout', type=float, default=900, help='seconds for the whole compile')
    parser.add_argument('--json', type=Path, help='write the list (and compile report) here')
    args = parser.parse_args(argv)
    per_config = ops_of_configs(runnable_configs())
    union = sorted({op for ops in per_config.values() for op in ops})
    for cfg, ops in per_config.items():
        print(f'{cfg}: {", ".join(ops) or "-"}')
    print(f'all configs: {", ".join(union)}')
    result: Dict[str, Any] = dict(configs=per_config, ops=union)
    rc = 0
    if args.compile:
        os.environ.setdefault('TORCH_CUDA_ARCH_LIST', '9.0')
        report = compile_sources(args.compile.resolve(), union, args.jobs, args.timeout)
        result['compile'] = report
        print(report['output_tail'])
        for src in report['sources']:
            ok = src not in report['failed'] and report['returncode'] == 0
            size = f' ({report["objects"][src]} bytes)' if ok else ''
            print(f'  {"ok    " if ok else "FAILED"} {src}{size}')
        print(
            f'captured build.ninja in {report["capture_s"]} s; compiled {len(report["sources"])} sources '
            f'in {report["seconds"]} s with {report["jobs"]} jobs, {report["cpu_s"]} CPU s '
            f'(ninja exit {report["returncode"]})'
        )
        rc = 0 if report['returncode'] == 0 else 1
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + '\n')
    return rc


if __name__ == '__main__':
    sys.exit(main())
