"""Every model of the homework, behind one registry.

`MODELS` maps a name to a constructor `f(num_classes, **kwargs)`. Every model has the same
API, so the trainer, the FLOP counter and the benchmark never name a model:
  forward(x)             normalised images (B, 3, S, S) -> logits (B, num_classes)
  forward_features(x)    -> pooled features (B, C);  forward_head(features) -> logits
  channels_last          whether its batches should be NHWC on CUDA
  compile_regions()      its repeated blocks, for compile_scope="blocks"
  window_attention       whether it has Swin window attention, which set_fused_attention(on)
                         switches between timm's written-out softmax and SDPA
and `input_spec(name)` says the native image side and normalisation it expects.
"""
from __future__ import annotations

import inspect

import torch.nn as nn

from ..config import native_img_size
from ..data import CIFAR100_MEAN, CIFAR100_STD
from .pretrained import WeightsUnavailableError
from .resnet import CifarResNet18, resnet18
from .swin import SWIN_TAGS, SwinClassifier, swin_small, swin_tiny, weights_problem
from .vit import ViT, vit

# A constructor may be the model class itself (its class attributes then answer
# prefers_channels_last and has_window_attention); a function names its class in _CLASSES.
MODELS = {"resnet18": resnet18, "vit": vit, "swin_tiny": swin_tiny, "swin_small": swin_small}
_CLASSES = {"resnet18": CifarResNet18, "vit": ViT, "swin_tiny": SwinClassifier,
            "swin_small": SwinClassifier}


def _model_class(name: str) -> type:
    _known(name)
    return _CLASSES.get(name) or MODELS[name]


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
    """Whether the model's batches should be channels_last (NHWC) on CUDA; the model's
    class says so (`channels_last`), so this needs no model instance."""
    return _model_class(name).channels_last


def has_window_attention(name: str) -> bool:
    """Whether the model has window attention with a fused/unfused switch (the Swins)."""
    return _model_class(name).window_attention


__all__ = ["MODELS", "SWIN_TAGS", "CifarResNet18", "SwinClassifier", "ViT",
           "WeightsUnavailableError", "build_model", "has_window_attention", "input_spec",
           "prefers_channels_last", "weights_problem"]
