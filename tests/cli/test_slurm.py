"""tools/slurm_train.sh and tools/slurm_test.sh: upstream mmdet's interface, run through a stand-in
``srun`` that checks its arguments and runs the command as Slurm task 0 of 1 (CPU, gloo)."""

import json
import os
import stat
import textwrap

import pytest

from sdt_testing import PYTHON, REPO, free_port, run_tool
from sdt_testing.toy_runner import HELPERS_MODULE, read_losses, toy_runner_cfg

# The stand-in srun: records its argument list, checks the options the scripts must pass, then runs
# the command as the single task of a one-node job.
FAKE_SRUN = textwrap.dedent(f"""\
    #!{PYTHON}
    import json, os, sys
    args = sys.argv[1:]
    with open(os.environ['SRUN_RECORD'], 'a') as f:
        f.write(json.dumps(args) + '\\n')
    opts, i = {{}}, 0
    while args[i].startswith('-'):
        if args[i] == '-p':
            opts['-p'] = args[i + 1]
            i += 2
        else:
            key, _, value = args[i].partition('=')
            opts[key] = value
            i += 1
    expected = json.loads(os.environ['SRUN_EXPECT'])
    for key, value in expected.items():
        if opts.get(key) != value:
            sys.exit(f'srun stand-in: {{key}}={{opts.get(key)!r}}, expected {{value!r}}')
    if os.environ.get('SRUN_DRY_RUN'):
        sys.exit(0)
    os.environ.update(SLURM_PROCID='0', SLURM_NTASKS=opts['--ntasks'], SLURM_LOCALID='0',
                      SLURM_NODELIST='localhost')
    os.execvp(args[i], args[i:])
    """)


@pytest.fixture
def fake_srun(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    srun = bin_dir / 'srun'
    srun.write_text(FAKE_SRUN)
    srun.chmod(srun.stat().st_mode | stat.S_IEXEC)
    record = tmp_path / 'srun.jsonl'
    expect = {
        '-p': 'cpu-part',
        '--job-name': 'toyjob',
        '--gres': 'gpu:1',
        '--ntasks': '1',
        '--ntasks-per-node': '1',
        '--cpus-per-task': '2',
        '--kill-on-bad-exit': '1',
        '--time': '5',
    }
    env = dict(
        PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}',
        SRUN_RECORD=str(record),
        SRUN_EXPECT=json.dumps(expect),
        GPUS='1',
        GPUS_PER_NODE='1',
        CPUS_PER_TASK='2',
        SRUN_ARGS='--time=5',
        PORT=str(free_port()),
    )
    return env, record


def _toy_config(tmp_path):
    cfg = toy_runner_cfg('unused', max_iters=4, interval=2)
    cfg.pop('work_dir')
    cfg.update(
        default_scope='mmdet',
        custom_imports=dict(imports=['sdt_dense', HELPERS_MODULE], allow_failed_imports=False),
    )
    path = tmp_path / 'toy_slurm.py'
    path.write_text(''.join(f'{k} = {v!r}\n' for k, v in cfg.items()))
    return path


