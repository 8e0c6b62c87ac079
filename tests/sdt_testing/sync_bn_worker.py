"""Worker of test_cpu_sync_bn (kept free of heavy imports: spawned processes import only this,
torch and mmengine; cpu_sync_bn.py is loaded by path without importing the sdt_dense package)."""

import importlib.util
import os
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

WORLD, C = 2, 3
WEIGHT, BIAS = [1.5, 0.5, -1.0], [0.1, 0.2, 0.3]


def load_cpu_sync_bn():
    path = Path(__file__).resolve().parents[2] / 'sdt_dense' / 'engine' / 'cpu_sync_bn.py'
    spec = importlib.util.spec_from_file_location('_cpu_sync_bn_under_test', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2 * WORLD, C, 5, 4, generator=g) * 3 + 1
    upstream = torch.randn(2 * WORLD, C, 5, 4, generator=g)  # dL/dy
    return x, upstream


def worker(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=WORLD)
    try:
        mod = load_cpu_sync_bn()
        x, upstream = data()
        bn = mod.convert_gloo_sync_batchnorm(nn.Sequential(nn.SyncBatchNorm(C, momentum=0.3)))[0]
        with torch.no_grad():
            bn.weight.copy_(torch.tensor(WEIGHT))
            bn.bias.copy_(torch.tensor(BIAS))
        xs = x[rank * 2 : (rank + 1) * 2].clone().requires_grad_(True)
        y = bn(xs)
        (y * upstream[rank * 2 : (rank + 1) * 2]).sum().backward()
        torch.save(
            dict(
                type=type(bn).__name__,
                y=y.detach(),
                gx=xs.grad,
                gw=bn.weight.grad,
                gb=bn.bias.grad,
                rm=bn.running_mean,
                rv=bn.running_var,
            ),
            os.path.join(out_dir, f'rank{rank}.pth'),
        )
        # Both ranks finish their collectives before either tears gloo down: a rank that closes
        # its pairs while the other is still reading makes gloo abort (SIGABRT, seen once in CI).
        dist.barrier()
    finally:
        dist.destroy_process_group()
