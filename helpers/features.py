"""Cached backbone features for the frozen-backbone fine-tune (cache_features=True).

With the backbone frozen and no augmentation, every epoch would compute the same
features again; they are computed once here and served in the image loader's order.
"""
from __future__ import annotations

import torch

from .data import DeviceLoader
from .device import eval_kernels


class FeatureBatches:
    """Batches of precomputed backbone features for the frozen-backbone fine-tune.

    Only valid without augmentation (every epoch then sees identical images, so the
    frozen backbone's output never changes and one pass is enough). Same interface as
    DeviceLoader; training batches follow `images.order(epoch)`, the exact permutation
    the image loader would use, so caching changes the speed and nothing else.
    """
    def __init__(self, features, labels, images: DeviceLoader):
        self.x, self.y, self.images = features, labels, images
        self.batch_size, self.train = images.batch_size, images.train
        self.num_images = len(labels)

    def __len__(self):
        return len(self.images)

    def epoch(self, epoch: int):
        n = self.num_images
        order = self.images.order(epoch) if self.train else torch.arange(n, device=self.x.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield self.x[idx], self.y[idx]


@torch.no_grad()
def backbone_features(model, loader: DeviceLoader, precision) -> torch.Tensor:
    """One forward pass of the frozen backbone over `loader`, with evaluate()'s kernels:
    its batches are eval-sized, so cuDNN autotuning would only add a one-off search."""
    model.eval()
    chunks = []
    with eval_kernels(loader.device):
        for x, _ in loader.epoch(0):
            with precision.autocast():
                chunks.append(model.forward_features(x))
    return torch.cat(chunks)
