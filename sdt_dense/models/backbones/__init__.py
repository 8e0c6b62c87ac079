from .e_spikeformer import (ARCH_ZOO, CheckpointMismatchError, ESpikeFormer,
                            ESpikeFormerClassifier, checkpoint_filter_fn, load_pretrained)

__all__ = ['ARCH_ZOO', 'CheckpointMismatchError', 'ESpikeFormer', 'ESpikeFormerClassifier',
           'checkpoint_filter_fn', 'load_pretrained']
