"""Layouts of spike-MAE pretraining checkpoints, and how their encoder loads into a backbone.

Two layouts:

* :data:`MAE_FORMAT`, the published pretraining files (``{'model': state_dict, ...}``): the
  encoder uses the released Large classifier's names (converted with the Large renames), the
  latent BatchNorm is ``norm.*``, the decoder ``decoder_*``. Three tensors are dead and dropped:
  the encoder ``pos_embed`` (never added to anything), ``mask_token`` (no mask token is ever
  appended) and ``decoder_pos_embed`` (a fixed sin-cos table, recomputed on the fly).
* :data:`SPIKE_MAE_FORMAT`, checkpoints of our :class:`~sdt_dense.models.SpikeMAE` (mmengine
  ``state_dict``): ``backbone.*`` already has the dense Large backbone's names.

Loading either into a dense :class:`~sdt_dense.models.ESpikeFormerLarge` (``init_cfg=dict(
type='Pretrained', checkpoint=...)``) is strict for every encoder tensor; the pretrainer-only
tensors (latent norm, decoder) are skipped, and the tensors a pretraining encoder does not have
keep their initial values: the per-channel layer scales (the encoder runs without them) and the
added stride-32 level.
"""

from __future__ import annotations

from typing import Dict, Optional

from torch import Tensor

from .released import LARGE_FORMAT, ReleasedFormat

#: Tensors only the pretrainer has (converted names): the latent BatchNorm and the decoder.
PRETRAINER_ONLY_KEYS = (r'^latent_norm\.', r'^decoder_')
#: Dense-backbone tensors a pretraining checkpoint lacks (they keep their initial values).
MAE_MISSING_OK = (r'\.ls[12]\.gamma$',) + tuple(LARGE_FORMAT.missing_ok)

MAE_FORMAT = ReleasedFormat(
    name='E-SpikeFormer spike-MAE',
    marker_prefixes=('mask_token', 'decoder_pos_embed'),
    renames=[*LARGE_FORMAT.renames, (r'^norm\.', 'latent_norm.')],
    # For a backbone load these are skipped like a classifier's heads.
    classifier_keys=PRETRAINER_ONLY_KEYS,
    missing_ok=MAE_MISSING_OK,
    drop_keys=(r'^pos_embed$', r'^mask_token$', r'^decoder_pos_embed$'),
)

SPIKE_MAE_FORMAT = ReleasedFormat(
    name='sdt-dense SpikeMAE',
    marker_prefixes=('decoder_pred.',),
    renames=[(r'^backbone\.', '')],
    classifier_keys=PRETRAINER_ONLY_KEYS,
    missing_ok=MAE_MISSING_OK,
)


def pretraining_format(state_dict: Dict[str, Tensor]) -> Optional[ReleasedFormat]:
    """The spike-MAE layout of ``state_dict`` (published or ours), or ``None`` for any other
    checkpoint."""
    for fmt in (MAE_FORMAT, SPIKE_MAE_FORMAT):  # the published one also has decoder_pred
        if fmt.detect(state_dict):
            return fmt
    return None


def published_mae_to_pretrainer(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Published spike-MAE state dict -> :class:`~sdt_dense.models.SpikeMAE` names
    (``backbone.*``, ``latent_norm.*``, ``decoder_*``), dead tensors dropped."""
    return MAE_FORMAT.to_classifier(state_dict)