@pytest.mark.slow
def test_slurm_train_runs_the_training_as_a_slurm_task(tmp_path, fake_srun):
    env, record = fake_srun
    config, work = _toy_config(tmp_path), tmp_path / 'work'
    proc = run_tool(
        ['slurm_train.sh', 'cpu-part', 'toyjob', config, work, '--cfg-options', 'train_cfg.max_iters=4'],
        **env,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    args = json.loads(record.read_text().splitlines()[0])
    command = args[args.index('-u') - 1 :]
    assert command[1:] == [
        '-u',
        str(REPO / 'tools' / 'train.py'),
        str(config),
        f'--work-dir={work}',
        '--cfg-options',
        'train_cfg.max_iters=4',
        '--launcher=slurm',
    ]
    assert (work / 'iter_4.pth').is_file()
    assert sorted(read_losses(work)) == [1, 2, 3, 4]


def test_slurm_test_passes_config_checkpoint_and_options(tmp_path, fake_srun):
    env, record = fake_srun
    proc = run_tool(
        ['slurm_test.sh', 'cpu-part', 'toyjob', 'cfg.py', 'ckpt.pth', '--out', 'r.pkl'],
        SRUN_DRY_RUN='1',
        **env,
    )
    assert proc.returncode == 0, proc.stderr
    args = json.loads(record.read_text().splitlines()[0])
    assert args[args.index('-u') + 1 :] == [
        str(REPO / 'tools' / 'test.py'),
        'cfg.py',
        'ckpt.pth',
        '--out',
        'r.pkl',
        '--launcher=slurm',
    ]


def test_slurm_scripts_print_usage(tmp_path):
    for script in ('slurm_train.sh', 'slurm_test.sh'):
        proc = run_tool([script, 'only-one-arg'])
        assert proc.returncode == 2 and 'usage: bash tools/' + script in proc.stderr


# ------------------------------------------------------------------------------------------------
# MASTER_ADDR from the node list: scontrol's answer, 127.0.0.1 only for a one-node job


def _slurm_env(monkeypatch, tmp_path, scontrol: str, **env):
    """Slurm task variables, and a stand-in ``scontrol`` (a shell script body) first on PATH."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    script = bin_dir / 'scontrol'
    script.write_text('#!/bin/sh\n' + scontrol + '\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv('PATH', f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')
    for key in (
        'MASTER_ADDR',
        'MASTER_PORT',
        'RANK',
        'WORLD_SIZE',
        'LOCAL_RANK',
        'SLURM_NNODES',
        'SLURM_JOB_NUM_NODES',
        'PORT',
    ):
        # set first, so that monkeypatch restores the variable (removes it) even if the code under
        # test sets it: slurm_env_to_torch_env writes MASTER_ADDR & co. into os.environ, which
        # must not leak into later tests that start distributed runs
        monkeypatch.setenv(key, '')
        monkeypatch.delenv(key)
    monkeypatch.setenv('SLURM_PROCID', '3')
    monkeypatch.setenv('SLURM_NTASKS', '8')
    monkeypatch.setenv('SLURM_LOCALID', '1')
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def test_slurm_master_is_the_first_host_scontrol_names(monkeypatch, tmp_path):
    from sdt_dense.cli.launcher import slurm_env_to_torch_env

    _slurm_env(
        monkeypatch, tmp_path, 'echo gpu-a17; echo gpu-a18', SLURM_NODELIST='gpu-a[17-18]', SLURM_NNODES='2'
    )
    slurm_env_to_torch_env(default_port=29511)
    assert (os.environ['MASTER_ADDR'], os.environ['MASTER_PORT']) == ('gpu-a17', '29511')
    assert (os.environ['RANK'], os.environ['WORLD_SIZE'], os.environ['LOCAL_RANK']) == ('3', '8', '1')


@pytest.mark.parametrize(
    'nodes',
    [dict(SLURM_NNODES='2'), dict(SLURM_JOB_NUM_NODES='4'), {}],
    ids=['SLURM_NNODES', 'SLURM_JOB_NUM_NODES', 'node-list'],
)
def test_slurm_multi_node_without_scontrol_stops(monkeypatch, tmp_path, nodes):
    """A failing scontrol on a multi-node job is an error naming the problem, not a rendezvous on
    127.0.0.1 that would hang the other nodes."""
    from sdt_dense.cli.launcher import slurm_env_to_torch_env

    _slurm_env(
        monkeypatch,
        tmp_path,
        'echo "scontrol: error: no controller" >&2; exit 1',
        SLURM_NODELIST='gpu-a[17-18]',
        **nodes,
    )
    with pytest.raises(
        RuntimeError,
        match='needs the address of its first node.*scontrol show '
        r'hostname gpu-a\[17-18\]. failed.*Set MASTER_ADDR',
    ):
        slurm_env_to_torch_env()
    assert 'MASTER_ADDR' not in os.environ


def test_slurm_one_node_without_scontrol_uses_localhost(monkeypatch, tmp_path):
    from sdt_dense.cli.launcher import slurm_env_to_torch_env

    _slurm_env(monkeypatch, tmp_path, 'exit 1', SLURM_NODELIST='gpu-a17', SLURM_NNODES='1')
    slurm_env_to_torch_env()
    assert os.environ['MASTER_ADDR'] == '127.0.0.1'


def test_slurm_master_addr_set_by_the_user_is_kept(monkeypatch, tmp_path):
    from sdt_dense.cli.launcher import slurm_env_to_torch_env

    _slurm_env(
        monkeypatch,
        tmp_path,
        'exit 1',
        SLURM_NODELIST='gpu-a[17-18]',
        SLURM_NNODES='2',
        MASTER_ADDR='10.0.0.5',
    )
    slurm_env_to_torch_env()
    assert os.environ['MASTER_ADDR'] == '10.0.0.5'
