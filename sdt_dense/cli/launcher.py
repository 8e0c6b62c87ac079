"""What tools/train.py, tools/test.py and the analysis tools share: argument parsing, config
loading, toolbox scope, CPU distributed set-up and teardown, runner building and metric files.

The toolbox is chosen by the config's ``default_scope`` (``'mmdet'`` or ``'mmseg'``). Without GPUs,
``--launcher pytorch`` runs CPU processes over the gloo backend.
"""

import datetime
import gc
import json
import os
import os.path as osp

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

DDP_WRAPPERS = ('MMDistributedDataParallel', 'DistributedDataParallel')


def add_common_args(parser):
    """Options shared by tools/train.py and tools/test.py."""
    parser.add_argument('--work-dir', help='the dir to save logs, checkpoints and metrics')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.',
    )
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher (without GPUs only "pytorch" is supported, over gloo)',
    )
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or --local_rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args):
    """Read the config, apply --cfg-options and --launcher, and settle ``work_dir``
    (CLI > config > ./work_dirs/<config name>)."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def slurm_env_to_torch_env(default_port: int = 29500) -> None:
    """Translate Slurm's task variables into the ``env://`` rendezvous variables.

    ``SLURM_PROCID`` -> ``RANK``, ``SLURM_NTASKS`` -> ``WORLD_SIZE``, ``SLURM_LOCALID`` ->
    ``LOCAL_RANK``; ``MASTER_ADDR`` defaults to the first host of ``SLURM_NODELIST`` (through
    ``scontrol``), or to 127.0.0.1 on a one-node job only, ``MASTER_PORT`` to ``PORT`` or
    ``default_port``. Variables that are already set are kept.

    Raises:
        RuntimeError: a job over several nodes whose first host ``scontrol`` cannot name: the
            processes of the other nodes would wait for a master on their own 127.0.0.1.
    """
    import subprocess

    env = os.environ
    env.setdefault('RANK', env['SLURM_PROCID'])
    env.setdefault('WORLD_SIZE', env['SLURM_NTASKS'])
    env.setdefault('LOCAL_RANK', env.get('SLURM_LOCALID', '0'))
    if 'MASTER_ADDR' not in env:
        addr = None
        nodes = env.get('SLURM_NODELIST')
        error = 'SLURM_NODELIST is not set'
        if nodes:
            try:
                addr = subprocess.run(
                    ['scontrol', 'show', 'hostname', nodes], check=True, capture_output=True, text=True
                ).stdout.split()[0]
            except (OSError, subprocess.CalledProcessError, IndexError) as err:
                error = f'`scontrol show hostname {nodes}` failed ({type(err).__name__}: {err})'
        if addr is None:
            if slurm_num_nodes() > 1:
                raise RuntimeError(
                    f'--launcher slurm: a job over {slurm_num_nodes()} nodes needs the address of '
                    f'its first node, but {error}. Set MASTER_ADDR (and MASTER_PORT) to that '
                    'node, or make scontrol available to the job.'
                )
            addr = '127.0.0.1'  # one node: every process is on this host
        env['MASTER_ADDR'] = addr
    env.setdefault('MASTER_PORT', env.get('PORT', str(default_port)))


def slurm_num_nodes() -> int:
    """Nodes of the Slurm job: ``SLURM_NNODES`` / ``SLURM_JOB_NUM_NODES``, else from the shape of
    ``SLURM_NODELIST`` (a compressed list ``n[1-2]`` or several names count as several)."""
    for key in ('SLURM_NNODES', 'SLURM_JOB_NUM_NODES'):
        if os.environ.get(key, '').isdigit():
            return int(os.environ[key])
    nodes = os.environ.get('SLURM_NODELIST', '')
    return 2 if any(c in nodes for c in ',[') else 1


def setup_cpu_distributed(cfg):
    """Make ``--launcher pytorch`` and ``--launcher slurm`` work without GPUs (gloo, CPU DDP).

    mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and its DDP wrapper passes
    ``device_ids=[LOCAL_RANK]``; both fail without a GPU. So the gloo process group is created here
    (the Runner then skips ``init_dist``) and the DDP wrapper gets ``device_ids=None``.
    """
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    if cfg.launcher == 'slurm':
        slurm_env_to_torch_env()
    elif cfg.launcher != 'pytorch':
        raise SystemExit(
            f'no GPU: --launcher {cfg.launcher} is not supported on CPU, use '
            '--launcher pytorch (tools/dist_train.sh) or slurm'
        )
    if cfg.get('env_cfg', None) is None:
        cfg.env_cfg = ConfigDict()
    timeout = cfg.env_cfg.get('dist_cfg', {}).get('timeout', 1800)
    cfg.env_cfg.dist_cfg = dict(backend='gloo', timeout=timeout)
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo', timeout=datetime.timedelta(seconds=timeout))
    wrapper = cfg.get('model_wrapper_cfg', None)
    if wrapper is None:
        cfg.model_wrapper_cfg = dict(  # sdt_dense.engine: device_ids=None, SyncBN over gloo
            type='CPUDistributedDataParallel',
            broadcast_buffers=False,
            device_ids=None,
            find_unused_parameters=cfg.get('find_unused_parameters', False),
        )
    elif wrapper.get('type', 'MMDistributedDataParallel') in DDP_WRAPPERS:
        wrapper.setdefault('device_ids', None)


def shutdown_distributed():
    """Tear the process group down once every rank has finished (after a successful run; the
    caller has dropped its runner, whose DDP wrapper holds the group).

    Left to interpreter exit, gloo's background threads can be destroyed while still joinable
    ("terminate called without an active exception"): a rank then dies with SIGABRT after its
    work is done and torchrun reports the whole job as failed.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        gc.collect()  # the runner and its DDP reducer sit in reference cycles
        torch_dist.barrier()
        torch_dist.destroy_process_group()


def build_runner(cfg):
    """``Runner.from_cfg``, or the registered ``runner_type`` when the config names one."""
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if runner.distributed:
        runner.logger.info(f'World size: {runner.world_size} (backend: {torch_dist.get_backend()})')
    return runner


def to_jsonable(obj):
    """Metrics as plain JSON types (numpy/torch scalars and arrays become floats and lists)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, 'tolist'):  # numpy / torch
        return obj.tolist()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def write_metrics(metrics, work_dir):
    """Write ``metrics`` to ``<work_dir>/metrics.json`` and return the path."""
    from ..engine.atomic_io import atomic_write

    path = osp.join(work_dir, 'metrics.json')
    atomic_write(json.dumps(to_jsonable(metrics), indent=2, sort_keys=True), path)
    return path


def set_local_rank(args) -> None:
    """torchrun sets ``LOCAL_RANK``; ``torch.distributed.launch`` passes ``--local-rank``."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
