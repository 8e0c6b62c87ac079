"""Synchronised BatchNorm and DDP for CPU processes (gloo): ``tools/dist_train.sh`` without GPUs.

``torch.nn.SyncBatchNorm`` refuses CPU tensors in training, and DDP refuses it in CPU modules.
:class:`GlooSyncBatchNorm` computes the same statistics over all processes with differentiable
all-reduces, which gloo supports on CPU. :class:`CPUDistributedDataParallel` is mmengine's DDP
wrapper for CPU processes: no ``device_ids`` and every ``nn.SyncBatchNorm`` replaced by
:class:`GlooSyncBatchNorm`.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.distributed as dist
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS
from torch import Tensor, nn
from torch.distributed.nn.functional import all_reduce as differentiable_all_reduce
from torch.nn.modules.batchnorm import _BatchNorm


class GlooSyncBatchNorm(_BatchNorm):
    """Synchronised BatchNorm built on differentiable all-reduces (works with gloo on CPU).

    In training under an initialised process group of more than one process, the batch mean and
    (biased) variance are those of the union of all processes' batches, computed in two passes
    (global mean, then global mean of squared deviations) for accuracy; gradients flow through the
    all-reduces, so the output and its gradients equal a ``BatchNorm`` over the concatenated batch.
    Running statistics use the unbiased variance, as ``BatchNorm``. Otherwise (eval, one process)
    it is a plain ``BatchNorm``. It is a ``_BatchNorm`` but not an ``nn.SyncBatchNorm``, which DDP
    refuses in CPU modules.

    Args: those of ``nn.SyncBatchNorm`` (``process_group=None``: all processes).

    Shape: ``(N, C, *)`` -> same.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: Optional[float] = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        process_group: Optional[Any] = None,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.process_group = process_group

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f'expected at least 2D input (N, C, *), got {x.dim()}D')

    def forward(self, x: Tensor) -> Tensor:
        group = self.process_group or (dist.group.WORLD if dist.is_available() else None)
        if not (
            self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size(group) > 1
        ):
            return super().forward(x)
        self._check_input_dim(x)
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        count = x.new_tensor([x.numel() // x.shape[1]], dtype=torch.float32)
        total = differentiable_all_reduce(torch.cat([xf.sum(dims), count]), group=group)
        n = total[-1]
        if n.item() < 2:
            raise ValueError(
                f'{type(self).__name__}: expected more than 1 value per channel over '
                f'all processes, got {int(n.item())} (input shape {tuple(x.shape)})'
            )
        mean = total[:-1] / n
        var = differentiable_all_reduce(((xf - mean.view(shape)) ** 2).sum(dims), group=group) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                unbiased = var.detach() * (n / (n - 1))
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_gloo_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.SyncBatchNorm`` in ``module`` by a :class:`GlooSyncBatchNorm` with the
    same parameters, buffers and process group (in place for children; returns the converted
    root)."""
    if isinstance(module, nn.SyncBatchNorm):
        new = GlooSyncBatchNorm(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
            module.process_group,
        )
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
            raise ValueError(
                f'{type(self).__name__} wraps CPU modules: device_ids must be None, got {device_ids}'
            )
        n_sync = sum(isinstance(m, nn.SyncBatchNorm) for m in module.modules())
        module = convert_gloo_sync_batchnorm(module)
        if n_sync:
            print_log(
                f'{type(self).__name__}: {n_sync} SyncBatchNorm layers synchronise over '
                'gloo (GlooSyncBatchNorm)',
                logger='current',
            )
        super().__init__(module=module, device_ids=None, **kwargs)
