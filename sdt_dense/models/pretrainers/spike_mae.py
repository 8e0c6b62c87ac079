"""Spike-masked autoencoder (spike-MAE): masked-image pretraining of the E-SpikeFormer Large trunk.

Pipeline for an input ``(B, 3, H, W)`` (``H, W`` multiples of 16; grid ``gh x gw = H/16 x W/16``,
``L = gh * gw`` patches of 16x16 px, patch index ``gw * row + column``)::

    mask      per sample, a random ``mask_ratio`` of the L patches is hidden
    encoder   the Large trunk on the masked image; its conv stem is "sparse" (every conv output and
              every BN keeps masked positions at exactly 0, and the BN statistics see only visible
              positions), its transformer blocks are dense (all L tokens, masked ones start as 0)
              and have no layer scale or drop path; then BatchNorm1d over the tokens -> (B, L, C2)
    decoder   Linear C2 -> d, + fixed 2-D sin-cos position table, timm ViT blocks, LayerNorm,
              Linear d -> 16 * 16 * 3 pixel values per patch -> (B, L, 768)
    loss      MSE to the per-patch normalised pixels of the unmasked image, on hidden patches only

The encoder is an :class:`~sdt_dense.models.backbones.ESpikeFormerLarge` whose stem layers were
swapped for sparse ones of identical parameter names, so ``backbone.*`` of a SpikeMAE checkpoint
is a dense Large backbone's state dict (without layer scales and the stride-32 level, which keep
their initial values when it is loaded: see :mod:`sdt_dense.checkpoint.released_mae`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmengine.model import BaseModel
from timm.models.vision_transformer import Block
from torch import Tensor, nn

from ...checkpoint import extract_state_dict, match_state_dict, safe_load
from ...checkpoint.released_mae import MAE_FORMAT, published_mae_to_pretrainer
from ...registry import register_model
from ..backbones.e_spikeformer_large import ESpikeFormerLarge
from .sparse_layers import PatchMaskState, sparsify_convs_and_norms

#: Pixels per patch side: the trunk's total stride, so one token per patch.
PATCH_SIZE = 16
IMAGENET_MEAN = [123.675, 116.28, 103.53]
IMAGENET_STD = [58.395, 57.12, 57.375]
DECODER_GATHERS = ('identity', 'published')


@dataclass
class PatchMask:
    """Which patches the encoder sees.

    Attributes:
        active: ``(B, L)`` bool, True = visible.
        ids_restore: ``(B, L)`` int64, the rank of each patch in the random order the mask was
            drawn from (patches of rank ``< L * (1 - mask_ratio)`` are visible). Only the
            published decoder gather reads it.
    """

    active: Tensor
    ids_restore: Tensor


def random_patch_mask(
    batch: int,
    num_patches: int,
    mask_ratio: float,
    device: Union[str, torch.device] = 'cpu',
    generator: Optional[torch.Generator] = None,
) -> PatchMask:
    """Hide ``int(L * mask_ratio)``-ish patches per sample, uniformly at random.

    Draws ``noise ~ U[0, 1)`` of shape ``(B, L)`` and keeps the ``int(L * (1 - mask_ratio))``
    patches with the smallest noise visible (the published drawing, so a seed reproduces its masks).
    """
    noise = torch.rand(batch, num_patches, device=device, generator=generator)
    ids_restore = noise.argsort(dim=1).argsort(dim=1)
    num_visible = int(num_patches * (1 - mask_ratio))
    return PatchMask(active=ids_restore < num_visible, ids_restore=ids_restore)


def sincos_pos_embed_2d(
    dim: int,
    grid: Tuple[int, int],
    dtype: torch.dtype = torch.float32,
    device: Union[str, torch.device, None] = None,
) -> Tensor:
    """Fixed 2-D sine-cosine position table ``(gh * gw, dim)``, rows in patch order.

    For the patch at (row r, column c) the first ``dim / 2`` channels encode c and the last
    ``dim / 2`` encode r, each as ``[sin(p * w_k), cos(p * w_k)]`` with
    ``w_k = 10000 ** (-k / (dim / 4))``, ``k = 0 .. dim / 4 - 1`` (the usual MAE table).
    """
    if dim % 4:
        raise ValueError(f'the sin-cos table needs a width divisible by 4, got {dim}')
    gh, gw = grid
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    rows, cols = torch.meshgrid(
        torch.arange(gh, dtype=torch.float64), torch.arange(gw, dtype=torch.float64), indexing='ij'
    )

    def encode(pos: Tensor) -> Tensor:  # (L,) -> (L, dim / 2)
        angles = pos.reshape(-1, 1) * omega
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    return torch.cat([encode(cols), encode(rows)], dim=1).to(dtype=dtype, device=device)


def patchify(images: Tensor, patch_size: int = PATCH_SIZE) -> Tensor:
    """``(B, C, H, W) -> (B, L, p * p * C)``; each patch flattened as (row in patch, column in
    patch, channel), patches in row-major order."""
    B, C, H, W = images.shape
    gh, gw = H // patch_size, W // patch_size
    x = images.reshape(B, C, gh, patch_size, gw, patch_size)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(B, gh * gw, patch_size * patch_size * C)


@register_model()
class SpikeMAE(BaseModel):
    """Spike-masked autoencoder pretraining of the E-SpikeFormer Large trunk.

    Args:
        arch: trunk size, as :class:`~sdt_dense.models.backbones.ESpikeFormerLarge` (``'83M'``,
            ``'173M'`` or a dict with ``embed_dims``, ``depth``, ...). One stem width for the
            pretrainer and the dense backbone, so the weights always transfer.
        in_channels: image channels.
        mask_ratio: fraction of the patches hidden from the encoder, in ``[0, 1)`` (0.5 is what
            the published pretraining effectively uses).
        decoder_embed_dim, decoder_depth, decoder_num_heads, decoder_mlp_ratio: the ViT decoder
            (256 wide, 4 blocks, 4 heads, ratio 4 as published).
        decoder_gather: ``'identity'`` (default): decoder token i is the encoder token of patch i.
            ``'published'``: the decoder first reorders the tokens by ``ids_restore`` (what the
            published code does; with no mask tokens appended this shuffles them, so a token is
            given the position embedding of, and scored against, another patch).
        norm_pix_loss: per-patch normalised pixel targets (the published code always uses them).
        neuron_cfg: updates the Large neuron rules (``dict(D=8)`` for "1x8").
        data_preprocessor: default ImageNet mean/std on RGB (images are loaded as BGR).
        init_cfg: mmengine init config of the whole model.

    ``forward(inputs, data_samples, mode)``: ``'loss'`` -> ``dict(loss=...)``; ``'tensor'`` ->
    predictions ``(B, L, 16 * 16 * in_channels)``. A fixed :class:`PatchMask` can be passed as
    ``mask=``; otherwise one is drawn (in train and eval mode alike).
    """

    def __init__(
        self,
        arch: Union[str, dict] = '83M',
        in_channels: int = 3,
        mask_ratio: float = 0.5,
        decoder_embed_dim: int = 256,
        decoder_depth: int = 4,
        decoder_num_heads: int = 4,
        decoder_mlp_ratio: float = 4.0,
        decoder_gather: str = 'identity',
        norm_pix_loss: bool = True,
        neuron_cfg: Optional[dict] = None,
        data_preprocessor: Optional[dict] = None,
        init_cfg: Optional[dict] = None,
    ) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(
                type='ImgDataPreprocessor', mean=IMAGENET_MEAN, std=IMAGENET_STD, bgr_to_rgb=True
            )
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not 0 <= mask_ratio < 1:
            raise ValueError(f'mask_ratio must be in [0, 1), got {mask_ratio}')
        if decoder_gather not in DECODER_GATHERS:
            raise ValueError(f'decoder_gather must be one of {DECODER_GATHERS}, got {decoder_gather!r}')
        self.mask_ratio = mask_ratio
        self.decoder_gather = decoder_gather
        self.norm_pix_loss = norm_pix_loss
        self.in_channels = in_channels

        # Encoder: the dense trunk (no layer scale, no drop path, stride-16 tokens only) with its
        # stem made sparse. Parameter names stay those of the dense backbone.
        self.mask_state = PatchMaskState()
        self.backbone = ESpikeFormerLarge(
            arch,
            in_channels=in_channels,
            out_indices=(3,),
            neuron_cfg=neuron_cfg,
            drop_path_rate=0.0,
            layer_scale_init_value=None,
        )
        replaced = sparsify_convs_and_norms(
            self.backbone.downsamples, self.mask_state
        ) + sparsify_convs_and_norms(self.backbone.conv_stages, self.mask_state)
        if not replaced:  # pragma: no cover - guards a change of the trunk's layout
            raise RuntimeError('no stem conv/BN found to make sparse')
        dim = self.backbone.stage_channels[3]
        self.latent_norm = nn.BatchNorm1d(dim)

        self.decoder_embed = nn.Linear(dim, decoder_embed_dim)
        self.decoder_blocks = nn.ModuleList(
            Block(
                decoder_embed_dim,
                decoder_num_heads,
                decoder_mlp_ratio,
                qkv_bias=False,
                norm_layer=partial(nn.LayerNorm, eps=1e-6),
            )
            for _ in range(decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(decoder_embed_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_embed_dim, PATCH_SIZE**2 * in_channels)
        self._init_decoder()

    def _init_decoder(self) -> None:
        # As published (MAE): truncated-normal 0.02 Linear weights, zero biases, unit LayerNorms.
        for m in [self.decoder_embed, self.decoder_blocks, self.decoder_norm, self.decoder_pred]:
            for sub in m.modules():
                if isinstance(sub, nn.Linear):
                    nn.init.trunc_normal_(sub.weight, std=0.02)
                    if sub.bias is not None:
                        nn.init.zeros_(sub.bias)
                elif isinstance(sub, nn.LayerNorm):
                    nn.init.ones_(sub.weight)
                    nn.init.zeros_(sub.bias)

    # ------------------------------------------------------------------------------------------
    @staticmethod
    def patch_grid(height: int, width: int) -> Tuple[int, int]:
        """``(H / 16, W / 16)``; H and W must be multiples of 16."""
        if height % PATCH_SIZE or width % PATCH_SIZE:
            raise ValueError(
                f'SpikeMAE needs input sides that are multiples of {PATCH_SIZE}, got {height}x{width}'
            )
        return height // PATCH_SIZE, width // PATCH_SIZE

    def _resolve_mask(self, inputs: Tensor, mask: Optional[PatchMask]) -> PatchMask:
        B = inputs.shape[0]
        gh, gw = self.patch_grid(*inputs.shape[-2:])
        if mask is None:
            return random_patch_mask(B, gh * gw, self.mask_ratio, inputs.device)
        if tuple(mask.active.shape) != (B, gh * gw) or (tuple(mask.ids_restore.shape) != (B, gh * gw)):
            raise ValueError(
                f'mask tensors must be ({B}, {gh * gw}), got active '
                f'{tuple(mask.active.shape)}, ids_restore '
                f'{tuple(mask.ids_restore.shape)}'
            )
        return PatchMask(mask.active.to(inputs.device).bool(), mask.ids_restore.to(inputs.device).long())

    def _encode(self, inputs: Tensor, mask: PatchMask, taps: Optional[Dict[str, Tensor]] = None) -> Tensor:
        """Masked image -> latent tokens ``(B, L, C2)``."""
        B, _, H, W = inputs.shape
        gh, gw = self.patch_grid(H, W)
        with self.mask_state.use(mask.active.view(B, 1, gh, gw)):
            x = inputs.masked_fill(~self.mask_state.at((H, W)), 0.0)
            if taps is None:
                tokens = self.backbone(x)[0]  # (B, C2, gh, gw)
            else:
                taps.update(self.backbone.forward_taps(x))
                tokens = taps[f'block{self.backbone.stride16_block}']
        latent = self.latent_norm(tokens.flatten(2))  # BN over all B * L tokens
        return latent.transpose(1, 2)

    def _decode(self, latent: Tensor, mask: PatchMask, grid: Tuple[int, int]) -> Tensor:
        """Latent ``(B, L, C2)`` -> pixel predictions ``(B, L, 16 * 16 * C)``."""
        x = self.decoder_embed(latent)
        if self.decoder_gather == 'published':
            index = mask.ids_restore.unsqueeze(-1).expand(-1, -1, x.shape[-1])
            x = torch.gather(x, 1, index)
        x = x + sincos_pos_embed_2d(x.shape[-1], grid, x.dtype, x.device)
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))

    def reconstruction_loss(self, inputs: Tensor, pred: Tensor, active: Tensor) -> Tensor:
        """Mean squared error on the hidden patches.

        Args:
            inputs: the unmasked (normalised) images ``(B, C, H, W)``.
            pred: ``(B, L, 16 * 16 * C)``.
            active: ``(B, L)`` bool, True = visible (not scored).

        Returns:
            scalar: the sum over hidden patches of the per-patch mean squared error, divided by
            the number of hidden patches in the batch.
        """
        target = patchify(inputs)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)  # unbiased, as published
            target = (target - mean) / (var + 1e-6) ** 0.5
        per_patch = (pred - target).pow(2).mean(dim=-1)  # (B, L)
        hidden = (~active).to(per_patch.dtype)
        return (per_patch * hidden).sum() / (hidden.sum() + 1e-8)

    def forward_taps(self, inputs: Tensor, mask: Optional[PatchMask] = None) -> Dict[str, Tensor]:
        """Everything one pass computes, for inspection: the trunk's taps (``stride2``,
        ``stride4``, ``stride8``, ``stride16_in``, ``block<j>``), ``latent`` ``(B, L, C2)``,
        ``pred`` ``(B, L, 768)``, ``loss``, and the mask used (``active``, ``ids_restore``)."""
        mask = self._resolve_mask(inputs, mask)
        taps: Dict[str, Tensor] = {}
        grid = self.patch_grid(*inputs.shape[-2:])
        taps['latent'] = self._encode(inputs, mask, taps)
        taps['pred'] = self._decode(taps['latent'], mask, grid)
        taps['loss'] = self.reconstruction_loss(inputs, taps['pred'], mask.active)
        taps['active'], taps['ids_restore'] = mask.active, mask.ids_restore
        return taps

    def forward(
        self,
        inputs: Tensor,
        data_samples: Optional[List] = None,
        mode: str = 'loss',
        mask: Optional[PatchMask] = None,
    ) -> Union[Dict[str, Tensor], Tensor]:
        """``inputs``: normalised images ``(B, C, H, W)`` (the data preprocessor's output).

        Returns ``dict(loss=scalar)`` for ``mode='loss'``; the predictions ``(B, L, 768)`` for
        ``mode='tensor'``. ``data_samples`` are not used (the target is the image itself).
        """
        if mode not in ('loss', 'tensor'):
            raise ValueError(
                f"SpikeMAE supports mode 'loss' and 'tensor', got {mode!r} "
                '(pretraining has no predict/val step)'
            )
        mask = self._resolve_mask(inputs, mask)
        grid = self.patch_grid(*inputs.shape[-2:])
        pred = self._decode(self._encode(inputs, mask), mask, grid)
        if mode == 'tensor':
            return pred
        return dict(loss=self.reconstruction_loss(inputs, pred, mask.active))

    # ------------------------------------------------------------------------------------------
    def load_pretrained(self, path: str) -> None:
        """Strictly and safely load a published spike-MAE checkpoint (its dead ``pos_embed``,
        ``mask_token`` and ``decoder_pos_embed`` are dropped) or a state dict of this class."""
        state_dict = extract_state_dict(safe_load(path))
        if MAE_FORMAT.detect(state_dict):
            state_dict = published_mae_to_pretrainer(state_dict)
        self.load_state_dict(match_state_dict(self, state_dict))
