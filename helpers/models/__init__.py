"""Every model of the homework, behind one registry.

`MODELS` maps a name to a constructor `f(num_classes, **kwargs)`. Every model has the same
API, so the trainer, the FLOP counter and the benchmark never name a model:
  forward(x)             normalised images (B, 3, S, S) -> logits (B, num_classes)
  forward_features(x)    -> pooled features (B, C);  forward_head(features) -> logits
and `input_spec(name)` says the native image side and normalisation it expects;
`prefers_channels_last(name)` whether its weights and batches should be NHWC on CUDA.
"""
from __future__ import annotations

import functools
import inspect

import torch.nn as nn

from ..config import native_img_size
from ..data import CIFAR100_MEAN, CIFAR100_STD
from .pretrained import WeightsUnavailableError
from .resnet import CifarResNet18
from .swin import SWIN_TAGS, SwinClassifier, swin, weights_problem
from .vit import ViT

# A model's class is its constructor; a Swin size is the one Swin builder bound to its tag.
MODELS = {"resnet18": CifarResNet18, "vit": ViT,
          **{name: functools.partial(swin, name) for name in SWIN_TAGS}}
# The models trained in channels_last (NHWC) on CUDA: cuDNN's fast convolution kernels want it.
CHANNELS_LAST = ("resnet18",)


def _known(name: str) -> None:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")


def build_model(name: str, num_classes: int, **kwargs) -> nn.Module:
    """Build a registered model; unknown names and options fail before any work."""
    _known(name)
    params = inspect.signature(MODELS[name]).parameters
    allowed = [p for p in params if p != "num_classes"]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(f"{name} does not take option(s) {unknown}; "
                        f"valid options: {allowed or 'none'}")
    return MODELS[name](num_classes, **kwargs)


def input_spec(name: str) -> dict:
    """What the model expects: native image side and per-channel normalisation.

    The ViT and ResNet train from scratch on CIFAR, so they use CIFAR-100 statistics;
    Swin uses the ImageNet statistics its pretrained weights were trained with.
    """
    _known(name)
    if name in SWIN_TAGS:
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(SWIN_TAGS[name])
        return dict(img_size=cfg.input_size[-1], mean=tuple(cfg.mean), std=tuple(cfg.std))
    return dict(img_size=native_img_size(name), mean=tuple(CIFAR100_MEAN),
                std=tuple(CIFAR100_STD))


def prefers_channels_last(name: str) -> bool:
    """Whether the model's weights and batches should be channels_last (NHWC) on CUDA."""
    _known(name)
    return name in CHANNELS_LAST


__all__ = ["CHANNELS_LAST", "MODELS", "SWIN_TAGS", "CifarResNet18", "SwinClassifier", "ViT",
           "WeightsUnavailableError", "build_model", "input_spec",
           "prefers_channels_last", "weights_problem"]
