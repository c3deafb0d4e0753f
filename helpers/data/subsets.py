"""Training-set subsets: nested class-balanced shares (the data-efficiency study) and the
fixed train sample scored at every evaluation (the train side of the train-test gap)."""
from __future__ import annotations

import dataclasses

import torch

from .arrays import Dataset


def nested_fraction(y: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Sorted indices of a class-balanced share of the images labelled `y`.

    Every class keeps round(n_c * fraction) of its n_c images (at least one), the first ones
    of an order drawn from `seed` alone. The order does not depend on the fraction, so for
    one seed a smaller fraction's images are always among a larger one's: the data-efficiency
    curve adds images to a fixed set instead of drawing a new set at every point.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"train_fraction={fraction!r}: must be in (0, 1]")
    y = torch.as_tensor(y)
    g = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(len(y), generator=g)          # one draw for every class
    keep = []
    for c in torch.unique(y).tolist():
        members = order[y[order] == c]                   # class c, in the drawn order
        keep.append(members[:max(1, round(len(members) * fraction))])
    return torch.cat(keep).sort().values


def with_train_fraction(data: Dataset, fraction: float | None, seed: int) -> Dataset:
    """The dataset with its training split cut to nested_fraction (unchanged for None)."""
    if fraction is None or fraction == 1:
        return data
    keep = nested_fraction(data.y_train, fraction, seed)
    return dataclasses.replace(data, x_train=data.x_train[keep], y_train=data.y_train[keep])


def train_sample(n_train: int, k: int, seed: int) -> torch.Tensor | None:
    """Sorted indices of min(k, n_train) training images drawn from `seed`; None for k = 0.
    The same images at every epoch and after a resume, so the train accuracy of one epoch
    is comparable with the next."""
    if k <= 0:
        return None
    g = torch.Generator().manual_seed(int(seed) + 1)     # not the fraction's draw
    return torch.randperm(n_train, generator=g)[:min(k, n_train)].sort().values
