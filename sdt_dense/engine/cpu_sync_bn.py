"""Synchronised BatchNorm and DDP for CPU processes (gloo), e.g. ``tools/dist_train.sh`` without GPUs.

``torch.nn.SyncBatchNorm`` refuses CPU tensors in distributed training. :class:`GlooSyncBatchNorm`
computes the same statistics over all processes with differentiable all-reduces, which gloo
supports on CPU. :class:`CPUDistributedDataParallel` is mmengine's DDP wrapper for CPU processes:
no ``device_ids`` and every ``nn.SyncBatchNorm`` replaced by :class:`GlooSyncBatchNorm`.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.distributed as dist
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS
from torch import Tensor, nn
from torch.distributed.nn.functional import all_reduce as differentiable_all_reduce


class GlooSyncBatchNorm(nn.SyncBatchNorm):
    """``nn.SyncBatchNorm`` that also synchronises CPU tensors (gloo).

    In training under an initialised process group, the batch mean and (biased) variance are those
    of the union of all processes' batches, computed in two passes (global mean, then global mean
    of squared deviations) for accuracy; gradients flow through the all-reduces, so the result and
    its gradients equal a ``BatchNorm`` over the concatenated batch. Running statistics use the
    unbiased variance, as ``BatchNorm``. Otherwise (eval, GPU tensors, no process group) it is
    ``nn.SyncBatchNorm``.

    Shape: ``(N, C, *)`` -> same.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and x.device.type == 'cpu' and dist.is_available()
                and dist.is_initialized()):
            return super().forward(x)
        self._check_input_dim(x)
        group = self.process_group or dist.group.WORLD
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        count = x.new_tensor([x.numel() // x.shape[1]], dtype=torch.float32)
        total = differentiable_all_reduce(torch.cat([xf.sum(dims), count]), group=group)
        n = total[-1]
        if n.item() < 2:
            raise ValueError(f'{type(self).__name__}: expected more than 1 value per channel over '
                             f'all processes, got {int(n.item())} (input shape {tuple(x.shape)})')
        mean = total[:-1] / n
        var = differentiable_all_reduce(
            ((xf - mean.view(shape)) ** 2).sum(dims), group=group) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                            else self.momentum)
                unbiased = var.detach() * (n / (n - 1))
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_gloo_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.SyncBatchNorm`` in ``module`` by a :class:`GlooSyncBatchNorm` with the same
    parameters, buffers and process group (in place for children; returns the converted root)."""
    if isinstance(module, nn.SyncBatchNorm) and not isinstance(module, GlooSyncBatchNorm):
        new = GlooSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                module.track_running_stats, module.process_group)
        state = module.state_dict()
        if state:
            new.to(next(iter(state.values())).device)
        new.load_state_dict(state)
        if module.affine:
            new.weight.requires_grad_(module.weight.requires_grad)
            new.bias.requires_grad_(module.bias.requires_grad)
        return new.train(module.training)
    for name, child in module.named_children():
        converted = convert_gloo_sync_batchnorm(child)
        if converted is not child:
            setattr(module, name, converted)
    return module


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's ``MMDistributedDataParallel`` for CPU processes over gloo.

    ``device_ids`` must be ``None`` for CPU modules; SyncBN layers (``norm_cfg=dict(type='SyncBN')``
    or the runner's ``sync_bn='torch'``) become :class:`GlooSyncBatchNorm`, which synchronises CPU
    tensors.
    """

    def __init__(self, module: nn.Module, device_ids: Optional[list] = None, **kwargs) -> None:
        if device_ids is not None:
            raise ValueError(f'{type(self).__name__} wraps CPU modules: device_ids must be None, '
                             f'got {device_ids}')
        n_sync = sum(isinstance(m, nn.SyncBatchNorm) for m in module.modules())
        module = convert_gloo_sync_batchnorm(module)
        if n_sync:
            print_log(f'{type(self).__name__}: {n_sync} SyncBatchNorm layers synchronise over '
                      'gloo (GlooSyncBatchNorm)', logger='current')
        super().__init__(module=module, device_ids=None, **kwargs)
