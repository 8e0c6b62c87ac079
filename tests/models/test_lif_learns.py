"""The binary LIF baseline learns: an E-SpikeFormer classifier with LIF neurons (T = 2 real
timesteps, surrogate gradients through time) trained on the toy shapes goes from chance to
recognising the training images, and beats the majority class on held-out images."""

from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from sdt_dense.models import ESpikeFormerClassifier
from sdt_dense.toy_data.cls import make_cls_dataset

MINI_ARCH = dict(embed_dims=[8, 16, 32, 48], depths=[1, 1, 1, 1, 1], num_heads=2)


def _load(root, split, classes):
    xs, ys = [], []
    for label, name in enumerate(classes):
        for path in sorted((root / split / name).glob('*.JPEG')):
            xs.append(np.asarray(Image.open(path).convert('RGB'), dtype=np.float32))
            ys.append(label)
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2)
    return (x - 127.5) / 64.0, torch.tensor(ys)


def _accuracy(model, x, y) -> float:
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(1)
    model.train()
    return float((pred == y).float().mean())


@pytest.mark.slow
def test_lif_classifier_learns_the_toy_shapes(tmp_path):
    meta = make_cls_dataset(tmp_path, num_train=60, num_val=60, image_size=32, num_classes=3, seed=0)
    x, y = _load(tmp_path, 'train', meta['classes'])
    xv, yv = _load(tmp_path, 'val', meta['classes'])
    torch.manual_seed(0)
    model = ESpikeFormerClassifier(MINI_ARCH, num_classes=3, neuron_cfg=dict(type='LIF', T=2))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    before = _accuracy(model, x, y)
    losses = []
    for epoch in range(EPOCHS):
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(epoch))
        for i in range(0, len(y), 12):
            idx = order[i : i + 12]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    train_acc, val_acc = _accuracy(model, x, y), _accuracy(model, xv, yv)
    majority = Counter(yv.tolist()).most_common(1)[0][1] / len(yv)
    assert all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])  # measured: 1.09 -> 0.49
    assert train_acc >= TRAIN_ACC > before
    assert val_acc >= majority + VAL_MARGIN


# measured (seed 0): accuracy 0.42 at init; after training 0.82 on the training images and 0.78
# on held-out ones, where the majority class is 0.45
EPOCHS, TRAIN_ACC, VAL_MARGIN = 25, 0.7, 0.15
