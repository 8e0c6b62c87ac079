"""Layouts of the authors' released classification checkpoints, and their conversion.

A :class:`ReleasedFormat` names what recognises a released state dict, how its keys map onto this
project's module names (timm's ``checkpoint_filter_fn`` idea), which of its tensors only the
classifier uses, and which of our tensors the released files lack. A backbone class names its
format in its ``released_format`` attribute; :func:`~sdt_dense.checkpoint.load_pretrained` and the
converter in ``tools/model_converters/`` read it from there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

from torch import Tensor, nn

Renames = Sequence[Tuple[str, str]]


@dataclass(frozen=True)
class ReleasedFormat:
    """One released checkpoint layout.

    Attributes:
        name: what the layout is called in messages.
        marker_prefixes: a state dict with a key starting with one of these is in this layout.
        renames: ``(regex, replacement)`` pairs applied in order to every key.
        classifier_keys: regexes (on converted keys) of tensors only the classifier uses; a
            backbone load skips them.
        missing_ok: regexes of backbone tensors the released files do not have (they keep their
            initial values).
    """

    name: str
    marker_prefixes: Tuple[str, ...]
    renames: Renames
    classifier_keys: Tuple[str, ...] = (r'^head\.',)
    missing_ok: Tuple[str, ...] = ()
    drop_keys: Tuple[str, ...] = field(default=())

    def detect(self, state_dict: Dict[str, Tensor]) -> bool:
        """Whether ``state_dict`` uses the released (authors') module names."""
        return any(k.startswith(self.marker_prefixes) for k in state_dict)

    def convert_key(self, key: str) -> str:
        for pattern, repl in self.renames:
            key = re.sub(pattern, repl, key)
        return key

    def convert(self, state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Released names -> ours; a state dict in another layout is returned unchanged."""
        if not self.detect(state_dict):
            return dict(state_dict)
        return {
            self.convert_key(k): v
            for k, v in state_dict.items()
            if not any(re.search(p, k) for p in self.drop_keys)
        }

    def to_classifier(self, state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Released state dict -> a classifier's (``backbone.*`` plus the classifier tensors)."""
        if not self.detect(state_dict):
            raise ValueError(
                f'not a released {self.name} state dict (no key starts with '
                f'{" or ".join(self.marker_prefixes)})'
            )
        return {
            (k if any(re.search(p, k) for p in self.classifier_keys) else f'backbone.{k}'): v
            for k, v in self.convert(state_dict).items()
        }


# The Base family (2.7M-19M): stages are renamed to ``downsamples.i`` / ``stages.i``, the
# SpikingJelly-style ``*_conv.0/1`` pairs to ``.conv`` / ``.bn``.
BASE_FORMAT = ReleasedFormat(
    name='E-SpikeFormer Base',
    marker_prefixes=('downsample1_1.', 'ConvBlock1_1.'),
    renames=[
        (r'^downsample1_1\.', 'downsamples.0.'),
        (r'^downsample1_2\.', 'downsamples.1.'),
        (r'^downsample([234])\.', r'downsamples.\1.'),
        (r'^ConvBlock1_1\.0\.', 'stages.0.0.'),
        (r'^ConvBlock1_2\.0\.', 'stages.1.0.'),
        (r'^ConvBlock2_1\.0\.', 'stages.2.0.'),
        (r'^ConvBlock2_2\.0\.', 'stages.2.1.'),
        (r'^block3\.', 'stages.3.'),
        (r'^block4\.', 'stages.4.'),
        (r'\.encode_conv\.', '.conv.'),
        (r'\.encode_bn\.', '.bn.'),
        (r'\.(?:Conv|conv)\.(pwconv1|dwconv|pwconv2)\.0\.', r'.sepconv.\1.conv.'),
        (r'\.(?:Conv|conv)\.(pwconv1|dwconv|pwconv2)\.1\.', r'.sepconv.\1.bn.'),
        (r'(stages\.[012]\.\d+)\.conv([12])\.', r'\1.mlp.conv\2.conv.'),
        (r'(stages\.[012]\.\d+)\.bn([12])\.', r'\1.mlp.conv\2.bn.'),
        (r'\.attn\.(q|k|v|proj)_conv\.0\.', r'.attn.\1.conv.'),
        (r'\.attn\.(q|k|v|proj)_conv\.1\.', r'.attn.\1.bn.'),
        (r'\.mlp\.(fc[12])_conv\.', r'.mlp.\1.conv.'),
        (r'\.mlp\.(fc[12])_bn\.', r'.mlp.\1.bn.'),
    ],
    # Layer scales are an option of ours; the released Base models have none.
    missing_ok=(r'\.ls[123]\.gamma$',),
)


def checkpoint_filter_fn(
    state_dict: Dict[str, Tensor], model: Optional[nn.Module] = None
) -> Dict[str, Tensor]:
    """timm-style filter: convert a released state dict to ``model``'s names (the model's
    ``released_format``; the Base layout when ``model`` is ``None`` or names none)."""
    fmt = getattr(model, 'released_format', None) or BASE_FORMAT
    return fmt.convert(state_dict)


# The Large family (83M / 173M, ``ESpikeFormerLarge``): stem layers become ``downsamples.i``,
# conv blocks ``conv_stages.i.j``, transformer blocks ``blocks.j``; the ``(conv, BN)`` pairs of
# nn.Sequential/SeqToANNContainer become ``.conv`` / ``.bn``. Some SpikingJelly versions store
# SeqToANNContainer's layers under ``.module`` (``conv1.0.module.0.weight``); both spellings load.
LARGE_FORMAT = ReleasedFormat(
    name='E-SpikeFormer Large',
    marker_prefixes=('downsample1_1.', 'ConvBlock1_1.'),
    renames=[
        (r'^(ConvBlock\d_\d\.\d+\.conv[12]\.\d+)\.module\.', r'\1.'),
        (r'^downsample1_1\.', 'downsamples.0.'),
        (r'^downsample1_2\.', 'downsamples.1.'),
        (r'^downsample([23])\.', r'downsamples.\1.'),
        (r'\.encode_conv\.', '.conv.'),
        (r'\.encode_bn\.', '.bn.'),
        (r'^ConvBlock1_1\.0\.', 'conv_stages.0.0.'),
        (r'^ConvBlock1_2\.0\.', 'conv_stages.1.0.'),
        (r'^ConvBlock2_1\.0\.', 'conv_stages.2.0.'),
        (r'^ConvBlock2_2\.0\.', 'conv_stages.2.1.'),
        (r'^(conv_stages\.\d\.\d)\.conv([12])\.0\.0\.', r'\1.conv\2.conv.'),
        (r'^(conv_stages\.\d\.\d)\.conv([12])\.0\.1\.', r'\1.conv\2.bn.'),
        (r'^block3\.', 'blocks.'),
        (r'\.layer_scale([12])$', r'.ls\1.gamma'),
        (r'\.attn\.(q|k|v|proj)_conv\.1\.', r'.attn.\1_bn.'),
        (r'\.attn\.(q|k|v|proj)_conv\.0\.', r'.attn.\1_conv.'),
        # inside a RepConv (the 83M token branch and the attention maps)
        (r'_conv\.conv([12])\.0\.', r'_conv.conv\1.conv.'),
        (r'_conv\.conv([12])\.1\.', r'_conv.conv\1.bn.'),
        (r'\.mlp\.(fc[12])_conv\.', r'.mlp.\1.conv.'),
        (r'\.mlp\.(fc[12])_bn\.', r'.mlp.\1.bn.'),
    ],
    # ``head`` reads the real-valued pooled tokens, ``head_kd`` their integer spikes.
    classifier_keys=(r'^head\.', r'^head_kd\.'),
    # The stride-32 level is an addition of ours for dense prediction (random init).
    missing_ok=(r'^extra_stride32\.',),
)
