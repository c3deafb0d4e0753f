"""timm's Swin Transformers behind the registry's uniform API, from scratch or fine-tuned
from ImageNet-1k weights (the head only, or everything)."""
from __future__ import annotations

import os

import torch
import torch.nn as nn

from ..config import RANDOM_INIT, SWIN_MODES, SWIN_PATCH
from .pretrained import (WeightsUnavailableError, check_file_matches, download_errors,
                         resolve_weights, weights_hint)


def weights_problem(model: str, weights: str | None, mode: str = "finetune") -> str | None:
    """Why the ImageNet weights a `mode` run of `model` needs cannot be had on this machine,
    or None when they can (a local file, the hub cache, or a reachable hub) or it needs none
    (not a Swin fine-tune, or random-init). Takes at most the hub probe's few seconds."""
    if model not in SWIN_TAGS or mode == "scratch" or weights == RANDOM_INIT:
        return None
    try:
        resolve_weights(SWIN_TAGS[model], weights)
    except WeightsUnavailableError as err:
        return str(err)
    return None


# Pinned pretrained tags. Without a tag timm picks the first listed weights: for
# swin_tiny that is ImageNet-1k, but for swin_small it is ImageNet-22k -> 1k. Comparing a
# 1k-pretrained tiny with a 22k-pretrained small would not be a fair size comparison.
SWIN_TAGS = {"swin_tiny": "swin_tiny_patch4_window7_224.ms_in1k",
             "swin_small": "swin_small_patch4_window7_224.ms_in1k"}


class SwinClassifier(nn.Module):
    """A timm Swin with a uniform fine-tuning interface.

    forward(x) == forward_head(forward_features(x)): `forward_features` returns the
    pooled (B, C) backbone features, `forward_head` (one Linear) the logits.
    With `frozen_backbone`, only the head trains; the backbone stays in eval mode and
    runs under no_grad, so no activations are kept for a backward that never comes.
    """

    def __init__(self, backbone: nn.Module, frozen_backbone: bool):
        super().__init__()
        self.backbone = backbone
        self.frozen_backbone = frozen_backbone
        if frozen_backbone:
            for p in backbone.parameters():
                p.requires_grad_(False)
            for p in self.head.parameters():
                p.requires_grad_(True)
            self.backbone.eval()

    @property
    def head(self) -> nn.Linear:  # a property, so the state_dict holds the head only once
        return self.backbone.head.fc

    def train(self, mode: bool = True) -> "SwinClassifier":
        super().train(mode)
        if self.frozen_backbone:  # .train() must not switch the frozen part back
            self.backbone.eval()
            self.head.train(mode)
        return self

    def no_weight_decay(self) -> set[str]:
        """timm's list for the backbone (its relative-position bias tables), by our names."""
        return {f"backbone.{n}" for n in self.backbone.no_weight_decay()}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) images -> (B, C) pooled features (C = 768 for tiny and small)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen_backbone):
            x = self.backbone.forward_features(x)                      # (B, S/32, S/32, C)
            return self.backbone.forward_head(x, pre_logits=True)      # (B, C)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)                                     # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def swin(variant: str, num_classes: int, *, img_size: int | None = 224, mode: str = "scratch",
         weights: str | os.PathLike | None = None) -> SwinClassifier:
    """Swin `variant` (a SWIN_TAGS name) for num_classes, trained from scratch or fine-tuned
    from its ImageNet weights (`mode`; `weights`: a local file, None for the hub)."""
    import timm

    img_size = 224 if img_size is None else img_size
    if mode not in SWIN_MODES:
        raise ValueError(f"mode={mode!r}: valid modes: {', '.join(SWIN_MODES)}")
    if (isinstance(img_size, bool) or not isinstance(img_size, int) or img_size < SWIN_PATCH
            or img_size % SWIN_PATCH):
        raise ValueError(f"img_size={img_size!r}: Swin needs a positive multiple of "
                         f"{SWIN_PATCH} (its patch side; timm pads windows and merges)")
    tag = SWIN_TAGS[variant]
    if mode == "scratch" or weights == RANDOM_INIT:   # nothing pretrained to load
        backbone = timm.create_model(tag, pretrained=False, num_classes=num_classes,
                                     img_size=img_size)
        return SwinClassifier(backbone, frozen_backbone=mode == "finetune")
    path = resolve_weights(tag, weights)
    try:
        # pretrained_cfg_overlay(file=...) makes timm load that file instead of the hub;
        # as num_classes differs from the file's 1000, timm drops head.fc and keeps a
        # fresh randomly initialised head; rel-position tables are resized if img_size != 224.
        backbone = timm.create_model(tag, pretrained=True, num_classes=num_classes,
                                     img_size=img_size,
                                     pretrained_cfg_overlay=dict(file=path) if path else None)
    except Exception as e:
        repo_id = timm.models.get_pretrained_cfg(tag).hf_hub_id
        if path:                        # a local file that is not such weights: say which
            first = (str(e).strip().splitlines() or [""])[0][:100]
            raise WeightsUnavailableError(f"weights={path!r} cannot be loaded as {tag}'s "
                                          f"({type(e).__name__}: {first}). "
                                          + weights_hint(tag, repo_id)) from e
        if isinstance(e, download_errors()):    # the probe passed, the download failed
            raise WeightsUnavailableError(f"could not download {tag}: {e}. "
                                          + weights_hint(tag, repo_id)) from e
        raise
    if path:
        check_file_matches(backbone, path, tag)
    return SwinClassifier(backbone, frozen_backbone=mode == "finetune")
