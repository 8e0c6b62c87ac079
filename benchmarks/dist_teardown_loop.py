"""Run the 2-process CPU train/test pair (``tools/dist_train.sh`` then ``tools/dist_test.sh``, gloo)
on the toy detector many times in a row and count the runs whose processes did not all exit
cleanly -- in particular a rank dying of SIGABRT at gloo teardown ("terminate called without an
active exception"), seen once before ``shutdown_distributed`` joined the ranks before tearing gloo
down.

    python benchmarks/dist_teardown_loop.py --runs 50 --out benchmarks/results/dist_teardown_cpu.json

Each failed command's output is kept in ``--log-dir``. The JSON holds ``runs`` (pairs finished),
``clean`` (pairs where both commands exited 0), ``sigabrt`` (commands where torchrun reported a rank
with exit code -6), ``other_failures``, per-command wall times and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(cmd, env, timeout):
    """Run ``cmd`` in its own process group. On timeout, SIGTERM the group: torchrun then stops its
    ranks (they run in sessions of their own, out of reach of the group) before exiting; SIGKILL
    whatever is left after 30 s."""
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        log, _ = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            log, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            log, _ = proc.communicate()
        rc, log = 'timeout', f'timed out after {timeout} s: {" ".join(cmd)}\n{log}'
    return rc, log, time.monotonic() - start


def _test_helpers():
    """``tests/sdt_testing`` (the tests' helper package, not installed), loaded from its path."""
    import importlib.util

    root = REPO / 'tests' / 'sdt_testing'
    spec = importlib.util.spec_from_file_location(
        'sdt_testing', root / '__init__.py', submodule_search_locations=[str(root)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules['sdt_testing'] = module
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--runs', type=int, default=50, help='train/test pairs to run')
    parser.add_argument(
        '--max-minutes',
        type=float,
        default=None,
        help='stop starting new pairs after this long (report the count so far)',
    )
    parser.add_argument('--timeout', type=float, default=900, help='seconds per command')
    parser.add_argument('--out', default=None, help='write the results as JSON to this file')
    parser.add_argument(
        '--log-dir',
        default='work_dirs/dist_teardown_loop',
        help='where the output of failed commands is kept',
    )
    args = parser.parse_args(argv)

    # the pair is that of tests/cli/test_distributed.py: the same config, from the same helper
    from sdt_dense.toy_data import make_det_dataset

    testing = _test_helpers()
    free_port, toy_dist_config = testing.free_port, testing.toy_dist_config

    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    env['PYTHONPATH'] = os.pathsep.join([str(REPO)] + [p for p in [env.get('PYTHONPATH')] if p])
    result = dict(
        runs=0,
        clean=0,
        sigabrt=0,
        other_failures=0,
        failures=[],
        train_s=[],
        test_s=[],
        machine=dict(
            platform=platform.platform(),
            cpus=os.cpu_count(),
            python=platform.python_version(),
            load_avg_1min_start=os.getloadavg()[0],
        ),
    )
    begin = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / 'toy_coco'
        make_det_dataset(data, num_train=4, num_val=2, image_size=64, seed=0)
        cfg = toy_dist_config(root, data)
        for i in range(args.runs):
            if args.max_minutes is not None and time.monotonic() - begin > 60 * args.max_minutes:
                break
            work = root / f'work{i}'
            train = ['bash', str(REPO / 'tools/dist_train.sh'), str(cfg), '2', '--work-dir', str(work)]
            test = [
                'bash',
                str(REPO / 'tools/dist_test.sh'),
                str(cfg),
                str(work / 'epoch_1.pth'),
                '2',
                '--work-dir',
                str(work / 'test'),
            ]
            clean = True
            for name, cmd in (('train', train), ('test', test)):
                rc, log, secs = _run(cmd, dict(env, PORT=str(free_port())), args.timeout)
                result[f'{name}_s'].append(round(secs, 1))
                if rc == 0:
                    continue
                clean = False
                abort = bool(re.search(r'exitcode\s*: -6\b', log)) or 'SIGABRT' in log
                result['sigabrt' if abort else 'other_failures'] += 1
                path = log_dir / f'run{i}_{name}.log'
                path.write_text(log)
                result['failures'].append(
                    dict(run=i, command=name, returncode=rc, sigabrt=abort, log=str(path))
                )
                break  # no checkpoint to test after a failed training
            result['runs'] += 1
            result['clean'] += int(clean)
            print(
                f'run {i + 1}: {"clean" if clean else "FAILED"} '
                f'({result["clean"]}/{result["runs"]} clean, train {result["train_s"][-1]} s)',
                flush=True,
            )
    result['minutes'] = round((time.monotonic() - begin) / 60, 1)
    result['machine']['load_avg_1min_end'] = os.getloadavg()[0]
    print(json.dumps({k: v for k, v in result.items() if k not in ('train_s', 'test_s')}))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + '\n')
    return result


if __name__ == '__main__':
    main()
