"""Every model of the homework, behind one registry.

`MODELS` maps a name to a constructor `f(num_classes, **kwargs)`; every model takes a
normalised image batch (B, 3, S, S) and returns logits (B, num_classes), so the training
loop and the FLOP counter never special-case a model.

- resnet18: torchvision's ResNet-18 with the usual CIFAR stem (32x32 inputs).
- vit: a compact Vision Transformer written out below; the part of the homework to read.
- swin_tiny / swin_small: timm's Swin Transformers, from scratch or fine-tuned from
  ImageNet-1k weights (head only, or everything).
"""
from __future__ import annotations

import inspect
import os
import socket
import threading
from urllib.parse import urlparse

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import NATIVE_IMG_SIZE, SWIN_MODES
from .data import CIFAR100_MEAN, CIFAR100_STD


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights were asked for but cannot be loaded here."""


# ----------------------------------------------------------------------------- ResNet-18
def resnet18(num_classes: int) -> nn.Module:
    """torchvision ResNet-18 with the CIFAR stem.

    The ImageNet stem (7x7 stride-2 conv + max-pool) shrinks a 32x32 image to 8x8 before
    the first block; a 3x3 stride-1 conv and no pool keep 32x32, as in most CIFAR work.
    """
    from torchvision.models import resnet18 as tv_resnet18

    model = tv_resnet18(num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")  # as torchvision
    model.maxpool = nn.Identity()
    return model


# ----------------------------------------------------------------------------- ViT
class Attention(nn.Module):
    """Multi-head self-attention; the T x T attention itself runs inside SDPA."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)  # q, k and v for all heads in one matmul
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.heads, D // self.heads)  # (B, T, 3, h, D/h)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)                         # each (B, h, T, D/h)
        x = F.scaled_dot_product_attention(q, k, v)                   # (B, h, T, D/h)
        x = x.transpose(1, 2).reshape(B, T, D)                        # heads side by side again
        return self.proj(x)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(),
                                 nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T, D)
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """Vision Transformer classifier (Dosovitskiy et al. 2021), same layout as timm's.

    Image (B, 3, S, S) -> (S/p)^2 patch tokens + 1 class token -> `depth` blocks ->
    LayerNorm -> linear head on the class token.
    """

    def __init__(self, num_classes: int = 100, *, img_size: int | None = 32, patch_size: int = 4,
                 dim: int = 256, depth: int = 4, heads: int = 4):
        img_size = 32 if img_size is None else img_size
        for name, value in dict(num_classes=num_classes, img_size=img_size, patch_size=patch_size,
                                dim=dim, depth=depth, heads=heads).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ViT {name}={value!r}: must be a positive integer")
        if dim % heads:  # checked before any weight is allocated
            raise ValueError(f"ViT heads={heads} must divide dim={dim}")
        if img_size % patch_size:
            raise ValueError(f"ViT patch_size={patch_size} must divide img_size={img_size}")
        super().__init__()
        self.img_size, self.patch_size = img_size, patch_size
        num_tokens = (img_size // patch_size) ** 2 + 1                        # patches + class token
        self.patch_embed = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, dim))       # learned, one per token
        self.blocks = nn.Sequential(*[Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # timm's recipe: small truncated-normal weights, zero biases, LayerNorm at (1, 0).
        # (Like timm, the cut is at +-2 absolute, i.e. 100 std: in effect a plain normal.)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(f"ViT built for img_size={self.img_size} got images of shape "
                             f"{tuple(x.shape)}; resize the input or rebuild with that img_size")
        x = self.patch_embed(x)                        # (B, D, S/p, S/p)
        x = x.flatten(2).transpose(1, 2)               # (B, N, D), N = (S/p)^2 patches
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed  # (B, T, D), T = N + 1
        x = self.norm(self.blocks(x))                  # (B, T, D)
        return self.head(x[:, 0])                      # class token -> (B, num_classes)


def vit(num_classes: int, *, img_size: int | None = 32, patch_size: int = 4, dim: int = 256,
        depth: int = 4, heads: int = 4) -> ViT:
    return ViT(num_classes, img_size=img_size, patch_size=patch_size, dim=dim, depth=depth,
               heads=heads)


# ----------------------------------------------------------------------------- Swin
# Pinned pretrained tags. Without a tag timm picks the first listed weights: for
# swin_tiny that is ImageNet-1k, but for swin_small it is ImageNet-22k -> 1k. Comparing a
# 1k-pretrained tiny with a 22k-pretrained small would not be a fair size comparison.
SWIN_TAGS = {"swin_tiny": "swin_tiny_patch4_window7_224.ms_in1k",
             "swin_small": "swin_small_patch4_window7_224.ms_in1k"}
HUB_PROBE_TIMEOUT_S = 3.0


class SwinClassifier(nn.Module):
    """A timm Swin with a uniform fine-tuning interface.

    forward(x) == forward_head(forward_features(x)). `forward_features` returns the
    pooled (B, C) backbone features, so a frozen backbone's features can be cached
    and only `forward_head` (one Linear) runs per training step.
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

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) images -> (B, C) pooled features (C = 768 for tiny and small)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen_backbone):
            x = self.backbone.forward_features(x)                      # (B, S/32, S/32, C)
            return self.backbone.forward_head(x, pre_logits=True)      # (B, C)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)                                     # (B, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _hf_cache_dir() -> str:
    # Read at call time (huggingface_hub reads these at import time), same precedence.
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return os.path.join(os.path.expanduser(home), "hub")


def _cached_hub_file(repo_id: str) -> str | None:
    """A weights file for repo_id already in the local Hugging Face cache, else None."""
    from huggingface_hub import try_to_load_from_cache

    for filename in ("model.safetensors", "pytorch_model.bin"):  # timm's preference order
        path = try_to_load_from_cache(repo_id, filename, cache_dir=_hf_cache_dir())
        if isinstance(path, str) and os.path.isfile(path):
            return path
    return None


def _hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Can we open a TCP connection to the hub (or the https proxy) within `timeout`?

    Runs in a daemon thread so that a hanging DNS lookup is bounded too.
    """
    url = (os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
           or os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    parsed = urlparse(url if "://" in url else "http://" + url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    ok = []

    def connect():
        try:
            socket.create_connection((parsed.hostname, port), timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    t = threading.Thread(target=connect, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    return bool(ok)


def _weights_hint(tag: str, repo_id: str) -> str:
    return (f"Fixes: (1) connect this machine to the network (huggingface.co), or "
            f"(2) download the weights on another machine - 'model.safetensors' from "
            f"https://huggingface.co/{repo_id} (timm tag {tag}) - copy the file here and pass "
            f"weights=<path to the local .safetensors/.pth file>. Or use mode='scratch'.")


def _resolve_weights(tag: str, weights: str | os.PathLike | None) -> str | None:
    """The local weights file to load, or None to let timm download from the hub.

    Decides quickly: a missing file or an unreachable hub fails in seconds, instead of
    after a minute of download retries deep inside timm.
    """
    import timm

    repo_id = timm.models.get_pretrained_cfg(tag).hf_hub_id
    if weights is not None:
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise WeightsUnavailableError(f"weights={path!r}: no such file. "
                                          + _weights_hint(tag, repo_id))
        return path
    cached = _cached_hub_file(repo_id)
    if cached:
        return cached
    if os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
        raise WeightsUnavailableError(
            f"pretrained weights for {tag} are not in the Hugging Face cache ({_hf_cache_dir()}) "
            "and HF_HUB_OFFLINE is set. " + _weights_hint(tag, repo_id))
    if not _hub_reachable():
        raise WeightsUnavailableError(
            f"pretrained weights for {tag} are not in the Hugging Face cache ({_hf_cache_dir()}) "
            f"and the hub is unreachable (no network within {HUB_PROBE_TIMEOUT_S:.0f} s). "
            + _weights_hint(tag, repo_id))
    return None


def _check_file_matches(model: nn.Module, path: str, tag: str) -> None:
    """Fail if the file's backbone tensors are not exactly the model's.

    timm loads non-strictly when it replaces the 1000-class head, so a file for another
    architecture (say swin_small into swin_tiny) would otherwise load partially, silently.
    """
    from timm.models import load_state_dict
    from timm.models.swin_transformer import checkpoint_filter_fn

    state = checkpoint_filter_fn(load_state_dict(path), model)  # same key mapping timm applies
    head = {"head.fc.weight", "head.fc.bias"}
    missing = sorted(set(model.state_dict()) - set(state) - head)
    unexpected = sorted(set(state) - set(model.state_dict()) - head)
    if missing or unexpected:
        raise WeightsUnavailableError(
            f"weights={path!r} do not fit {tag}: {len(missing)} missing tensors {missing[:3]}, "
            f"{len(unexpected)} unexpected tensors {unexpected[:3]}")


def _download_errors() -> tuple:
    errors = [OSError]  # includes huggingface_hub's HTTP and offline errors
    try:
        import httpx  # huggingface_hub's HTTP client; its transport errors are not OSErrors
        errors.append(httpx.HTTPError)
    except ImportError:
        pass
    return tuple(errors)


def _swin(variant: str, num_classes: int, img_size: int | None, mode: str,
          weights: str | os.PathLike | None) -> SwinClassifier:
    import timm

    img_size = 224 if img_size is None else img_size
    if mode not in SWIN_MODES:
        raise ValueError(f"mode={mode!r}: valid modes: {', '.join(SWIN_MODES)}")
    if isinstance(img_size, bool) or not isinstance(img_size, int) or img_size < 32 or img_size % 32:
        raise ValueError(f"img_size={img_size!r}: Swin needs a positive multiple of 32 "
                         "(4x4 patches, then three 2x patch merges)")
    tag = SWIN_TAGS[variant]
    if mode == "scratch":  # `weights` is ignored: nothing is pretrained
        backbone = timm.create_model(tag, pretrained=False, num_classes=num_classes,
                                     img_size=img_size)
        return SwinClassifier(backbone, frozen_backbone=False)
    path = _resolve_weights(tag, weights)
    try:
        # pretrained_cfg_overlay(file=...) makes timm load that file instead of the hub;
        # as num_classes differs from the file's 1000, timm drops head.fc and keeps a
        # fresh randomly initialised head; rel-position tables are resized if img_size != 224.
        backbone = timm.create_model(tag, pretrained=True, num_classes=num_classes,
                                     img_size=img_size,
                                     pretrained_cfg_overlay=dict(file=path) if path else None)
    except _download_errors() as e:  # the probe passed but the download failed after all
        repo_id = timm.models.get_pretrained_cfg(tag).hf_hub_id
        raise WeightsUnavailableError(f"could not download {tag}: {e}. "
                                      + _weights_hint(tag, repo_id)) from e
    if path:
        _check_file_matches(backbone, path, tag)
    return SwinClassifier(backbone, frozen_backbone=mode == "finetune")


def swin_tiny(num_classes: int, *, img_size: int | None = 224, mode: str = "scratch",
              weights: str | os.PathLike | None = None) -> SwinClassifier:
    return _swin("swin_tiny", num_classes, img_size, mode, weights)


def swin_small(num_classes: int, *, img_size: int | None = 224, mode: str = "scratch",
               weights: str | os.PathLike | None = None) -> SwinClassifier:
    return _swin("swin_small", num_classes, img_size, mode, weights)


# ----------------------------------------------------------------------------- registry
MODELS = {"resnet18": resnet18, "vit": vit, "swin_tiny": swin_tiny, "swin_small": swin_small}


def build_model(name: str, num_classes: int, **kwargs) -> nn.Module:
    """Build a registered model; unknown names and options fail before any work."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
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
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    if name in SWIN_TAGS:
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(SWIN_TAGS[name])
        return dict(img_size=cfg.input_size[-1], mean=tuple(cfg.mean), std=tuple(cfg.std))
    return dict(img_size=NATIVE_IMG_SIZE[name], mean=tuple(CIFAR100_MEAN),
                std=tuple(CIFAR100_STD))
