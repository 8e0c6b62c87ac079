"""Backbone training memory of the production SFA neuron (saves a 1-byte window mask for backward)
versus the published implementation's choice of saving the float input (4 bytes per element).

The float-saving neuron below is a benchmark-only reference, not a second quantiser: its forward is
the production ``sfa_quantise``; only what autograd keeps differs (``x`` itself, the STE window is
recomputed from it in backward). The script first checks that both give bit-identical outputs and
gradients, then measures forward + backward of an E-SpikeFormer backbone (the four dense outputs,
``out_indices=(1, 2, 3, 4)``, as detection uses it) in fresh subprocesses, alternating the two.

Examples::

    python benchmarks/neuron_memory.py                     # CUDA if available: arch m, 224 px
    python benchmarks/neuron_memory.py --device cpu --threads 1 --arch s --img-size 128
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
from typing import Optional

import torch
from _common import (
    PeakMemory,
    add_common_args,
    alternating_runs,
    begin_driver,
    emit_result,
    measure_steps,
    per_round_ratios,
    print_table,
    record_load,
    saved_for_backward_mb,
    setup_worker,
    summarise,
    worker_argv,
    write_json,
)
from torch import Tensor, nn

CONFIGS = ('mask', 'float')


def _float_saving_neuron_cls():
    """Defined lazily so the parent process can run without importing sdt_dense first."""
    from sdt_dense.models.neurons import SFANeuron, sfa_quantise

    class _FloatSavingSFAQuantise(torch.autograd.Function):
        """Production SFA forward; saves the float input ``x`` and recomputes the clipped-STE
        window ``0 <= x <= D`` in backward (what the published ``Quant`` does)."""

        @staticmethod
        def forward(ctx, x: Tensor, D: int, norm: float, rounding: str, ceiling: int) -> Tensor:
            out = sfa_quantise(x.detach(), D, norm, rounding, ceiling)
            ctx.save_for_backward(x)
            ctx.D, ctx.norm = D, norm
            return out

        @staticmethod
        def backward(ctx, grad_out: Tensor):
            (x,) = ctx.saved_tensors
            grad_in = grad_out * ((x >= 0) & (x <= ctx.D))
            return grad_in / ctx.norm, None, None, None, None

    class FloatSavingSFANeuron(SFANeuron):
        """Benchmark reference: :class:`SFANeuron` whose autograd context holds the float input."""

        def forward(self, x: Tensor) -> Tensor:
            if self.spike_driven:
                return super().forward(x)
            return _FloatSavingSFAQuantise.apply(x, self.D, self.norm, self.rounding, self.ceiling)

    return SFANeuron, FloatSavingSFANeuron


def use_float_saving_neurons(model: nn.Module) -> int:
    """Replace every production SFA neuron of ``model`` in place; return how many were replaced."""
    SFANeuron, FloatSavingSFANeuron = _float_saving_neuron_cls()
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is SFANeuron:
                setattr(
                    parent,
                    name,
                    FloatSavingSFANeuron(child.D, child.norm, child.rounding, child.eval_ceiling),
                )
                count += 1
    if not count:
        raise RuntimeError(f'{type(model).__name__} has no SFANeuron to replace')
    return count


def build_backbone(config: str, args: argparse.Namespace, device: torch.device) -> nn.Module:
    from sdt_dense.models import ESpikeFormer

    model = ESpikeFormer(args.arch, out_indices=(1, 2, 3, 4))
    if config == 'float':
        use_float_saving_neurons(model)
    elif config != 'mask':
        raise ValueError(f'unknown config {config!r}; valid: {CONFIGS}')
    return model.to(device).train()


def check_equivalence(device: torch.device, seed: int = 0) -> None:
    """Both neurons must give the same outputs and gradients (tiny arch, 64 px)."""
    from sdt_dense.models import ESpikeFormer

    torch.manual_seed(seed)
    ref = ESpikeFormer('t', out_indices=(1, 2, 3, 4)).to(device).train()
    other = copy.deepcopy(ref)
    n = use_float_saving_neurons(other)
    x = torch.randn(2, 3, 64, 64, device=device)
    grads = []
    for model in (ref, other):
        xi = x.clone().requires_grad_()
        outs = model(xi)
        sum((o * torch.linspace(-1, 1, o.numel(), device=device).view_as(o)).sum() for o in outs).backward()
        grads.append((outs, xi.grad, [p.grad for p in model.parameters()]))
    (o1, g1, p1), (o2, g2, p2) = grads
    same = (
        all(torch.equal(a, b) for a, b in zip(o1, o2))
        and torch.equal(g1, g2)
        and all(torch.equal(a, b) for a, b in zip(p1, p2))
    )
    if not same:
        raise RuntimeError(
            'float-saving reference neuron does not reproduce the production SFA '
            'neuron; the comparison would be meaningless'
        )
    print(f'equivalence check: {n} neurons replaced, outputs and gradients bit-identical')


def worker(args: argparse.Namespace) -> None:
    device = setup_worker(args)
    model = build_backbone(args.worker, args, device)
    images = torch.randn(args.batch_size, 3, args.img_size, args.img_size, device=device)

    def step(x: torch.Tensor = images) -> None:
        model.zero_grad(set_to_none=True)
        outs = model(x)
        sum(o.square().mean() for o in outs).backward()

    # A tiny step first loads lazily initialised kernels and libraries. The baseline is taken
    # before the first real step (a CPU process keeps freed memory resident, so a later baseline
    # would hide the peak); the peak above it is what autograd holds for backward, plus the
    # gradient buffers, which are the same for both neurons.
    step(images[:1, :, :32, :32])
    model.zero_grad(set_to_none=True)
    meter = PeakMemory(device)
    meter.start()
    times = measure_steps(step, device, args.warmup, args.steps)
    memory = meter.stop()
    saved_mb = saved_for_backward_mb(lambda: model(images), model.parameters())
    emit_result(
        dict(config=args.worker, step_s=times['wall'], step_cpu_s=times['cpu'], saved_mb=saved_mb, **memory)
    )


def main(argv: Optional[list] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--arch', default='m', help='E-SpikeFormer arch: t, s, m (10M), l (19M)')
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--batch-size', type=int, default=8)
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)

    device, info = begin_driver(
        args, f'neuron_memory: arch {args.arch}, batch {args.batch_size}, {args.img_size} px'
    )
    setup_worker(args)
    check_equivalence(device, args.seed)
    script = os.path.abspath(__file__)
    runs = alternating_runs(script, CONFIGS, args.rounds, worker_argv(args))
    mask, flt = summarise(runs['mask']), summarise(runs['float'])
    record_load(info)
    result = dict(
        mask_peak_mb=mask['peak_mb'],
        float_peak_mb=flt['peak_mb'],
        memory_ratio=mask['peak_mb'] / flt['peak_mb'],
        mask_saved_mb=mask['saved_mb'],
        float_saved_mb=flt['saved_mb'],
        saved_ratio=mask['saved_mb'] / flt['saved_mb'],
        mask_step_s=mask['step_s'],
        float_step_s=flt['step_s'],
        time_ratio=statistics.median(per_round_ratios(runs, 'mask', 'float')),
        cpu_time_ratio=statistics.median(per_round_ratios(runs, 'mask', 'float', 'step_cpu_s')),
        memory_kind=runs['mask'][0]['memory_kind'],
        settings=dict(
            arch=args.arch,
            img_size=args.img_size,
            batch_size=args.batch_size,
            warmup=args.warmup,
            steps=args.steps,
            rounds=args.rounds,
        ),
        machine=info,
        runs=runs,
    )
    print()
    print_table(
        [
            'SFA neuron saves',
            'peak fwd+bwd mem (MB)',
            'peak total (MB)',
            'saved for backward (MB)',
            'median step (ms)',
        ],
        [
            [
                name,
                f'{r["peak_mb"]:.0f}',
                f'{r["peak_total_mb"]:.0f}',
                f'{r["saved_mb"]:.1f}',
                f'{r["step_s"] * 1e3:.1f}',
            ]
            for name, r in (('bool window mask (production)', mask), ('float input (published Quant)', flt))
        ],
    )
    print(
        f'\nmask / float: peak training memory {result["memory_ratio"]:.3f} '
        f'({result["memory_kind"]}), saved for backward {result["saved_ratio"]:.3f}, '
        f'step time {result["time_ratio"]:.2f} (CPU time {result["cpu_time_ratio"]:.2f})'
    )
    write_json(args.out, result)


if __name__ == '__main__':
    main()
